"""The webhook receiver over real HTTP on 127.0.0.1: signatures, tolerance both ways, body cap, dedupe, durability."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipelines.webhooks.receiver import SignatureError, verify_signature
from tests.events.helpers import SECRET, T0, account, event, signed
from tests.events.receiver import ReceiverHandle, start_receiver

CAP = 16 * 1024


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "events" / "webhook_events.sqlite"


@pytest.fixture
def receiver(store_path: Path) -> Iterator[ReceiverHandle]:
    handle = start_receiver(store_path, SECRET, "127.0.0.1", port=0, max_body_bytes=CAP)
    yield handle
    handle.stop()


def stored_rows(store_path: Path) -> list[tuple]:
    """The store read through a connection of its own, as another process would see it."""
    if not store_path.exists():
        return []
    with sqlite3.connect(store_path) as con:
        return con.execute("SELECT event_id, type, account_id, source FROM stored_events ORDER BY seq").fetchall()


def refreshed(event_id: str = "evt_1") -> dict:
    return event(event_id, "refreshed_balance", T0 + 100, account(balance={
        "as_of": T0 + 90, "type": "cash", "current": {"usd": 6000}, "cash": {"available": {"usd": 5000}}}))


def test_good_signature_is_stored_before_the_200(receiver: ReceiverHandle, store_path: Path) -> None:
    body, headers = signed(refreshed("evt_good"))
    response = httpx.post(receiver.webhook_url, content=body, headers=headers)
    assert response.status_code == 200
    # Read right after the answer, from a separate connection: the row is already committed.
    assert stored_rows(store_path) == [
        ("evt_good", "financial_connections.account.refreshed_balance", "fca_1", "webhook")
    ]
    with sqlite3.connect(store_path) as con:
        (payload,) = con.execute("SELECT payload FROM stored_events").fetchone()
    assert payload == body.decode()  # the raw body as delivered


def test_duplicate_delivery_is_stored_once(receiver: ReceiverHandle, store_path: Path) -> None:
    payload = refreshed("evt_dup")
    answers = []
    for _ in range(3):  # Stripe retries re-sign with a fresh timestamp; the id is what dedupes
        body, headers = signed(payload)
        answers.append(httpx.post(receiver.webhook_url, content=body, headers=headers))
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["duplicate"] for a in answers] == [False, True, True]
    assert [row[0] for row in stored_rows(store_path)] == ["evt_dup"]


def _bad_headers(body: bytes) -> dict[str, dict[str, str]]:
    # 10 s past the tolerance: `now` is floored to a second and the request takes its time, so 301 s could land inside.
    now = int(time.time())
    good = signed(body.decode(), timestamp=now)[1]["Stripe-Signature"]
    return {
        "wrong secret": signed(body.decode(), secret="whsec_someOtherSecret")[1],
        "missing header": {},
        "empty header": {"Stripe-Signature": ""},
        "no timestamp": {"Stripe-Signature": good.split(",", 1)[1]},
        "no v1": {"Stripe-Signature": good.split(",", 1)[0]},
        "garbage": {"Stripe-Signature": "not a signature at all"},
        "non-numeric t": {"Stripe-Signature": good.replace(f"t={now}", "t=soon")},
        "v0 scheme only": {"Stripe-Signature": good.replace("v1=", "v0=")},
        "stale (t - 310 s)": signed(body.decode(), timestamp=now - 310)[1],
        "future (t + 310 s)": signed(body.decode(), timestamp=now + 310)[1],
    }


@pytest.mark.parametrize("case", list(_bad_headers(b"{}")))
def test_bad_signatures_get_400_and_store_nothing(receiver: ReceiverHandle, store_path: Path, case: str) -> None:
    body = json.dumps(refreshed("evt_forged")).encode()
    response = httpx.post(receiver.webhook_url, content=body, headers=_bad_headers(body)[case])
    assert response.status_code == 400, case
    assert stored_rows(store_path) == []


def test_tolerance_holds_just_inside_both_edges(receiver: ReceiverHandle, store_path: Path) -> None:
    now = int(time.time())
    for event_id, timestamp in (("evt_past", now - 290), ("evt_future", now + 290)):
        body, headers = signed(refreshed(event_id), timestamp=timestamp)
        assert httpx.post(receiver.webhook_url, content=body, headers=headers).status_code == 200
    assert [row[0] for row in stored_rows(store_path)] == ["evt_past", "evt_future"]


def test_any_matching_v1_is_accepted(receiver: ReceiverHandle, store_path: Path) -> None:
    body, headers = signed(refreshed("evt_roll"))
    t_part, v1_part = headers["Stripe-Signature"].split(",")
    # While a secret is rolled Stripe signs with the old and the new one.
    headers["Stripe-Signature"] = f"{t_part},v1={'0' * 64},{v1_part}"
    assert httpx.post(receiver.webhook_url, content=body, headers=headers).status_code == 200
    assert [row[0] for row in stored_rows(store_path)] == ["evt_roll"]


def test_a_tampered_body_fails_verification(receiver: ReceiverHandle, store_path: Path) -> None:
    body, headers = signed(refreshed("evt_tamper"))
    tampered = body.replace(b"6000", b"9000")
    assert tampered != body
    assert httpx.post(receiver.webhook_url, content=tampered, headers=headers).status_code == 400
    assert stored_rows(store_path) == []


@pytest.mark.parametrize("payload", ["{not json", "[1, 2]", '{"id": "evt_x", "type": "t"}', '"just a string"'])
def test_signed_but_unusable_bodies_get_400(receiver: ReceiverHandle, store_path: Path, payload: str) -> None:
    body, headers = signed(payload)
    response = httpx.post(receiver.webhook_url, content=body, headers=headers)
    assert response.status_code == 400
    assert stored_rows(store_path) == []


def test_body_over_the_cap_gets_413(receiver: ReceiverHandle, store_path: Path) -> None:
    big = refreshed("evt_big")
    big["data"]["object"]["display_name"] = "x" * (CAP + 10)
    body, headers = signed(big)
    assert httpx.post(receiver.webhook_url, content=body, headers=headers).status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the receiver must stop reading by itself
        for start in range(0, len(body), 4096):
            yield body[start:start + 4096]

    assert httpx.post(receiver.webhook_url, content=chunks(), headers=headers).status_code == 413
    assert stored_rows(store_path) == []
    # A body of exactly the cap is still read whole (and then judged on its signature).
    exact = b" " * CAP
    assert httpx.post(receiver.webhook_url, content=exact, headers=signed(exact.decode())[1]).status_code == 400


def test_other_event_types_are_acknowledged_but_not_kept(receiver: ReceiverHandle, store_path: Path) -> None:
    customer_event = {"id": "evt_cus", "object": "event", "type": "customer.created", "created": T0,
                      "data": {"object": {"id": "cus_A", "object": "customer", "email": "ann@example.com"}}}
    body, headers = signed(customer_event)
    response = httpx.post(receiver.webhook_url, content=body, headers=headers)
    assert response.status_code == 200
    assert response.json()["stored"] is False
    assert stored_rows(store_path) == []
    assert b"ann@example.com" not in store_path.read_bytes()


def test_store_busy_gets_503_so_stripe_retries(tmp_path: Path) -> None:
    store_path = tmp_path / "busy.sqlite"
    handle = start_receiver(store_path, SECRET, port=0, store_busy_timeout=0.2)
    try:
        blocker = sqlite3.connect(store_path, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")  # another process holding the write lock
        body, headers = signed(refreshed("evt_busy"))
        assert httpx.post(handle.webhook_url, content=body, headers=headers).status_code == 503
        blocker.execute("ROLLBACK")
        blocker.close()
        assert httpx.post(handle.webhook_url, content=body, headers=headers).status_code == 200
    finally:
        handle.stop()
    assert [row[0] for row in stored_rows(store_path)] == ["evt_busy"]


def test_healthz(receiver: ReceiverHandle) -> None:
    response = httpx.get(receiver.url + "/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_error_answers_never_echo_the_secret_or_signature(receiver: ReceiverHandle) -> None:
    body = json.dumps(refreshed("evt_echo")).encode()
    for headers in _bad_headers(body).values():
        response = httpx.post(receiver.webhook_url, content=body, headers=headers)
        text = response.text
        assert SECRET not in text and "whsec_" not in text
        signature = headers.get("Stripe-Signature", "")
        for part in signature.split(","):
            if part.startswith("v1=") and len(part) > 10:
                assert part[3:] not in text


def test_verify_signature_matches_stripe_python() -> None:
    """Our verifier accepts exactly what stripe-python's own header generator produces, and checks the HMAC."""
    body = b'{"id":"evt_1"}'
    now = 1_800_000_000
    header = signed(body.decode(), timestamp=now)[1]["Stripe-Signature"]
    assert verify_signature(body, header, SECRET, now=now) == now
    expected = hmac.new(SECRET.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    assert header == f"t={now},v1={expected}"
    with pytest.raises(SignatureError, match="too old"):
        verify_signature(body, header, SECRET, now=now + 301)
    with pytest.raises(SignatureError, match="future"):
        verify_signature(body, header, SECRET, now=now - 301)
    assert verify_signature(body, header, SECRET, now=now + 300) == now
    assert verify_signature(body, header, SECRET, now=now - 300) == now


def test_bodies_and_signatures_the_sdk_cannot_compare_are_refused() -> None:
    """A body that is not UTF-8 and a v1 value with non-ASCII characters: a refusal, never an exception."""
    now = int(time.time())
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(b"\xff\xfe{}", signed("{}", timestamp=now)[1]["Stripe-Signature"], SECRET)
    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(b"{}", f"t={now},v1=\u00e9\u00e9", SECRET)
    with pytest.raises(SignatureError, match="malformed"):
        verify_signature(b"{}", "t=" + "9" * 5000, SECRET)
