"""Which of a number's contacts a call is associated with (pure).

``all`` associates every contact holding the number; ``latest`` the most recently
modified one (ties: the highest id, the newest contact); ``none`` associates nobody when
several contacts share the number (a switchboard, a shared family phone) and says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

Policy = Literal["all", "latest", "none"]
#: (contact id, lastmodifieddate as epoch ms)
Candidate = tuple[str, int]


def choose(policy: Policy, candidates: Sequence[Candidate]) -> tuple[list[str], bool]:
    """(contact ids to associate, whether the number was shared by several contacts)."""
    ids = sorted({c for c, _ in candidates}, key=_id_key)
    shared = len(ids) > 1
    if not shared or policy == "all":
        return ids, shared
    if policy == "none":
        return [], shared
    newest = max(candidates, key=lambda c: (c[1], _id_key(c[0])))
    return [newest[0]], shared


def _id_key(contact_id: str) -> tuple[int, str]:
    return (int(contact_id), contact_id) if contact_id.isdigit() else (0, contact_id)
