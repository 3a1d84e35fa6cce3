"""The spec learners (actors.learning.spec_learners): a data owner trains the published model of
its spec on its own files, the model owner's reference takes a data owner's steps, its saved
state is its exported model and restores exactly, and a model of another spec is refused."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from actors.learning import spec_model as sm
from actors.learning.adapters import read_data
from actors.learning.examples import write_example
from actors.learning.spec_learners import SpecDataOwner, SpecModelOwner, reference_epochs
from actors.learning.train import fedavg
from protocol.spec import parse_spec

ROOT = Path(__file__).resolve().parents[3]


def _spec(name: str):
    return parse_spec((ROOT / "examples" / f"{name}.toml").read_bytes())


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory):
    spec = _spec("breast-cancer-mlp")
    out = tmp_path_factory.mktemp("table")
    layout = write_example("breast-cancer-mlp", out, dos=3, per_do=100, owner=20, test=150)
    own = read_data(spec, layout.owner, model_owner=True)
    test = read_data(spec, layout.test, model_owner=True)
    parts = [read_data(spec, p) for p in layout.data_owners]
    return spec, own, test, parts


@pytest.mark.parametrize(("own", "name"), [(26, "mnist-cnn"), (20, "breast-cancer-mlp")])
def test_reference_takes_as_many_steps_as_a_data_owner_at_the_cap(own: int, name: str) -> None:
    spec = _spec(name)
    t = spec.training
    wanted = t.epochs * math.ceil(spec.data.max_samples / t.batch_size)
    per_pass = math.ceil(own / t.batch_size)
    assert wanted <= reference_epochs(spec, own) * per_pass < wanted + per_pass


def test_a_round_of_spec_learners_lifts_the_model_owner(table) -> None:
    spec, own, test, parts = table
    owner = SpecModelOwner(spec, own, test, seed=0)
    alone = owner.accuracy()
    model = owner.model_bytes()
    learners = [SpecDataOwner(spec, part, seed=i) for i, part in enumerate(parts)]
    results = [learner.train(model, 0) for learner in learners]
    assert [n for _, n in results] == [len(p) for p in parts]
    assert all(u.shape == (owner.public_size(),) and u.dtype == np.float64 for u, _ in results)
    # the same seed and round give the same update; another round another one
    again, _ = learners[0].train(model, 0)
    assert np.array_equal(again, results[0][0])
    assert not np.array_equal(learners[0].train(model, 1)[0], results[0][0])
    owner.apply(fedavg([u for u, _ in results], [n for _, n in results]).astype(np.float64))
    assert owner.accuracy() >= alone
    assert owner.reference_update().shape == (owner.public_size(),)


def test_a_data_owner_refuses_the_model_of_another_spec(table) -> None:
    spec, _, _, parts = table
    other = _spec("digits16-cnn")
    foreign = sm.public_model_to_bytes(other, sm.new_public_model(other, 0))
    with pytest.raises(sm.ModelFileError, match="another spec"):
        SpecDataOwner(spec, parts[0], seed=0).train(foreign, 0)


def test_state_is_the_exported_model_and_restores_exactly(table) -> None:
    spec, own, test, _ = table
    trained = SpecModelOwner(spec, own, test, seed=1)
    trained.apply(np.full(trained.public_size(), 0.01))  # moves the public part and the head
    fresh = SpecModelOwner(spec, own, test, seed=2)
    assert fresh.model_bytes() != trained.model_bytes()
    fresh.restore(trained.state())
    assert fresh.model_bytes() == trained.model_bytes()
    assert fresh.accuracy() == trained.accuracy()
    loaded_spec, model = sm.load_exported(trained.state())
    assert loaded_spec == spec
    with torch.no_grad():
        torch.testing.assert_close(
            model(test.x), trained.head(trained.public.body(test.x)), rtol=0, atol=0
        )


def test_a_saved_model_of_another_spec_is_refused(table) -> None:
    spec, own, test, _ = table
    other = _spec("digits16-cnn")
    saved = sm.export_model(other, sm.new_public_model(other, 0), sm.new_head(other, 0))
    with pytest.raises(sm.ModelFileError, match="another spec"):
        SpecModelOwner(spec, own, test, seed=0).restore(saved)
