"""The Hocuspocus frame codec against bytes the real npm packages produce.

The hex below was printed by @hocuspocus/server 4.7.0's OutgoingMessage (server frames)
and by lib0 + @hocuspocus/common's writeAuthentication exactly as @hocuspocus/provider
4.7.0's AuthenticationMessage and CloseMessage write them (provider frames), for a
document "doc-1" and a Y.Doc with clientID 7 holding m.k = "v"."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from castroom.sync import hocuspocus as hp
from castroom.sync import protocol
from castroom.sync.protocol import ProtocolError

NODE = {
    "authenticated_rw": "05646f632d3102020a726561642d7772697465",
    "authenticated_ro": "05646f632d31020208726561646f6e6c79",
    "denied": "05646f632d310201117065726d697373696f6e2d64656e696564",
    "token_request": "05646f632d310200",
    "status_ok": "05646f632d310801",
    "status_no": "05646f632d310800",
    "close": "05646f632d31071c53657276657220636c6f7365642074686520636f6e6e656374696f6e",
    "stateless": "05646f632d3105077b2261223a317d",
    "step1": "05646f632d31000003010701",
    "update": "05646f632d3100020f010107002801016d016b0177017600",
    "auth": "05646f632d31020003746f6b05342e372e30",
    "provider_close": "05646f632d3107",
}
SV = bytes.fromhex("010701")
UPDATE = bytes.fromhex("010107002801016d016b0177017600")
LIMIT = 1 << 20


def _node(name: str) -> bytes:
    return bytes.fromhex(NODE[name])


def test_encoders_write_what_hocuspocus_writes() -> None:
    assert hp.authenticated("doc-1", read_only=False) == _node("authenticated_rw")
    assert hp.authenticated("doc-1", read_only=True) == _node("authenticated_ro")
    assert hp.permission_denied("doc-1", "permission-denied") == _node("denied")
    assert hp.sync_status("doc-1", applied=True) == _node("status_ok")
    assert hp.sync_status("doc-1", applied=False) == _node("status_no")
    assert hp.close("doc-1", "Server closed the connection") == _node("close")
    assert hp.close("doc-1") == _node("provider_close")
    assert hp.stateless("doc-1", '{"a":1}') == _node("stateless")
    assert hp.token("doc-1", "tok", "4.7.0") == _node("auth")
    assert hp.wrap("doc-1", protocol.step1_frame(SV)) == _node("step1")
    assert hp.wrap("doc-1", protocol.update_frame(UPDATE)) == _node("update")


def test_decoding_hocuspocus_frames() -> None:
    auth = hp.decode(_node("auth"), max_size=LIMIT)
    assert (auth.name, auth.type, auth.auth, auth.text, auth.version) == (
        "doc-1",
        hp.HPType.AUTH,
        hp.AuthType.TOKEN,
        "tok",
        "4.7.0",
    )
    ok = hp.decode(_node("authenticated_ro"), max_size=LIMIT)
    assert (ok.auth, ok.text) == (hp.AuthType.AUTHENTICATED, hp.SCOPE_READ)
    denied = hp.decode(_node("denied"), max_size=LIMIT)
    assert (denied.auth, denied.text) == (hp.AuthType.PERMISSION_DENIED, "permission-denied")
    request = hp.decode(_node("token_request"), max_size=LIMIT)
    assert (request.auth, request.text) == (hp.AuthType.TOKEN, "")
    assert hp.decode(_node("status_ok"), max_size=LIMIT).applied is True
    assert hp.decode(_node("status_no"), max_size=LIMIT).applied is False
    assert hp.decode(_node("close"), max_size=LIMIT).text == "Server closed the connection"
    assert hp.decode(_node("provider_close"), max_size=LIMIT).type is hp.HPType.CLOSE
    assert hp.decode(_node("stateless"), max_size=LIMIT).text == '{"a":1}'
    assert hp.decode(hp.PING, max_size=LIMIT).type is hp.HPType.PING
    assert hp.decode(hp.PONG, max_size=LIMIT).type is hp.HPType.PONG


def test_yjs_bodies_become_y_websocket_frames() -> None:
    step1 = hp.decode(_node("step1"), max_size=LIMIT)
    assert step1.yjs == protocol.step1_frame(SV)
    message = protocol.decode_message(step1.yjs)
    assert (message.sync_type, message.payload) == (protocol.SyncType.STEP1, SV)
    update = protocol.decode_message(hp.decode(_node("update"), max_size=LIMIT).yjs)
    assert (update.sync_type, update.payload) == (protocol.SyncType.UPDATE, UPDATE)
    # A sync reply (server to server through Redis) is read as a plain sync frame.
    reply = bytes([5, *b"doc-1", hp.HPType.SYNC_REPLY]) + protocol.step1_frame(SV)[1:]
    assert hp.decode(reply, max_size=LIMIT).yjs == protocol.step1_frame(SV)


def test_session_aware_address() -> None:
    address = "doc-1\0abc123"
    frame = hp.decode(hp.wrap(address, protocol.QUERY_AWARENESS_FRAME), max_size=LIMIT)
    assert (frame.address, frame.name) == (address, "doc-1")


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty frame"),
        (bytes([5, *b"doc-1", 42]), "unknown Hocuspocus message type 42"),
        (bytes([5, *b"doc-1", 2, 9]), "unknown auth message type 9"),
        (bytes([5, *b"doc-1", 8, 1, 0]), "1 unexpected bytes"),
        (bytes([5, *b"doc"]), "truncated"),
        (bytes([5, *b"doc-1", 9]), "carries no document name"),
        (bytes([2, 0xFF, 0xFE, 0]), "not UTF-8"),
        (bytes([5, *b"doc-1", 5]), "truncated"),
    ],
)
def test_bad_frames_raise_one_clear_error(data: bytes, words: str) -> None:
    with pytest.raises(ProtocolError, match=words):
        hp.decode(data, max_size=LIMIT)


def test_oversized_frame_is_refused_before_decoding() -> None:
    with pytest.raises(ProtocolError, match="exceeds the 10-byte limit"):
        hp.decode(hp.stateless("doc", "x" * 20), max_size=10)


@given(
    address=st.text(max_size=40),
    secret=st.text(max_size=40),
    reason=st.text(max_size=40),
    applied=st.booleans(),
)
def test_round_trips(address: str, secret: str, reason: str, applied: bool) -> None:
    if not address:
        address = "d"
    frame = hp.decode(hp.token(address, secret), max_size=LIMIT)
    assert (frame.address, frame.text, frame.version) == (address, secret, hp.VERSION)
    assert hp.decode(hp.permission_denied(address, reason), max_size=LIMIT).text == reason
    assert hp.decode(hp.close(address, reason), max_size=LIMIT).text == reason
    assert hp.decode(hp.sync_status(address, applied=applied), max_size=LIMIT).applied is applied
    assert hp.decode(hp.stateless(address, reason), max_size=LIMIT).text == reason


@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_protocol_error(data: bytes) -> None:
    try:
        frame = hp.decode(data, max_size=LIMIT)
    except ProtocolError:
        return
    if frame.yjs:
        with contextlib.suppress(ProtocolError):
            protocol.decode_message(frame.yjs)


def test_is_auth_tells_a_provider_first_frame() -> None:
    assert hp.is_auth(_node("auth"))
    assert not hp.is_auth(_node("step1"))
    assert not hp.is_auth(protocol.step1_frame(SV))  # a y-websocket frame
    assert not hp.is_auth(b"\xff")
