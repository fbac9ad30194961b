"""Each overlay is rendered once per session; every test gets its own copy of the objects."""

from __future__ import annotations

import pytest

from tests.deploy.helpers import OVERLAYS, Doc, render


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    """The name of each overlay under deploy/k8s/overlays."""
    return str(request.param)


@pytest.fixture
def rendered(overlay: str) -> list[Doc]:
    """The objects kustomize renders for ``overlay``."""
    return render(overlay)


@pytest.fixture
def rendered_all() -> dict[str, list[Doc]]:
    """Every overlay's rendered objects, by overlay name."""
    return {o: render(o) for o in OVERLAYS}
