"""The portals file: the issue's format parses into typed portals; every kind of mistake
is refused with a message naming the entry; without a file, today's settings are the one
portal ``default``; each portal gets a client of its own through service.wiring."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from service.config import Settings
from service.hubspot.oauth import OAuthTokenProvider, StaticToken
from service.hubspot.secrets import RefreshTokenStore
from service.portals import (
    DEFAULT_PORTAL,
    PortalsFileError,
    load_portals,
    parse_portals_file,
    sandbox_args,
    secret_values,
)
from service.wiring import portal_clients, refresh_token_store

EXAMPLE = """
portals:
  - id: acme
    hubspot:
      token: pat-acme
      api_version: "2026-03"
      rate: 100
    providers:
      generic: {secret: g-acme}
      twilio: {auth_token: tw-acme}
  - id: globex-2
    hubspot:
      oauth: {client_id: cid, client_secret: csec, refresh_token: rt-globex}
      rate: 50/10s
    providers:
      aircall: {token: ac-globex}
  - id: initech
    hubspot: {token: pat-initech}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "portals.yaml"
    path.write_text(text)
    return path


def test_the_issues_format_parses(tmp_path: Path) -> None:
    portals = parse_portals_file(write(tmp_path, EXAMPLE), Settings(hubspot_rate=77))
    assert [p.id for p in portals] == ["acme", "globex-2", "initech"]
    acme, globex, initech = portals
    assert acme.hubspot.token is not None and acme.hubspot.token.get_secret_value() == "pat-acme"
    assert (acme.hubspot.api_version, acme.hubspot.rate) == ("2026-03", 100)
    assert acme.provider_secret("generic") == "g-acme"
    assert acme.provider_secret("twilio") == "tw-acme"
    assert acme.provider_secret("aircall") is None
    assert globex.hubspot.oauth is not None and globex.hubspot.token is None
    assert globex.hubspot.oauth.refresh_token.get_secret_value() == "rt-globex"
    assert (globex.hubspot.api_version, globex.hubspot.rate) == ("v3", 50)
    assert globex.enabled_providers == ["aircall"]
    assert initech.hubspot.rate == 77 and initech.providers == {}
    assert "pat-acme" not in repr(portals)  # secrets stay secret


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("portals: []", "portals: expected a non-empty list"),
        ("portal: []", "expected exactly one key, 'portals'"),
        ("portals: [{id: Acme, hubspot: {token: t}}]", r"portals\[0\].id: 'Acme' must match"),
        ("portals: [{id: '', hubspot: {token: t}}]", r"portals\[0\].id: '' must match"),
        ("portals: [{id: " + "a" * 41 + ", hubspot: {token: t}}]", "must match"),
        (
            "portals: [{id: a, hubspot: {token: t}}, {id: a, hubspot: {token: u}}]",
            r"portals\[1\] \(id a\): duplicate id, also portals\[0\]",
        ),
        (
            "portals: [{id: a, hubspot: {token: t, oauth: {client_id: c, client_secret: s,"
            " refresh_token: r}}}]",
            "exactly one of 'token' and 'oauth'",
        ),
        ("portals: [{id: a, hubspot: {rate: 5}}]", "missing 'token' or 'oauth'"),
        (
            "portals: [{id: a, hubspot: {oauth: {client_id: c, client_secret: s}}}]",
            r"hubspot.oauth: missing \['refresh_token'\]",
        ),
        (
            "portals: [{id: a, hubspot: {token: t}, providers: {skype: {secret: s}}}]",
            "providers.skype: unknown provider",
        ),
        (
            "portals: [{id: a, hubspot: {token: t}, providers: {twilio: {secret: s}}}]",
            r"providers.twilio: expected \{auth_token: …\}",
        ),
        (
            "portals: [{id: a, hubspot: {token: t, api_version: '2026-04'}}]",
            "api_version: '2026-04' is not one of v3, 2025-09, 2026-03, 2026-09",
        ),
        ("portals: [{id: a, hubspot: {token: t, rate: 0}}]", "rate: 0 must be a positive"),
        ("portals: [{id: a, hubspot: {token: t, tokens: u}}]", r"unknown keys \['tokens'\]"),
        ("portals: [{id: a, hubspot: {token: t}, extra: 1}]", r"unknown keys \['extra'\]"),
        ("portals: [{: }", "not valid YAML"),
    ],
)
def test_mistakes_are_refused_clearly(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PortalsFileError, match=message) as caught:
        parse_portals_file(path)
    assert str(path) in str(caught.value)


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PortalsFileError, match="cannot read it"):
        load_portals(Settings(portals_file=tmp_path / "nope.yaml"))


def test_without_the_file_the_settings_are_the_default_portal() -> None:
    settings = Settings(
        hubspot_token=SecretStr("pat-1"),
        hubspot_rate=42,
        twilio_auth_token=SecretStr("tw"),
        generic_secret=SecretStr("gen"),
    )
    (portal,) = load_portals(settings)
    assert portal.id == DEFAULT_PORTAL
    assert portal.hubspot.token is not None and portal.hubspot.token.get_secret_value() == "pat-1"
    assert (portal.hubspot.rate, portal.hubspot.api_version) == (42, "v3")
    assert portal.enabled_providers == ["generic", "twilio"] == settings.enabled_providers


async def test_each_portal_gets_its_own_client(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    settings = Settings(
        portals_file=write(tmp_path, EXAMPLE),
        secrets_key=SecretStr(key),
        secrets_file=tmp_path / "secrets.json",
    )
    store = refresh_token_store(settings)
    assert isinstance(store, RefreshTokenStore)
    store.save("globex-2", "rt-rotated")  # a rotated token wins over the file's
    clients = portal_clients(settings)
    try:
        assert list(clients) == ["acme", "globex-2", "initech"]
        acme, globex, _ = clients.values()
        assert acme.paths.calls == "/crm/objects/2026-03/calls"
        assert globex.paths.calls == "/crm/v3/objects/calls"
        assert acme.session.budget is not globex.session.budget  # a budget each
        assert [c.session.portal for c in clients.values()] == list(clients)  # metric labels
        assert (acme.session.budget.limit, globex.session.budget.limit) == (100, 50)
        assert isinstance(acme.session.auth, StaticToken)
        assert await acme.session.auth.token() == "pat-acme"
        provider = globex.session.auth
        assert isinstance(provider, OAuthTokenProvider)
        assert provider.refresh_token == "rt-rotated"
        assert provider.token_path == "/oauth/v1/token" and provider.portal == "globex-2"
    finally:
        for client in clients.values():
            await client.aclose()
    assert refresh_token_store(Settings()) is None


def test_sandbox_args_give_every_portal_its_sandbox_portal(tmp_path: Path) -> None:
    """The arguments start a sandbox that accepts every portal's token or OAuth grant."""
    from sandbox.__main__ import parse_args

    portals = parse_portals_file(write(tmp_path, EXAMPLE))
    args = sandbox_args(portals)
    config, _, _ = parse_args(args)
    assert config.tokens == ["pat-acme", "oauth-portal-globex-2", "pat-initech"]
    assert [(a.client_id, a.refresh_token, a.portal_token) for a in config.oauth_apps] == [
        ("cid", "rt-globex", "oauth-portal-globex-2")
    ]


def test_a_yaml_error_never_quotes_the_line_that_holds_a_token(tmp_path: Path) -> None:
    """PyYAML's message quotes the offending line; a token there must not reach logs."""
    path = tmp_path / "portals.yaml"
    path.write_text("portals:\n  - id: acme\n    hubspot: {token: pat-na1-SECRET-9f3e: x}\n")
    with pytest.raises(PortalsFileError) as caught:
        parse_portals_file(path)
    text = str(caught.value)
    assert "not valid YAML: line 3" in text
    assert "SECRET" not in text and caught.value.__cause__ is None


def test_secret_values_are_every_credential_and_each_rotation_value(tmp_path: Path) -> None:
    """What the ingress and ``hubspot setup`` mask in logs: HubSpot tokens, OAuth client
    secrets and refresh tokens, and each comma-separated value of a provider secret (as
    ``Settings.provider_secrets`` splits them)."""
    text = EXAMPLE.replace("{secret: g-acme}", '{secret: "g-acme-old, g-acme-new,"}')
    portals = parse_portals_file(write(tmp_path, text))
    assert sorted(secret_values(portals)) == sorted(
        ["pat-acme", "g-acme-old", "g-acme-new", "tw-acme"]
        + ["csec", "rt-globex", "ac-globex", "pat-initech"]
    )
    settings = Settings(generic_secret=SecretStr(" a, b ,,"), aircall_token=None)
    assert secret_values(load_portals(settings)) == ["sandbox-token", "a", "b"]
    assert settings.provider_secrets("generic") == ("a", "b")
