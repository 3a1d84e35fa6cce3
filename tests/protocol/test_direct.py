"""The direct path's streams: an update or a model cut into parts and assembled again, with
every rule of a stream refused by name and the digest folded as the words arrive."""

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.commitments import direct_digest, published_model_digest
from protocol.direct import (
    PART_BYTES,
    PART_WORDS,
    ModelAssembler,
    ModelPart,
    ModelRequest,
    StreamError,
    UpdateAssembler,
    UpdatePart,
    UpdateReply,
    decode_direct,
    encode_direct,
    model_parts,
    update_parts,
)
from protocol.encoding import PackedWords
from protocol.errors import DecodeError, LocalProtocolError


def packed(count: int, seed: int = 1) -> PackedWords:
    return PackedWords(
        b"".join(((seed * 7919 + i) % 2**256).to_bytes(32, "big") for i in range(count))
    )


@given(count=st.integers(1, 3 * PART_WORDS + 5), seed=st.integers(0, 1000))
def test_an_update_streams_whole_and_its_digest_is_the_committed_one(count, seed):
    words = packed(count, seed)
    assembler = UpdateAssembler(3, 1, count)
    parts = list(update_parts(3, 1, words))
    assert len(parts) == -(-count // PART_WORDS)
    results = [assembler.feed(decode_direct(encode_direct(part))) for part in parts]
    assert results[:-1] == [None] * (len(parts) - 1)
    assert results[-1] == words
    assert assembler.digest == direct_digest(words)


def test_a_large_update_folds_its_digest_chunk_by_chunk():
    words = packed(20_000)  # four contract chunks, ten parts
    assembler = UpdateAssembler(1, 0, len(words))
    for part in update_parts(1, 0, words):
        assembler.feed(part)
    assert assembler.complete and assembler.digest == direct_digest(words)


def part(index=0, words=10, data=bytes(320), task=1, round=0) -> UpdatePart:
    return UpdatePart(task=task, round=round, index=index, words=words, data=data)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (part(task=2), "task 2"),
        (part(round=1), "round 1"),
        (part(words=11, data=bytes(352)), "11 words"),
        (part(index=1), "part 1 where part 0"),
        (part(data=bytes(48)), "not whole words"),
        (part(data=bytes(352)), "more than the 10 words"),
        (part(data=bytes(64)), "a short part"),
    ],
    ids=["task", "round", "word-count", "order", "whole-words", "too-many", "short"],
)
def test_a_stream_that_breaks_a_rule_is_refused_by_name(bad, message):
    assembler = UpdateAssembler(1, 0, 10)
    with pytest.raises(StreamError, match=message):
        assembler.feed(bad)
    assert assembler.received == 0  # nothing taken


def test_nothing_follows_a_whole_update():
    assembler = UpdateAssembler(1, 0, 10)
    assert assembler.feed(part()) is not None
    with pytest.raises(StreamError, match="part 1 where part 1"):
        assembler.feed(part(index=1))


def test_a_short_part_before_the_last_is_refused():
    assembler = UpdateAssembler(1, 0, PART_WORDS + 10)
    with pytest.raises(StreamError, match="a short part"):
        assembler.feed(part(words=PART_WORDS + 10, data=bytes(320)))


def test_a_model_streams_and_is_checked_against_its_hash():
    model = bytes(range(256)) * 700  # three parts
    digest = published_model_digest(model)
    assembler = ModelAssembler(4, 2, digest, max_bytes=len(model))
    results = [assembler.feed(decode_direct(encode_direct(p))) for p in model_parts(4, 2, model)]
    assert results[-1] == model and results[:-1] == [None, None]


def test_a_model_that_is_not_the_rounds_is_refused():
    model = b"\x01" * 1000
    other = ModelAssembler(4, 2, published_model_digest(b"\x02" * 1000), max_bytes=10_000)
    with pytest.raises(StreamError, match="model hash"):
        other.feed(next(model_parts(4, 2, model)))
    small = ModelAssembler(4, 2, published_model_digest(model), max_bytes=999)
    with pytest.raises(StreamError, match="at most 999"):
        small.feed(next(model_parts(4, 2, model)))
    wrong_round = ModelAssembler(4, 3, published_model_digest(model), max_bytes=10_000)
    with pytest.raises(StreamError, match="round 2"):
        wrong_round.feed(next(model_parts(4, 2, model)))


def test_frames_decode_strictly():
    reply = UpdateReply(task=1, round=0, accepted=True, digest=bytes(32))
    assert decode_direct(encode_direct(reply)) == reply
    assert decode_direct(encode_direct(ModelRequest(task=1, round=0))) == ModelRequest(
        task=1, round=0
    )
    with pytest.raises(DecodeError) as error:
        decode_direct(b"\xc1")
    assert error.value.reason == "malformed"
    too_big = msgspec.msgpack.encode(
        {
            "type": "update_part",
            "task": 1,
            "round": 0,
            "index": 0,
            "words": 1,
            "data": bytes(PART_BYTES + 1),
        }
    )
    with pytest.raises(DecodeError):
        decode_direct(too_big)
    with pytest.raises(DecodeError) as error:
        decode_direct(msgspec.msgpack.encode({"type": "share_delivery", "task": 1, "round": 0}))
    assert error.value.reason == "unknown_type"
    with pytest.raises(LocalProtocolError):
        encode_direct(ModelPart(task=1, round=0, index=0, size=1, data=bytes(PART_BYTES + 1)))
