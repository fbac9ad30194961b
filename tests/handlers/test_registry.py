"""The provider registry and the purity of the handler modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from handlers import PROVIDER_MODULES, REGISTRY
from service.config import PROVIDER_SECRETS

HANDLERS_DIR = Path(__file__).resolve().parents[2] / "handlers"
FORBIDDEN_IMPORTS = {"asyncio", "aiokafka", "httpx", "starlette", "requests", "socket", "time"}


def test_every_configured_provider_has_a_registered_handler() -> None:
    """Each provider with a secret setting is routed to a handler of the same name."""
    assert set(REGISTRY) == set(PROVIDER_SECRETS) == set(PROVIDER_MODULES)
    for name, provider in REGISTRY.items():
        assert provider.name == name


@pytest.mark.parametrize("path", sorted(HANDLERS_DIR.glob("*.py")), ids=lambda p: p.name)
def test_handler_modules_do_no_io_and_read_no_clock(path: Path) -> None:
    """Handler modules import no async/network library, never read the time themselves and
    never import service/ (dependencies point one way)."""
    tree = ast.parse(path.read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN_IMPORTS
    assert "service" not in imported  # handlers own the event model: service → handlers only
    source = path.read_text()
    assert "datetime.now(" not in source and "utcnow(" not in source


@pytest.mark.parametrize(
    ("provider", "accepted", "refused"),
    [
        ("twilio", ["application/x-www-form-urlencoded", "application/json"], ["text/xml"]),
        ("aircall", ["application/json"], ["application/x-www-form-urlencoded"]),
        ("zoom", ["application/json"], ["text/plain"]),
        ("ringcentral", ["application/json", ""], ["text/plain"]),
        ("vonage", ["application/json"], ["application/x-www-form-urlencoded"]),
        ("dialpad", ["application/jwt", "text/plain", "application/json", ""], []),
    ],
)
def test_each_provider_accepts_the_content_types_it_sends(
    provider: str, accepted: list[str], refused: list[str]
) -> None:
    """A provider accepts the media types it actually sends and refuses others (415)."""
    for content_type in accepted:
        assert REGISTRY[provider].accepts(content_type), content_type
    for content_type in refused:
        assert not REGISTRY[provider].accepts(content_type), content_type
