"""The public model's chunks and digest, as `publish_model` calls and the contract hash them."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.commitments import model_chunks, model_digest, published_model_digest
from protocol.constants import MAX_MODEL_CHUNK
from protocol.errors import LocalProtocolError


@given(size=st.integers(1, 3 * MAX_MODEL_CHUNK + 5), byte=st.integers(0, 255))
def test_chunks_rebuild_the_model_and_fold_into_its_digest(size: int, byte: int) -> None:
    data = bytes([byte]) * size
    chunks = model_chunks(data)
    assert b"".join(chunks) == data
    assert all(1 <= len(c) <= MAX_MODEL_CHUNK for c in chunks)
    assert len(chunks) == -(-size // MAX_MODEL_CHUNK)
    digest = bytes(32)
    for chunk in chunks:
        digest = model_digest(digest, chunk)
    assert published_model_digest(data) == digest


def test_an_empty_model_is_refused() -> None:
    with pytest.raises(LocalProtocolError):
        model_chunks(b"")
