"""The sandbox stands alone: it never imports the product it emulates a peer for."""

from __future__ import annotations

import ast
from pathlib import Path

SANDBOX = Path(__file__).resolve().parents[2] / "sandbox"


def test_sandbox_never_imports_service_or_handlers() -> None:
    """No module under sandbox/ imports service or handlers."""
    offenders = []
    for path in sorted(SANDBOX.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {n}" for n in names if n.split(".")[0] in ("service", "handlers")
            ]
    assert offenders == []
