"""The split CNN: parameter counts and the public vector."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actors.learning.model import load_public_vector as load
from actors.learning.model import (
    new_aux_head,
    new_body,
    new_head,
    new_public_model,
    parameter_count,
    public_model_for,
    public_parameter_count,
    public_vector,
)


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
