"""Hostile bytes against every decoder that reads a peer's frame or the chain's data: each one
either decodes or raises its own named error, never anything else, and never allocates more
than its input justifies.

Decoders: `protocol.messages.decode` (channel messages; raw bytes and mutated frames are fuzzed
in tests/protocol/test_channel_messages.py, here arbitrary msgpack structures), the channel's
`FrameDecoder`, `protocol.encoding.unpack_lanes` (update words from `UpdateChunk` events),
`actors.learning.spec_model.public_model_from_bytes` (the public model from `ModelChunk` events:
safetensors bytes checked against the task's spec, here the MNIST spec's) and
`protocol.recovery.recover_group_aggregate` (a group's chain data after it finalized).
"""

from __future__ import annotations

import contextlib
import itertools
import struct
from dataclasses import replace
from functools import cache
from pathlib import Path

import msgspec
import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from actors.channels.errors import FrameTooLarge, MalformedFrame
from actors.channels.framing import PREFIX_LEN, FrameDecoder
from actors.learning import spec_model as sm
from protocol.constants import STATUS_COMMITTED, STATUS_SUBMITTED
from protocol.encoding import pack_lanes, unpack_lanes, word_count
from protocol.errors import ConfigError, DecodeError, DecodeReason
from protocol.messages import ShareAck, ShareDelivery, decode, encode
from protocol.recovery import GroupRecoveryError, RevealedShare
from protocol.spec import TaskSpec, parse_spec, spec_hash
from tests.protocol.test_recovery import build_group

# -- channel messages: any msgpack structure ---------------------------------------------------

msgpack_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=True)
    | st.text(max_size=40)
    | st.binary(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=6)
        | st.dictionaries(st.text(max_size=12) | st.integers(-5, 5), inner, max_size=6)
    ),
    max_leaves=30,
)
FIELDS = {
    "share_delivery": list(ShareDelivery.__struct_fields__),
    "share_ack": list(ShareAck.__struct_fields__),
}


@given(value=msgpack_values)
def test_any_msgpack_value_decodes_or_raises_decode_error(value: object) -> None:
    frame = msgspec.msgpack.encode(value)
    with contextlib.suppress(DecodeError):
        decode(frame)


@given(
    tag=st.sampled_from(sorted(FIELDS)),
    data=st.data(),
)
def test_right_tag_with_fields_of_any_type_only_raises_decode_error(
    tag: str, data: st.DataObject
) -> None:
    names = data.draw(st.lists(st.sampled_from(FIELDS[tag]), unique=True), label="fields")
    fields = {name: data.draw(msgpack_values, label=name) for name in names}
    frame = msgspec.msgpack.encode({"type": tag, **fields})
    try:
        message = decode(frame)
    except DecodeError:
        return
    # whatever decodes re-encodes to a frame the other side accepts
    assert decode(encode(message)) == message


# -- the channel's length-prefixed frames ------------------------------------------------------


@given(
    wire=st.binary(max_size=2_000),
    cuts=st.lists(st.integers(0, 2_000), max_size=10),
    max_frame=st.integers(1, 600),
)
def test_frame_decoder_on_arbitrary_bytes_yields_bounded_frames_or_refuses(
    wire: bytes, cuts: list[int], max_frame: int
) -> None:
    decoder = FrameDecoder()
    bounds = sorted({0, len(wire), *(c for c in cuts if c < len(wire))})
    consumed = 0
    try:
        for start, end in itertools.pairwise(bounds):
            decoder.feed(wire[start:end])
            while (frame := decoder.next_frame(max_frame)) is not None:
                assert 0 < len(frame) <= max_frame
                assert wire[consumed + PREFIX_LEN : consumed + PREFIX_LEN + len(frame)] == frame
                consumed += PREFIX_LEN + len(frame)
    except (MalformedFrame, FrameTooLarge):
        return
    # what is left is less than one whole frame, never more than one frame's worth
    assert decoder.buffered == len(wire) - consumed
    assert decoder.buffered < PREFIX_LEN + max_frame


# -- masked update words from the chain --------------------------------------------------------

words = st.one_of(
    st.integers(0, 2**256 - 1),
    st.integers(-(2**300), 2**300),
    st.booleans(),
    st.none(),
    st.floats(),
    st.binary(max_size=40),
)


@given(
    chain_words=st.lists(words, max_size=40),
    d=st.integers(-3, 300),
    lane_bits=st.sampled_from([0, 1, 8, 16, 32, 64, 256]),
)
def test_unpack_lanes_on_arbitrary_words_only_raises_named_errors(
    chain_words: list[object], d: int, lane_bits: int
) -> None:
    try:
        lanes = unpack_lanes(chain_words, d, lane_bits)
    except DecodeError as error:
        assert error.reason in set(DecodeReason)
        return
    except ConfigError:  # d or lane_bits that no task config has
        assert lane_bits not in (16, 32) or d < 1
        return
    assert len(lanes) == d
    assert pack_lanes(lanes, lane_bits) == chain_words  # one encoding per update


@given(
    d=st.integers(1, 200),
    lane_bits=st.sampled_from([16, 32]),
    data=st.data(),
)
def test_mutated_update_words_are_refused_or_decode_to_their_one_encoding(
    d: int, lane_bits: int, data: st.DataObject
) -> None:
    lanes = data.draw(st.lists(st.integers(0, 2**lane_bits - 1), min_size=d, max_size=d))
    packed = pack_lanes(np.array(lanes), lane_bits)
    index = data.draw(st.integers(0, len(packed) - 1))
    mutation = data.draw(st.sampled_from(["flip", "drop", "extra", "negative", "wide"]))
    mutated = list(packed)
    if mutation == "flip":
        mutated[index] ^= 1 << data.draw(st.integers(0, 255))
    elif mutation == "drop":
        del mutated[index]
    elif mutation == "extra":
        mutated.insert(index, data.draw(st.integers(0, 2**256 - 1)))
    elif mutation == "negative":
        mutated[index] = -1 - mutated[index]
    else:
        mutated[index] += 2**256
    try:
        decoded = unpack_lanes(mutated, d, lane_bits)
    except DecodeError:
        return
    assert mutation == "flip" and len(mutated) == word_count(d, lane_bits)
    assert pack_lanes(decoded, lane_bits) == mutated


# -- the public model from ModelChunk events ---------------------------------------------------

MNIST_SPEC = Path(__file__).resolve().parents[2] / "examples" / "mnist-cnn.toml"


@cache
def _spec() -> TaskSpec:
    return parse_spec(MNIST_SPEC.read_bytes())


@cache
def _valid_model() -> bytes:
    return sm.public_model_to_bytes(_spec(), sm.new_public_model(_spec(), 1))


def _decode(data: bytes) -> sm.PublicModel:
    return sm.public_model_from_bytes(_spec(), data)


def _accepted(data: bytes) -> None:
    """Decode; if accepted, the model holds no more numbers than its bytes carry, all finite."""
    try:
        model = _decode(data)
    except ValueError:
        return
    vector = sm.public_vector(model)
    assert 4 * len(vector) <= len(data)
    assert np.all(np.isfinite(vector))


@given(data=st.binary(max_size=256))
def test_public_model_from_arbitrary_bytes_raises_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        _decode(data)


@given(
    size=st.integers(0, 2**64 - 1),
    shape=st.lists(st.integers(0, 2**40), max_size=4),
    end=st.integers(0, 2**64 - 1),
    body=st.binary(max_size=256),
)
def test_a_hostile_header_costs_no_memory(
    size: int, shape: list[int], end: int, body: bytes
) -> None:
    # A header may claim any length, and tensors of any shape and extent under the right
    # metadata; with a short body it is refused before a tensor is built, whatever it claims.
    metadata = {"format": sm.PUBLIC_FORMAT, "spec_hash": "0x" + spec_hash(_spec()).hex()}
    header = {
        "__metadata__": metadata,
        "body.0.weight": {"dtype": "F32", "shape": shape, "data_offsets": [0, end]},
    }
    text = msgspec.json.encode(header)
    with pytest.raises(ValueError):
        _decode(struct.pack("<Q", size) + text + body)
    with pytest.raises(ValueError):
        _decode(struct.pack("<Q", len(text)) + text + body)


@given(data=st.data())
def test_mutated_valid_models_are_refused_or_decode_exactly(data: st.DataObject) -> None:
    valid = bytearray(_valid_model())
    (size,) = struct.unpack_from("<Q", valid)
    start, count = 8 + size, (len(valid) - 8 - size) // 4
    mutation = data.draw(st.sampled_from(["length", "byte", "nan", "truncate", "extend"]))
    if mutation == "length":
        struct.pack_into("<Q", valid, 0, data.draw(st.integers(0, 2**64 - 1)))
    elif mutation == "byte":
        at = data.draw(st.integers(0, len(valid) - 1))
        valid[at] ^= data.draw(st.integers(1, 255))
    elif mutation == "nan":
        at = data.draw(st.integers(0, count - 1))
        value = data.draw(st.sampled_from([float("nan"), float("inf"), float("-inf")]))
        struct.pack_into("<f", valid, start + 4 * at, value)
    elif mutation == "truncate":
        del valid[data.draw(st.integers(0, len(valid) - 1)) :]
    else:
        valid += data.draw(st.binary(min_size=1, max_size=64))
    _accepted(bytes(valid))
    if mutation in ("nan", "truncate", "extend"):
        with pytest.raises(ValueError):
            _decode(bytes(valid))


# -- a finalized group's chain data -----------------------------------------------------------

# Each mutation changes one thing the chain reports, within the chain's own types (addresses
# of 160 bits, uint256 words, bytes32 values, small integers for statuses and kinds).
MUTATIONS = (
    "status",
    "stranger status",
    "public key",
    "drop public key",
    "word",
    "chunk",
    "digest",
    "drop submission",
    "share",
    "kind",
    "dealer",
    "holder",
    "drop reveal",
    "duplicate reveal",
    "threshold",
    "members",
    "d",
)


def _mutate(group, mutation: str, data: st.DataObject) -> dict:
    """Keyword overrides for `group.recover` that change one piece of chain data."""
    address = st.integers(0, 2**160 - 1)
    bytes32 = st.binary(min_size=32, max_size=32)
    members = list(group.members)
    statuses = dict(group.statuses)
    keys = dict(group.mask_public_keys)
    submissions = dict(group.submissions)
    reveals = list(group.reveals)
    pick = data.draw
    # an earlier mutation may have emptied the member list: then only strangers are drawn
    member = st.sampled_from(members) | address if members else address
    if mutation == "status" and members:
        statuses[pick(st.sampled_from(members))] = pick(st.integers(-1, 6))
        return {"statuses": statuses}
    if mutation == "stranger status":
        statuses[pick(address)] = pick(st.integers(0, 3))
        return {"statuses": statuses}
    if mutation == "public key" and keys:
        keys[pick(st.sampled_from(sorted(keys)))] = pick(bytes32 | st.binary(max_size=40))
        return {"mask_public_keys": keys}
    if mutation == "drop public key" and keys:
        del keys[pick(st.sampled_from(sorted(keys)))]
        return {"mask_public_keys": keys}
    if mutation in ("word", "chunk", "digest", "drop submission") and submissions:
        who = pick(st.sampled_from(sorted(submissions)))
        sub = submissions[who]
        chunks = [list(c) for c in sub.chunks]
        if mutation == "word":
            c = pick(st.integers(0, len(chunks) - 1))
            chunks[c][pick(st.integers(0, len(chunks[c]) - 1))] = pick(st.integers(0, 2**256 - 1))
            sub = replace(sub, chunks=tuple(map(tuple, chunks)))
        elif mutation == "chunk":
            chunks.insert(pick(st.integers(0, len(chunks))), pick(st.lists(st.integers(0, 9))))
            sub = replace(sub, chunks=tuple(map(tuple, chunks)))
        elif mutation == "digest":
            sub = replace(sub, digest=pick(bytes32))
        else:
            del submissions[who]
            return {"submissions": submissions}
        submissions[who] = sub
        return {"submissions": submissions}
    if mutation in ("share", "kind", "dealer", "holder", "drop reveal", "duplicate reveal"):
        if not reveals:
            return {}
        at = pick(st.integers(0, len(reveals) - 1))
        r = reveals[at]
        if mutation == "share":
            reveals[at] = replace(r, share=pick(bytes32), blind=pick(bytes32))
        elif mutation == "kind":
            reveals[at] = replace(r, kind=pick(st.integers(0, 3)))
        elif mutation == "dealer":
            reveals[at] = replace(r, dealer=pick(member))
        elif mutation == "holder":
            reveals[at] = replace(r, holder=pick(member))
        elif mutation == "drop reveal":
            del reveals[at]
        else:
            reveals.append(RevealedShare(r.dealer, r.holder, r.kind, pick(bytes32), pick(bytes32)))
        return {"reveals": reveals}
    if mutation == "threshold":
        return {"threshold": pick(st.integers(-1, len(members) + 2))}
    if mutation == "members":
        changed = pick(st.sampled_from(["swap", "duplicate", "drop", "stranger", "empty"]))
        if changed == "swap" and len(members) > 1:
            members[0], members[1] = members[1], members[0]
        elif changed == "duplicate" and members:
            members.append(members[0])
        elif changed == "drop" and members:  # (an earlier mutation may have emptied them)
            members.pop()
        elif changed == "stranger":
            members.append(pick(address))
        else:
            members = []
        return {"members": members}
    if mutation == "d":
        return {"d": pick(st.integers(-2, max(2 * group.d, 2)))}  # d may be mutated already
    return {}


@given(
    seed=st.integers(0, 2**32),
    layout=st.sampled_from(
        [
            [STATUS_SUBMITTED] * 3,
            [STATUS_SUBMITTED, STATUS_SUBMITTED, STATUS_COMMITTED],
            [STATUS_SUBMITTED, STATUS_COMMITTED, STATUS_SUBMITTED, STATUS_SUBMITTED, 0],
        ]
    ),
    lane_bits=st.sampled_from([16, 32]),
    mutations=st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3),
    data=st.data(),
)
def test_recovery_from_mutated_chain_data_only_raises_named_errors(
    seed: int, layout: list[int], lane_bits: int, mutations: list[str], data: st.DataObject
) -> None:
    group = build_group(seed, layout, threshold=2, lane_bits=lane_bits, chunk_words=2)
    overrides: dict = {}
    for mutation in mutations:
        changed = replace_group(group, overrides)
        overrides.update(_mutate(changed, mutation, data))
    try:
        result = group.recover(**overrides)
    except GroupRecoveryError as error:
        event(f"refused: {error.reason}")
        return
    except ConfigError:
        event("refused: config")
        return
    event("recovered")
    # Accepted data must be consistent: the same submitters as the statuses say, d lanes.
    assert len(result.ring_sum) == overrides.get("d", group.d)
    statuses = overrides.get("statuses", group.statuses)
    assert set(result.submitters) == {a for a, s in statuses.items() if s >= STATUS_SUBMITTED}


def replace_group(group, overrides: dict):
    """`group` with the overrides applied so far (the next mutation builds on them)."""
    changed = dict(overrides)
    if "members" in changed:
        changed["members"] = tuple(changed["members"])
    return replace(group, **changed)


def test_recovery_is_exact_without_mutations() -> None:
    # the unmutated data of the fuzzed layouts recover, so the refusals above are the mutations'
    for layout in ([STATUS_SUBMITTED] * 3, [STATUS_SUBMITTED, STATUS_SUBMITTED, STATUS_COMMITTED]):
        group = build_group(5, layout, threshold=2, chunk_words=2)
        assert np.array_equal(group.recover().ring_sum, group.expected)
