"""Properties of protocol.messages: round trips, named refusals, and fuzzed frames."""

import contextlib

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.constants import MAX_PROOF, MAX_THRESHOLD
from protocol.errors import DecodeError, LocalProtocolError
from protocol.messages import (
    MAX_FRAME_BYTES,
    Message,
    ShareAck,
    ShareDelivery,
    address_bytes,
    address_int,
    decode,
    encode,
)

b20 = st.binary(min_size=20, max_size=20)
b32 = st.binary(min_size=32, max_size=32)
numbers = st.integers(0, 2**63 - 1)
proofs = st.lists(b32, max_size=8).map(tuple)

deliveries = st.builds(
    ShareDelivery,
    task=numbers,
    round=numbers,
    dealer=b20,
    holder=b20,
    seed_share=b32,
    seed_blind=b32,
    key_share=b32,
    key_blind=b32,
    mask_public=b32,
    shares_root=b32,
    seed_proof=proofs,
    key_proof=proofs,
    points=st.integers(2, 32).flatmap(lambda t: st.binary(min_size=128 * t, max_size=128 * t)),
)
acks = st.builds(ShareAck, task=numbers, round=numbers, dealer=b20, holder=b20, shares_root=b32)
messages = st.one_of(deliveries, acks)


def raw(msg: Message) -> dict:
    return msgspec.msgpack.decode(encode(msg))


def reason_of(frame: bytes) -> str:
    with pytest.raises(DecodeError) as err:
        decode(frame)
    return err.value.reason


@given(msg=messages)
def test_round_trip(msg: Message) -> None:
    frame = encode(msg)
    assert len(frame) <= MAX_FRAME_BYTES
    assert decode(frame) == msg


@given(msg=deliveries)
def test_share_accessors(msg: ShareDelivery) -> None:
    assert (msg.share(0), msg.proof(0)) == (msg.seed_share, msg.seed_proof)
    assert (msg.share(1), msg.proof(1)) == (msg.key_share, msg.key_proof)
    assert (msg.blind(0), msg.blind(1)) == (msg.seed_blind, msg.key_blind)
    for accessor in (msg.share, msg.blind, msg.proof, msg.polynomial):
        with pytest.raises(LocalProtocolError):
            accessor(2)


@given(addr=st.integers(0, 2**160 - 1))
def test_address_round_trip(addr: int) -> None:
    assert address_int(address_bytes(addr)) == addr


def test_address_refusal() -> None:
    with pytest.raises(LocalProtocolError):
        address_bytes(2**160)


@given(msg=deliveries, data=st.data())
def test_wrong_field_sizes_are_named(msg: ShareDelivery, data: st.DataObject) -> None:
    fields = [
        "dealer",
        "holder",
        "seed_share",
        "seed_blind",
        "key_share",
        "key_blind",
        "mask_public",
        "shares_root",
    ]
    name = data.draw(st.sampled_from(fields))
    bad = raw(msg)
    good_len = len(bad[name])
    bad[name] = data.draw(st.binary(max_size=40).filter(lambda b: len(b) != good_len))
    assert reason_of(msgspec.msgpack.encode(bad)) == "field_size"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda m: m.update(seed_proof=[bytes(32)] * 9), "field_size"),
        (lambda m: m.update(points=bytes(128)), "field_size"),
        (lambda m: m.update(points=bytes(4097)), "field_size"),
        (lambda m: m.update(key_proof=[bytes(31)]), "field_size"),
        (lambda m: m.update(task=-1), "field_range"),
        (lambda m: m.update(round=2**64 - 1), "field_range"),
        (lambda m: m.update(extra=1), "schema"),
        (lambda m: m.pop("holder"), "schema"),
        (lambda m: m.pop("key_blind"), "schema"),
        (lambda m: m.update(seed_share="x" * 32), "schema"),
        (lambda m: m.update(type="share_bomb"), "unknown_type"),
        (lambda m: m.update(type=3), "schema"),
        (lambda m: m.pop("type"), "schema"),
    ],
)
def test_malformed_fields_are_named(change, reason: str) -> None:
    msg = ShareDelivery(
        task=1,
        round=0,
        dealer=bytes(20),
        holder=bytes(20),
        seed_share=bytes(32),
        seed_blind=bytes(32),
        key_share=bytes(32),
        key_blind=bytes(32),
        mask_public=bytes(32),
        shares_root=bytes(32),
        seed_proof=(),
        key_proof=(),
        points=bytes(256),
    )
    fields = raw(msg)
    change(fields)
    assert reason_of(msgspec.msgpack.encode(fields)) == reason


def test_the_largest_delivery_fits_a_frame() -> None:
    # t = MAX_THRESHOLD (2 t points of 64 bytes), two full proofs, every 32-byte field set
    top = b"\xff" * 32
    largest = ShareDelivery(
        task=2**63 - 1,
        round=2**63 - 1,
        dealer=b"\xff" * 20,
        holder=b"\xff" * 20,
        seed_share=top,
        seed_blind=top,
        key_share=top,
        key_blind=top,
        mask_public=top,
        shares_root=top,
        seed_proof=(top,) * MAX_PROOF,
        key_proof=(top,) * MAX_PROOF,
        points=bytes(2 * MAX_THRESHOLD * 64),
    )
    frame = encode(largest)
    assert len(frame) <= MAX_FRAME_BYTES and decode(frame) == largest


def test_frame_level_refusals() -> None:
    frame = encode(
        ShareAck(task=1, round=2, dealer=bytes(20), holder=bytes(20), shares_root=bytes(32))
    )
    assert reason_of(bytes(MAX_FRAME_BYTES + 1)) == "too_large"
    assert reason_of(b"") == "malformed"
    assert reason_of(frame[:-1]) == "malformed"
    assert reason_of(frame + b"\x00") == "malformed"
    assert reason_of(b"\xc1") == "malformed"
    # a str that is not UTF-8 (msgspec raises UnicodeDecodeError for it)
    assert reason_of(b"\x81\xa4type\xa1\x80") == "malformed"
    assert reason_of(msgspec.msgpack.encode([1, 2])) == "schema"
    # deep nesting in an unknown field: msgspec either skips it (then "type" is missing) or
    # hits its recursion limit, depending on the stack it runs on; both are named refusals
    assert reason_of(b"\x81\xa1a" + b"\x91" * 4000 + b"\xc0") in {"malformed", "schema"}


def test_encode_refuses_invalid_messages() -> None:
    with pytest.raises(LocalProtocolError):
        encode(ShareAck(task=1, round=2, dealer=bytes(3), holder=bytes(20), shares_root=bytes(32)))
    with pytest.raises(LocalProtocolError):
        encode({"type": "share_ack"})  # type: ignore[arg-type]


@given(data=st.binary(max_size=600))
def test_fuzzed_bytes_only_raise_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode(data)


@given(msg=messages, data=st.data())
def test_mutated_frames_only_raise_decode_error(msg: Message, data: st.DataObject) -> None:
    frame = bytearray(encode(msg))
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(frame) - 1))
        frame[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(frame)))
    try:
        decoded = decode(bytes(frame[:cut]))
    except DecodeError:
        return
    # whatever survives mutation is still a fully valid message
    assert decode(encode(decoded)) == decoded
