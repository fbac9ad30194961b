"""Each overlay is rendered once per session; tests share the parsed objects."""

from __future__ import annotations

import copy
from functools import cache

import pytest

from tests.deploy.helpers import K8S, OVERLAYS, Doc, kustomize


@cache
def _render(overlay: str) -> tuple[Doc, ...]:
    return tuple(kustomize(K8S / "overlays" / overlay))


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    """The name of each overlay under deploy/k8s/overlays."""
    return str(request.param)


@pytest.fixture
def rendered(overlay: str) -> list[Doc]:
    """The objects `kubectl kustomize` renders for ``overlay`` (a private copy per test)."""
    return copy.deepcopy(list(_render(overlay)))


@pytest.fixture
def rendered_all() -> dict[str, list[Doc]]:
    """Every overlay's rendered objects, by overlay name."""
    return {o: copy.deepcopy(list(_render(o))) for o in OVERLAYS}
