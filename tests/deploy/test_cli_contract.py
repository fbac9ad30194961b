"""Every callbridge command the image, the manifests, compose and the README use exists."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.helpers import (
    DEPLOY,
    OVERLAYS,
    ROOT,
    all_containers,
    default_cmd,
    entrypoint,
    plain_envs,
    render,
    secret_envs,
)
from tests.deploy.test_compose import CALLBRIDGE_SERVICES, services

Invocation = tuple[str, ...]


def _from_image() -> dict[Invocation, str]:
    assert entrypoint()[-1] == "callbridge"
    return {tuple(default_cmd()): "Dockerfile CMD"}


def _from_manifests() -> dict[Invocation, str]:
    out = {}
    for overlay in OVERLAYS:
        for w, c in all_containers(render(overlay)):
            argv = c.get("command", entrypoint()) + c.get("args", [])
            out[tuple(argv[argv.index("callbridge") + 1 :])] = f"{overlay}: {w['metadata']['name']}"
    return out


def _from_compose() -> dict[Invocation, str]:
    return {tuple(services()[s]["command"]): f"compose: {s}" for s in CALLBRIDGE_SERVICES}


def _from_readme() -> dict[Invocation, str]:
    text = (DEPLOY / "README.md").read_text(encoding="utf-8")
    out = {}
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for m in re.finditer(r"(?:^|-- )callbridge ((?:[\w-]+ ?)+)", block, re.M):
            out[tuple(m.group(1).split())] = "deploy/README.md"
    return out


def invocations() -> dict[Invocation, str]:
    """Each callbridge command and its flags (values dropped) deploy/ uses, and where."""
    found = _from_image() | _from_manifests() | _from_compose() | _from_readme()
    out: dict[Invocation, str] = {}
    for argv, where in found.items():
        path, flags = _command_and_flags(argv)
        out.setdefault((*path, *flags), where)
    return out


def _command_and_flags(argv: Invocation) -> tuple[list[str], list[str]]:
    path = []
    for word in argv:
        if word.startswith("-"):
            break
        path.append(word)
    flags = [w.split("=", 1)[0] for w in argv if w.startswith("--") and w != "--help"]
    return path, flags


def test_invocations_are_found() -> None:
    """The scan sees the ingress, writer, sandbox and dlq commands (so the test below bites)."""
    commands = {_command_and_flags(argv)[0][0] for argv in invocations()}
    assert {"ingress", "writer", "sandbox", "dlq"} <= commands


def _help(path: list[str]) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("callbridge")
    assert exe.exists(), f"{exe} missing: run `make install`"
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [str(exe), *path, "--help"], capture_output=True, text=True, timeout=60, env=env
    )


@pytest.mark.parametrize("argv", sorted(invocations()), ids=" ".join)
def test_command_exists_in_the_cli(argv: Invocation) -> None:
    """`callbridge <command> --help` exits 0 and lists every flag deploy/ passes."""
    path, flags = _command_and_flags(argv)
    out = _help(path)
    where = invocations()[argv]
    assert out.returncode == 0, f"{where}: `callbridge {' '.join(path)}` is not a command\n{out}"
    for flag in flags:
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", out.stdout), (
            f"{where}: `callbridge {' '.join(path)}` has no {flag}"
        )


def test_every_environment_variable_the_code_reads_is_accounted_for() -> None:
    """Each CALLBRIDGE_* name in the code is a setting or a documented local-only variable."""
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    settings = plain_envs() | secret_envs()
    for package in ("service", "handlers", "sandbox"):
        for source in (ROOT / package).rglob("*.py"):
            for name in set(re.findall(r"\bCALLBRIDGE_[A-Z0-9_]*[A-Z0-9]\b", source.read_text())):
                assert name in settings or f"`{name}`" in readme, (
                    f"{source.relative_to(ROOT)} reads {name}: add it to the ConfigMap or "
                    "document it in deploy/README.md"
                )
