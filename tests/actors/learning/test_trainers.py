"""Training in worker processes (actors.learning.trainers): the same update bit for bit as
training in the actor's own process, any learner in any worker, and the local copy answers the
rest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from actors.learning.adapters import read_data
from actors.learning.examples import write_example
from actors.learning.spec_learners import SpecDataOwner, SpecModelOwner
from actors.learning.trainers import TrainingProcesses
from actors.roles.attacks import make_attacker
from protocol.spec import parse_spec

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory):
    spec = parse_spec((ROOT / "examples" / "breast-cancer-mlp.toml").read_bytes())
    layout = write_example(
        "breast-cancer-mlp", tmp_path_factory.mktemp("job"), dos=3, per_do=100, owner=20, test=150
    )
    own = read_data(spec, layout.owner, model_owner=True)
    owner = SpecModelOwner(spec, own, own, seed=0)
    parts = [read_data(spec, p) for p in layout.data_owners]
    learners = [SpecDataOwner(spec, part, seed=i) for i, part in enumerate(parts)]
    learners.append(make_attacker("sign_flip", learners[0], seed=7))
    return owner.model_bytes(), learners


def test_a_worker_trains_what_this_process_would(job) -> None:
    model, learners = job
    with TrainingProcesses(learners, workers=2) as trainers:
        for round in (0, 1):
            for index, learner in enumerate(learners):
                remote, samples = trainers.learner(index).train(model, round)
                local, expected = learner.train(model, round)
                assert samples == expected
                assert remote.dtype == local.dtype
                assert np.array_equal(remote, local)


def test_a_hosted_learner_answers_the_rest_from_its_local_copy(job) -> None:
    _, learners = job
    with TrainingProcesses(learners[:1], workers=1) as trainers:
        hosted = trainers.learner(0)
        assert hosted.data is learners[0].data
        assert hosted.spec is learners[0].spec
