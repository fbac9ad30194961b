"""The public URL a provider called, for signatures computed over it (Twilio).

Never from ``Host`` alone: ``CALLBRIDGE_PUBLIC_URL`` wins; otherwise a request that arrives
from one of ``CALLBRIDGE_TRUSTED_PROXIES`` (IPs or CIDRs) is rebuilt from its
``X-Forwarded-Proto``/``-Host``/``-Port`` headers; otherwise the URL is unknown (``None``)
and providers that sign it answer 401. With Twilio enabled and neither setting, the ingress
refuses to start (``startup_problem``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(Exception):
    """The ingress cannot run with this configuration (message says what to set)."""


def parse_proxies(value: str) -> tuple[Network, ...]:
    """``CALLBRIDGE_TRUSTED_PROXIES``: comma-separated IPs or CIDRs."""
    networks = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ConfigError(f"CALLBRIDGE_TRUSTED_PROXIES: {part!r} is not an IP or CIDR") from exc
    return tuple(networks)


def check_public_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"CALLBRIDGE_PUBLIC_URL must be http(s)://host[:port], got {value!r}")
    return value.rstrip("/")


@dataclass(frozen=True)
class PublicUrl:
    """Rebuilds the URL a provider called from the configured base or trusted headers."""

    base: str | None
    proxies: tuple[Network, ...] = ()

    def url(
        self, path: str, query: str, client_ip: str | None, headers: Mapping[str, str]
    ) -> str | None:
        suffix = path + (f"?{query}" if query else "")
        if self.base is not None:
            return self.base + suffix
        if client_ip is None or not self._trusted(client_ip):
            return None
        proto = _last(headers.get("x-forwarded-proto"))
        host = _last(headers.get("x-forwarded-host")) or headers.get("host")
        if proto not in ("http", "https") or not host or any(c in host for c in "/?#@ "):
            return None
        port = _last(headers.get("x-forwarded-port"))
        if port and port.isdigit() and ":" not in host.rsplit("]", 1)[-1]:
            default = "443" if proto == "https" else "80"
            host = host if port == default else f"{host}:{port}"
        return f"{proto}://{host}{suffix}"

    def _trusted(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in network for network in self.proxies)


def _last(value: str | None) -> str | None:
    """The last entry of a comma-separated forwarded header: the one our trusted proxy
    wrote (earlier entries come from whoever talked to it, so they prove nothing)."""
    if value is None:
        return None
    return value.rsplit(",", 1)[-1].strip() or None
