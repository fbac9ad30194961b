"""Portals: which HubSpot accounts one callbridge deployment serves, and with what.

``CALLBRIDGE_PORTALS_FILE`` names a YAML file (in Kubernetes a mounted Secret)::

    portals:
      - id: acme                       # [a-z0-9-]{1,40}
        hubspot:
          token: pat-…                 # private-app token / service key, or:
          # oauth: {client_id: …, client_secret: …, refresh_token: …}
          api_version: "2026-03"       # or "v3" (the default)
          rate: 100                    # requests per rolling 10 s for this portal
        providers:
          generic: {secret: …}         # every provider's secret, per portal
          twilio: {auth_token: …}

:func:`load_portals` turns it into validated :class:`Portal` objects or raises
:class:`PortalsFileError` naming the file, the entry and what is wrong (duplicate ids, a
bad id, both or neither of ``token`` and ``oauth``, an unknown provider or provider
field, an unknown ``api_version``). Without the file, today's single-portal settings
(``CALLBRIDGE_HUBSPOT_TOKEN``, ``_RATE``, the provider secrets) define one portal named
``default``. Each provider's key in the file is its ``CALLBRIDGE_*`` secret's name
without the provider prefix (``twilio_auth_token`` → ``twilio: {auth_token}``,
``generic_secret`` → ``generic: {secret}``).

Building each portal's :class:`~service.hubspot.HubSpotClient` is
:func:`service.wiring.portal_clients`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml
from pydantic import SecretStr

from handlers.event import DEFAULT_PORTAL
from service.config import PROVIDER_SECRETS, Settings, split_secrets
from service.hubspot.paths import API_VERSIONS, LEGACY

PORTAL_ID: Final = re.compile(r"^[a-z0-9-]{1,40}$")

#: provider -> the name of its secret inside ``providers.<provider>`` in the file
PROVIDER_FIELDS: Final[dict[str, str]] = {
    provider: attr.removeprefix(provider + "_") for provider, attr in PROVIDER_SECRETS.items()
}


class PortalsFileError(ValueError):
    """The portals file is missing, unreadable or invalid; the message says where."""


@dataclass(frozen=True, slots=True)
class OAuthGrant:
    """An OAuth app's credentials for one portal (a public app installed there)."""

    client_id: str
    client_secret: SecretStr
    refresh_token: SecretStr


@dataclass(frozen=True, slots=True)
class PortalHubSpot:
    """How to reach one portal's HubSpot account: exactly one of ``token`` and ``oauth``."""

    token: SecretStr | None
    oauth: OAuthGrant | None
    api_version: str = LEGACY
    rate: int = 100
    search_rate: int = 5


@dataclass(frozen=True, slots=True)
class Portal:
    """One portal: its id, HubSpot access, and its providers' secrets (provider -> secret)."""

    id: str
    hubspot: PortalHubSpot
    providers: dict[str, SecretStr] = field(default_factory=dict)

    def provider_secret(self, provider: str) -> str | None:
        """This portal's secret for ``provider``, or None (the provider is off here)."""
        secret = self.providers.get(provider)
        return secret.get_secret_value() if secret is not None else None

    @property
    def enabled_providers(self) -> list[str]:
        return sorted(self.providers)


def load_portals(settings: Settings) -> list[Portal]:
    """The portals of ``CALLBRIDGE_PORTALS_FILE``, or the one ``default`` portal."""
    if settings.portals_file is None:
        return [default_portal(settings)]
    return parse_portals_file(settings.portals_file, settings)


def default_portal(settings: Settings) -> Portal:
    """The single portal today's settings describe."""
    providers = {
        p: SecretStr(secret)
        for p in PROVIDER_SECRETS
        if (secret := settings.provider_secret(p)) is not None and secret
    }
    return Portal(
        DEFAULT_PORTAL,
        PortalHubSpot(
            token=settings.hubspot_token,
            oauth=None,
            api_version=LEGACY,
            rate=settings.hubspot_rate,
            search_rate=settings.hubspot_search_rate,
        ),
        providers,
    )


def parse_portals_file(path: Path, settings: Settings | None = None) -> list[Portal]:
    """Read and validate a portals file (``settings`` gives the default rates)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PortalsFileError(f"portals file {path}: cannot read it: {exc}") from exc
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # PyYAML's own text quotes the offending line, which may hold a token: say only
        # where and what, and do not chain it
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise PortalsFileError(f"portals file {path}: not valid YAML: {where}{problem}") from None
    return parse_portals(doc, settings or Settings(), source=str(path))


def parse_portals(doc: Any, settings: Settings, *, source: str = "portals") -> list[Portal]:
    """Validate an already-loaded portals document."""

    def fail(where: str, problem: str) -> PortalsFileError:
        return PortalsFileError(f"portals file {source}: {where}: {problem}")

    if not isinstance(doc, dict) or set(doc) != {"portals"}:
        raise fail("top level", "expected exactly one key, 'portals'")
    entries = doc["portals"]
    if not isinstance(entries, list) or not entries:
        raise fail("portals", "expected a non-empty list")
    out: list[Portal] = []
    seen: dict[str, int] = {}
    for n, entry in enumerate(entries):
        where = f"portals[{n}]"
        if not isinstance(entry, dict):
            raise fail(where, "expected a mapping with id, hubspot and providers")
        _keys(entry, {"id", "hubspot", "providers"}, {"id", "hubspot"}, where, fail)
        pid = entry["id"]
        if not isinstance(pid, str) or not PORTAL_ID.match(pid):
            raise fail(f"{where}.id", f"{pid!r} must match [a-z0-9-]{{1,40}}")
        where = f"portals[{n}] (id {pid})"
        if pid in seen:
            raise fail(where, f"duplicate id, also portals[{seen[pid]}]")
        seen[pid] = n
        hubspot = _hubspot(entry["hubspot"], settings, f"{where}.hubspot", fail)
        providers = _providers(entry.get("providers") or {}, f"{where}.providers", fail)
        out.append(Portal(pid, hubspot, providers))
    return out


def _keys(
    raw: dict[Any, Any], allowed: set[str], required: set[str], where: str, fail: Any
) -> None:
    unknown = set(raw) - allowed
    if unknown:
        raise fail(where, f"unknown keys {sorted(map(str, unknown))}; allowed: {sorted(allowed)}")
    missing = required - set(raw)
    if missing:
        raise fail(where, f"missing {sorted(missing)}")


def _text(value: Any, where: str, fail: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        raise fail(where, "expected a non-empty string")
    return str(value)


def _hubspot(raw: Any, settings: Settings, where: str, fail: Any) -> PortalHubSpot:
    if not isinstance(raw, dict):
        raise fail(where, "expected a mapping")
    _keys(raw, {"token", "oauth", "api_version", "rate", "search_rate"}, set(), where, fail)
    has_token, has_oauth = raw.get("token") is not None, raw.get("oauth") is not None
    if has_token == has_oauth:
        raise fail(
            where,
            "give exactly one of 'token' and 'oauth'"
            if has_token
            else "missing 'token' or 'oauth'",
        )
    token = SecretStr(_text(raw["token"], f"{where}.token", fail)) if has_token else None
    oauth = None
    if has_oauth:
        o = raw["oauth"]
        w = f"{where}.oauth"
        if not isinstance(o, dict):
            raise fail(w, "expected {client_id, client_secret, refresh_token}")
        names = {"client_id", "client_secret", "refresh_token"}
        _keys(o, names, names, w, fail)
        oauth = OAuthGrant(
            _text(o["client_id"], f"{w}.client_id", fail),
            SecretStr(_text(o["client_secret"], f"{w}.client_secret", fail)),
            SecretStr(_text(o["refresh_token"], f"{w}.refresh_token", fail)),
        )
    version = str(raw.get("api_version", LEGACY))
    if version not in API_VERSIONS:
        raise fail(f"{where}.api_version", f"{version!r} is not one of {', '.join(API_VERSIONS)}")
    rate = _rate(raw.get("rate", settings.hubspot_rate), f"{where}.rate", fail)
    search_rate = _rate(
        raw.get("search_rate", settings.hubspot_search_rate), f"{where}.search_rate", fail
    )
    return PortalHubSpot(token, oauth, version, rate, search_rate)


def _rate(value: Any, where: str, fail: Any) -> int:
    text = str(value).strip().removesuffix("/10s") if not isinstance(value, bool) else ""
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise fail(where, f"{value!r} must be a positive integer (requests per 10 s)")
    return number


def _providers(raw: Any, where: str, fail: Any) -> dict[str, SecretStr]:
    if not isinstance(raw, dict):
        raise fail(where, "expected a mapping of provider -> {secret field: value}")
    out: dict[str, SecretStr] = {}
    for name, value in raw.items():
        if name not in PROVIDER_FIELDS:
            raise fail(
                f"{where}.{name}", f"unknown provider; known: {', '.join(sorted(PROVIDER_FIELDS))}"
            )
        key = PROVIDER_FIELDS[name]
        if not isinstance(value, dict) or set(value) != {key}:
            raise fail(f"{where}.{name}", f"expected {{{key}: …}}")
        out[name] = SecretStr(_text(value[key], f"{where}.{name}.{key}", fail))
    return out


def sandbox_args(portals: list[Portal]) -> list[str]:
    """``python -m sandbox`` arguments giving every portal its own sandbox portal: its
    token, or for an OAuth portal a made-up portal token (``oauth-portal-<id>``) with the
    portal's app installed (``--oauth-app``), so that its refresh token works there.
    For ``callbridge run`` / ``make run`` with a portals file against the sandbox."""
    args: list[str] = []
    for p in portals:
        hs = p.hubspot
        if hs.token is not None:
            args += ["--token", hs.token.get_secret_value()]
            continue
        assert hs.oauth is not None
        portal_token = f"oauth-portal-{p.id}"
        args += [
            "--token",
            portal_token,
            "--oauth-app",
            ":".join(
                (
                    hs.oauth.client_id,
                    hs.oauth.client_secret.get_secret_value(),
                    hs.oauth.refresh_token.get_secret_value(),
                    portal_token,
                )
            ),
        ]
    return args


def secret_values(portals: list[Portal]) -> list[str]:
    """Every configured secret of every portal, to mask in logs: its HubSpot token or
    OAuth client secret and refresh token, and each value of its providers' secrets
    (rotation: comma-separated)."""
    secrets: list[str] = []
    for p in portals:
        hs = p.hubspot
        if hs.token is not None:
            secrets.append(hs.token.get_secret_value())
        if hs.oauth is not None:
            secrets += [
                hs.oauth.client_secret.get_secret_value(),
                hs.oauth.refresh_token.get_secret_value(),
            ]
        secrets += [s for name in p.providers for s in split_secrets(p.provider_secret(name))]
    return secrets
