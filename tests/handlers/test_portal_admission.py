"""Admission per portal (``service.ingress.admission.select`` and ``service.ingress.portals``):
each portal verifies with its own secrets (rotation and ``whsec_`` keys included), an
unknown portal is 404 before anything else, replay ids never collide across portals,
events carry their portal, and the start-up checks look at every portal."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from handlers import REGISTRY, generic, vonage
from handlers.event import encode_event
from service.config import Settings
from service.ingress import ReplayGuard, startup_problem
from service.ingress.admission import Accept, Answer, Inbound, Policy, admit, preflight, select
from service.ingress.portals import UNKNOWN, policies, portal_label, prepare
from service.portals import load_portals
from tests.handlers.test_stdwebhooks import KEY, OTHER, signed

NOW = 1_772_550_245.0
BODY = orjson.dumps(
    {
        "event_id": "e-1",
        "call_id": "c-1",
        "type": "call.ended",
        "occurred_at": "2026-03-03T15:00:00Z",
    }
)
PORTALS = f"""
portals:
  - id: acme
    hubspot: {{token: pat-acme}}
    providers:
      generic: {{secret: "acme-old, acme-new"}}
      vonage: {{signature_secret: vonage-acme}}
  - id: globex
    hubspot: {{token: pat-globex}}
    providers:
      generic: {{secret: "globex-plain,{KEY}"}}
      vonage: {{signature_secret: vonage-globex}}
  - id: initech
    hubspot: {{token: pat-initech}}
    providers:
      aircall: {{token: ac-initech}}
"""


def registry(tmp_path: Path, text: str = PORTALS) -> dict[str, Policy]:
    path = tmp_path / "portals.yaml"
    path.write_text(text)
    settings = Settings(portals_file=path)
    return policies(load_portals(settings), Policy(secrets={}, max_body_bytes=1024 * 1024))


def inbound(portal: str, secret: str, body: bytes = BODY) -> Inbound:
    ts = str(int(NOW))
    return Inbound(
        provider="generic",
        method="POST",
        url=f"https://h/webhooks/generic/{portal}",
        local_url=f"http://127.0.0.1/webhooks/generic/{portal}",
        headers={
            "content-type": "application/json",
            "x-callbridge-timestamp": ts,
            "x-callbridge-signature": generic.sign(secret, ts, body),
        },
        body=body,
        portal=portal,
    )


def decide(portal: str, secret: str, rules: dict[str, Policy]) -> Accept | Answer:
    policy = select(portal, rules)
    assert isinstance(policy, Policy)
    return admit(inbound(portal, secret), REGISTRY["generic"], policy, NOW, lambda _: False)


def never_seen(_: str) -> bool:
    return False


def test_each_portal_verifies_with_its_own_secrets_only(tmp_path: Path) -> None:
    """acme's two rotated secrets verify on acme and are 401 on globex, and the other way
    round; the accepted events carry their portal and its portal key."""
    rules = registry(tmp_path)
    for secret in ("acme-old", "acme-new"):
        accepted = decide("acme", secret, rules)
        assert isinstance(accepted, Accept), accepted
        (event,) = accepted.events
        assert (event.portal, event.portal_key) == ("acme", "acme/generic:c-1")
        refused = decide("globex", secret, rules)
        assert isinstance(refused, Answer) and refused.status == 401
        assert refused.error == "invalid signature"
    assert isinstance(decide("globex", "globex-plain", rules), Accept)
    assert isinstance(decide("acme", "globex-plain", rules), Answer)


def test_unknown_portals_are_404_and_ids_are_never_echoed_unchecked(tmp_path: Path) -> None:
    """A portal not in the file, or not a portal id at all, is 404 "unknown portal"; the
    detail names a well-formed id only."""
    rules = registry(tmp_path)
    assert select("nope", rules) == Answer(404, "unknown portal", "nope")
    assert select("default", rules) == Answer(404, "unknown portal", "default")
    for bad in ("ACME", "a" * 41, "", "acme\n", "../acme", "<script>"):
        answer = select(bad, rules)
        assert isinstance(answer, Answer) and answer.status == 404, bad
        assert answer.error == "unknown portal"
        assert not bad or bad not in answer.detail
    assert select("acme", rules) is rules["acme"]


def test_a_provider_off_in_a_portal_answers_as_a_disabled_provider(tmp_path: Path) -> None:
    """generic is on in acme and off in initech: preflight on initech's policy is exactly
    today's disabled-provider answer; aircall is on in initech only."""
    rules = registry(tmp_path)
    assert preflight("generic", "12", "application/json", rules["initech"]) == Answer(
        404, "provider not enabled", "generic"
    )
    assert preflight("generic", "12", "application/json", rules["acme"]) is REGISTRY["generic"]
    assert preflight("aircall", "12", "application/json", rules["initech"]) is REGISTRY["aircall"]
    assert isinstance(preflight("aircall", "12", "application/json", rules["acme"]), Answer)


def test_standard_webhooks_keys_per_portal_and_replay_ids_per_portal(tmp_path: Path) -> None:
    """globex has a whsec_ key beside a plain secret; the same webhook-id accepted on
    globex is a replay on globex only: remembered under the portal's key."""
    rules = registry(tmp_path)
    guard = ReplayGuard(lambda: NOW)
    request = Inbound(
        "generic", "POST", "https://h", "http://l", signed(BODY, ts=int(NOW)), BODY, "globex"
    )
    first = admit(request, REGISTRY["generic"], rules["globex"], NOW, guard.seen)
    assert isinstance(first, Accept) and first.replay_key == "globex/generic:msg_1"
    guard.remember(first.replay_key, first.replay_ttl_s)
    again = admit(request, REGISTRY["generic"], rules["globex"], NOW, guard.seen)
    assert isinstance(again, Answer) and again.error == "replayed request"
    on_acme = admit(
        Inbound(
            "generic", "POST", "https://h", "http://l", signed(BODY, ts=int(NOW)), BODY, "acme"
        ),
        REGISTRY["generic"],
        rules["acme"],
        NOW,
        guard.seen,
    )
    assert isinstance(on_acme, Answer) and on_acme.error == "invalid signature"
    other_key = Inbound(
        "generic",
        "POST",
        "https://h",
        "http://l",
        signed(BODY, key=OTHER, ts=int(NOW)),
        BODY,
        "globex",
    )
    assert isinstance(
        admit(other_key, REGISTRY["generic"], rules["globex"], NOW, guard.seen), Answer
    )


def test_the_same_vonage_jti_in_two_portals_is_two_requests(tmp_path: Path) -> None:
    """A jti remembered in acme does not make the same jti (signed with globex's secret)
    a replay in globex; in acme it is one."""
    rules = registry(tmp_path)
    guard = ReplayGuard(lambda: NOW)
    body = orjson.dumps(
        {
            "uuid": "u-1",
            "status": "answered",
            "direction": "outbound",
            "timestamp": "2026-03-03T15:04:05Z",
        }
    )

    def request(portal: str, secret: str) -> Inbound:
        token = vonage.sign(secret, body, int(NOW), "jti-shared")
        headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
        return Inbound("vonage", "POST", "https://h", "http://l", headers, body, portal)

    acme = admit(request("acme", "vonage-acme"), REGISTRY["vonage"], rules["acme"], NOW, guard.seen)
    assert isinstance(acme, Accept) and acme.replay_key == "acme/vonage:jti-shared"
    guard.remember(acme.replay_key, acme.replay_ttl_s)
    globex = admit(
        request("globex", "vonage-globex"), REGISTRY["vonage"], rules["globex"], NOW, guard.seen
    )
    assert isinstance(globex, Accept) and globex.replay_key == "globex/vonage:jti-shared"
    assert globex.events[0].portal == "globex"
    replay = admit(
        request("acme", "vonage-acme"), REGISTRY["vonage"], rules["acme"], NOW, guard.seen
    )
    assert isinstance(replay, Answer) and replay.error == "replayed request"


def test_the_default_portal_keeps_todays_keys_and_secrets() -> None:
    """Without a file the one portal is "default", from the CALLBRIDGE_* secrets (rotation
    kept); its replay keys and event keys are today's, without a portal prefix."""
    settings = Settings(generic_secret="old,new")  # type: ignore[arg-type]
    rules = policies(load_portals(settings), Policy(secrets={}, max_body_bytes=1024 * 1024))
    assert set(rules) == {"default"}
    assert rules["default"].secrets["generic"] == ("old", "new")
    assert rules["default"].secrets["zoom"] == ()
    accepted = decide("default", "new", rules)
    assert isinstance(accepted, Accept)
    (event,) = accepted.events
    assert (event.portal, event.portal_key) == ("default", "generic:c-1")
    assert b"portal" not in encode_event(event)
    # "default" as read from a URL (an equal, not identical string) encodes the same
    from_url = "".join(["def", "ault"])
    request = inbound("default", "new")
    decision = admit(
        Inbound(
            request.provider,
            request.method,
            request.url,
            request.local_url,
            request.headers,
            request.body,
            from_url,
        ),
        REGISTRY["generic"],
        rules["default"],
        NOW,
        never_seen,
    )
    assert isinstance(decision, Accept)
    assert encode_event(decision.events[0]) == encode_event(event)


def test_metrics_labels_are_bounded_by_the_registry(tmp_path: Path) -> None:
    """A configured portal labels as itself; anything else (even "default" when the file
    has no such portal) is "unknown"."""
    rules = registry(tmp_path)
    assert [portal_label(p, rules) for p in ("acme", "globex", "initech")] == [
        "acme",
        "globex",
        "initech",
    ]
    assert {portal_label(p, rules) for p in ("default", "x" * 100, "Acme", "zz")} == {UNKNOWN}


def test_start_up_checks_every_portal(tmp_path: Path) -> None:
    """Twilio on in a portal with no known public URL, a bad whsec_ key in a portal, or
    an invalid file stop the start with a message naming the portal or the file."""
    twilio = tmp_path / "twilio.yaml"
    twilio.write_text(
        "portals:\n  - id: acme\n    hubspot: {token: t}\n    providers:\n"
        "      twilio: {auth_token: tw}\n"
    )
    problem = startup_problem(Settings(portals_file=twilio))
    assert problem is not None and "CALLBRIDGE_PUBLIC_URL" in problem and "acme" in problem
    assert startup_problem(Settings(portals_file=twilio, public_url="https://h")) is None
    whsec = tmp_path / "whsec.yaml"
    whsec.write_text(
        "portals:\n  - id: globex\n    hubspot: {token: t}\n    providers:\n"
        "      generic: {secret: 'plain,whsec_!!!'}\n"
    )
    problem = startup_problem(Settings(portals_file=whsec))
    assert problem is not None and "globex" in problem and "whsec_" in problem
    assert "plain" not in problem
    broken = tmp_path / "broken.yaml"
    broken.write_text("portals:\n  - id: Not_An_Id\n    hubspot: {token: t}\n")
    problem = startup_problem(Settings(portals_file=broken))
    assert problem is not None and str(broken) in problem
    missing = startup_problem(Settings(portals_file=tmp_path / "absent.yaml"))
    assert missing is not None and "absent.yaml" in missing
    ok = prepare(Settings(portals_file=whsec.with_name("twilio.yaml"), public_url="https://h"))
    assert [p.id for p in ok.portals] == ["acme"]


@pytest.mark.parametrize("secret", [KEY, "globex-plain"])
def test_whsec_and_plain_keys_side_by_side_in_one_portal(tmp_path: Path, secret: str) -> None:
    """globex's "plain,whsec_…" value: each key verifies its own scheme on globex."""
    rules = registry(tmp_path)
    if secret.startswith("whsec_"):
        headers = signed(BODY, key=secret, ts=int(NOW), msg_id="msg_side")
    else:
        headers = inbound("globex", secret).headers  # type: ignore[assignment]
    request = Inbound("generic", "POST", "https://h", "http://l", dict(headers), BODY, "globex")
    decision = admit(request, REGISTRY["generic"], rules["globex"], NOW, never_seen)
    assert isinstance(decision, Accept), decision
