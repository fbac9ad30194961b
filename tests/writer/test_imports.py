"""Direction rules of the writer, checked from its imports."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

WRITER = Path(__file__).resolve().parents[2] / "service" / "writer"


def test_the_core_imports_no_io() -> None:
    """records, buffer, core and ports import no asyncio, aiokafka, httpx or starlette."""
    code = (
        "import sys; import service.writer.core, service.writer.records, "
        "service.writer.buffer, service.writer.ports; "
        "print(sorted(m for m in ('asyncio','aiokafka','httpx','starlette') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_writer_depends_on_no_operator_tool() -> None:
    """Nothing in service/writer imports service.dlq (the record format is shared)."""
    offenders = []
    for path in WRITER.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            offenders += [f"{path.name}: {n}" for n in names if n.startswith("service.dlq")]
    assert offenders == []
