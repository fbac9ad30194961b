"""Direction rules for ``service/hubspot/``, checked from the imports (ast): the HubSpot
client never imports the writer, the app's settings or the event model — nothing of
callbridge outside ``service.hubspot`` — so it can be built and tested on its own."""

from __future__ import annotations

import ast
import pathlib

import pytest

import service.hubspot

PACKAGE = pathlib.Path(service.hubspot.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))


def imported_modules(path: pathlib.Path) -> set[str]:
    """Every module ``path`` imports, absolute, TYPE_CHECKING blocks and functions included."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against service.hubspot
                base = "service.hubspot" if node.level == 1 else "service"
                out.add(f"{base}.{node.module}" if node.module else base)
            elif node.module == "service":  # "from service import writer"
                out |= {f"service.{alias.name}" for alias in node.names}
            elif node.module:
                out.add(node.module)
    return out


def test_every_module_is_checked() -> None:
    """The rule covers the whole package (client, wire, setup, ...)."""
    names = {p.stem for p in MODULES}
    assert {"client", "wire", "setup", "models", "session", "errors"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_hubspot_package_imports_nothing_of_the_app(path: pathlib.Path) -> None:
    """No service.config (Settings), service.model (events), writer or other app module."""
    app = {m for m in imported_modules(path) if m == "service" or m.startswith("service.")}
    outside = {m for m in app if not m.startswith("service.hubspot")}
    assert outside == set(), f"{path.name} imports {sorted(outside)}"
    assert not {m for m in imported_modules(path) if m.split(".")[0] == "handlers"}


def test_the_rule_catches_what_it_forbids(tmp_path: pathlib.Path) -> None:
    """The checker sees the forms the old code used (TYPE_CHECKING, from-imports)."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from typing import TYPE_CHECKING\n"
        "from service.model import ASSOCIATION_TYPE_IDS\n"
        "from service import writer\n"
        "if TYPE_CHECKING:\n    from service.config import Settings\n"
    )
    assert {"service.model", "service.writer", "service.config"} <= imported_modules(bad)
