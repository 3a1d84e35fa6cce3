"""The split CNN: parameter counts, the public vector, and the public model's bytes."""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest
import torch

from actors.learning.model import (
    HEADER_SIZE,
    MODEL_MAGIC,
    new_aux_head,
    new_body,
    new_head,
    new_public_model,
    parameter_count,
    public_model_for,
    public_model_from_bytes,
    public_model_from_vector,
    public_model_to_bytes,
    public_parameter_count,
    public_vector,
)
from actors.learning.model import load_public_vector as load


def test_parameter_counts_match_design() -> None:
    model = new_public_model(1, 2)
    assert parameter_count(model.body) == 46_080  # DESIGN §7: ~46k
    assert parameter_count(model.aux) == 650
    assert public_vector(model).shape == (46_730,) == (public_parameter_count(),)
    assert public_vector(model).dtype == np.float32


def test_seeds_fix_the_weights_without_touching_global_rng() -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = new_public_model(1, 2)
    assert torch.equal(torch.rand(3), expected)
    assert np.array_equal(public_vector(a), public_vector(new_public_model(1, 2)))
    assert not np.array_equal(public_vector(a), public_vector(new_public_model(1, 3)))


def test_vector_round_trip_is_identity() -> None:
    source, target = new_public_model(1, 2), new_public_model(3, 4)
    vector = public_vector(source)
    load(target, vector)
    assert np.array_equal(public_vector(target), vector)
    x = torch.randn(5, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(source(x), target(x))
    # The vector is a copy, not a view of the parameters.
    vector[:] = 0
    assert np.array_equal(public_vector(target), public_vector(source))


def test_vector_order_is_body_then_auxiliary_head() -> None:
    model = new_public_model(1, 2)
    vector = public_vector(model)
    assert np.array_equal(vector[:400].reshape(16, 1, 5, 5), model.body.conv1.weight.detach())
    assert np.array_equal(vector[-10:], model.aux.bias.detach())


def test_load_rejects_wrong_length() -> None:
    with pytest.raises(ValueError, match="shape"):
        load(new_public_model(1, 2), np.zeros(46_729, np.float32))


def test_published_model_copies_the_body_and_is_not_the_private_head() -> None:
    body, private = new_body(5), new_head(6)
    public = public_model_for(body, aux_seed=7)
    with torch.no_grad():
        public.body.fc.bias.add_(1.0)
    assert not torch.equal(public.body.fc.bias, body.fc.bias)
    assert not torch.equal(public.aux.weight, private.weight)
    assert torch.equal(public.aux.weight, new_aux_head(7).weight)
    assert torch.equal(public.aux.weight, 0.1 * new_head(7).weight)


def test_bytes_round_trip_and_layout() -> None:
    model = new_public_model(1, 2)
    data = public_model_to_bytes(model)
    assert len(data) == HEADER_SIZE + 4 * 46_730
    assert data.startswith(MODEL_MAGIC)
    assert struct.unpack_from("<HHHHHI", data, len(MODEL_MAGIC)) == (1, 16, 32, 64, 10, 46_730)
    assert data[HEADER_SIZE:] == public_vector(model).astype("<f4").tobytes()
    again = public_model_from_bytes(data)
    assert np.array_equal(public_vector(again), public_vector(model))
    assert public_model_to_bytes(again) == data
    # Same model, same bytes, same hash: what the chain commits to.
    twin = public_model_from_vector(new_public_model(8, 9), public_vector(model))
    assert hashlib.sha256(public_model_to_bytes(twin)).digest() == hashlib.sha256(data).digest()


def _corrupt(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value) :]


def test_bytes_reject_malformed_input() -> None:
    data = public_model_to_bytes(new_public_model(1, 2))
    cases = {
        "shorter than its header": data[:10],
        "bad magic": _corrupt(data, 0, b"X"),
        "version": _corrupt(data, 8, struct.pack("<H", 2)),
        "out of bounds": _corrupt(data, 10, struct.pack("<H", 60_000)),
        "does not match the architecture": _corrupt(data, 18, struct.pack("<I", 5)),
        "length": data[:-4],
        "non-finite": _corrupt(data, HEADER_SIZE + 40, np.float32(np.nan).tobytes()),
    }
    for reason, bad in cases.items():
        with pytest.raises(ValueError, match=reason):
            public_model_from_bytes(bad)


def test_bytes_of_another_width_rebuild_that_architecture() -> None:
    from actors.learning.model import FeatureExtractor, PublicModel

    small = PublicModel(FeatureExtractor(4, 8, 16), torch.nn.Linear(16, 10))
    rebuilt = public_model_from_bytes(public_model_to_bytes(small))
    assert rebuilt.widths() == (4, 8, 16)
    assert parameter_count(small) == public_parameter_count(4, 8, 16)
    assert np.array_equal(public_vector(rebuilt), public_vector(small))
