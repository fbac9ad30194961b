"""The local broker's generated cluster ids are ones Kafka's storage tool accepts."""

from __future__ import annotations

from service.localkafka import _cluster_id


def test_cluster_ids_never_start_with_a_dash() -> None:
    """About 1 in 64 random ids began with "-", which kafka-storage read as an option and
    refused ("--cluster-id: expected one argument"): the harness failed to start at random."""
    ids = [_cluster_id() for _ in range(3000)]
    assert not [i for i in ids if i.startswith("-")]
    assert all(len(i) == 22 for i in ids) and len(set(ids)) == 3000
