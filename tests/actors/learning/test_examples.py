"""Each example spec trains at small size on the spec path: files, adapter, model, recipe."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from actors.learning import recipe
from actors.learning import spec_model as sm
from actors.learning.adapters import read_data
from actors.learning.data import Samples
from actors.learning.examples import EXAMPLES, write_example
from actors.learning.train import apply_update, fedavg
from protocol.spec import parse_spec

ROOT = Path(__file__).resolve().parents[3]
# (data owners, samples each, owner samples, test samples, least accuracy after one round,
# least central accuracy); the owner alone must beat chance by 10 points
SIZES = {
    "mnist-cnn": (3, 200, 26, 300, 0.75, 0.85),
    "breast-cancer-mlp": (3, 100, 20, 150, 0.85, 0.90),
    "digits16-cnn": (3, 150, 30, 300, 0.75, 0.85),
}


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_trains_on_the_spec_path(name: str, tmp_path: Path) -> None:
    spec = parse_spec((ROOT / "examples" / f"{name}.toml").read_bytes())
    dos, per_do, owner, test, after_floor, central_floor = SIZES[name]
    layout = write_example(name, tmp_path, dos=dos, per_do=per_do, owner=owner, test=test)
    own = read_data(spec, layout.owner, model_owner=True)
    held_out = read_data(spec, layout.test, model_owner=True)
    parts = [read_data(spec, path) for path in layout.data_owners]
    assert [len(p) for p in parts] == [min(per_do, spec.data.max_samples)] * dos

    body, head = sm.new_body(spec, 1), sm.new_head(spec, 2)
    recipe.train_owner_alone(spec, body, head, own, seed=3)
    chance = 1 / (spec.data.classes or 1)
    assert recipe.evaluate(spec, body, head, held_out) > chance + 0.1

    public = sm.public_model_for(spec, body)
    results = [recipe.train_local(spec, public, part, seed=i) for i, part in enumerate(parts)]
    assert all(n == len(part) for (_, n), part in zip(results, parts, strict=True))
    aggregate = fedavg([u for u, _ in results], [n for _, n in results])
    public = sm.public_model_from_vector(public, apply_update(sm.public_vector(public), aggregate))
    head = recipe.finetune_head(spec, public.body, public.aux, own, seed=3)
    assert recipe.evaluate(spec, public.body, head, held_out) >= after_floor

    union = Samples(torch.cat([p.x for p in parts]), torch.cat([p.y for p in parts]))
    central_body, central_head = recipe.train_central(spec, union, seed=5)
    assert recipe.evaluate(spec, central_body, central_head, held_out) >= central_floor


def test_the_scenarios_files_hold_the_mnist_split(tmp_path: Path) -> None:
    """A scenario's files (the MNIST spec's run) hold the samples `split_example` draws from
    MNIST's training set for its seed: each party's folder, file names being sample indices."""
    from actors.entry.scenario import Scenario, split_data
    from actors.learning.data import load_mnist
    from actors.learning.examples import split_example

    scenario = Scenario(dos=4, group_size=4, do_samples=300, seed=3, test_limit=50)
    scenario = dataclasses.replace(scenario, data_dir=str(tmp_path))
    layout = split_data(scenario).layout
    mine, test, parts = split_example(
        load_mnist().train_labels, dos=4, per_do=300, owner=scenario.mo_samples, test=0, seed=3,
        held_out=True,
    )  # fmt: skip
    assert test is None

    def indices(folder: Path) -> list[int]:
        return sorted(int(f.stem) for f in folder.glob("*/*.png"))

    assert indices(layout.owner) == sorted(mine.tolist())
    for folder, part in zip(layout.data_owners, parts, strict=True):
        assert indices(folder) == sorted(part.tolist())
    assert len(indices(layout.test)) == 50


def test_a_dirichlet_split_skews_labels_and_stays_disjoint() -> None:
    from actors.learning.data import label_skew
    from actors.learning.examples import split_example

    labels = np.repeat(np.arange(2), 300)
    mine, test, parts = split_example(labels, dos=4, per_do=100, owner=10, test=50, alpha=0.5)
    every = np.concatenate([mine, test, *parts])
    assert len(np.unique(every)) == len(every) == 10 + 50 + 400
    assert np.bincount(labels[mine]).tolist() == [5, 5]
    iid = split_example(labels, dos=4, per_do=100, owner=10, test=50)[2]
    skew = [label_skew(labels, p, classes=2) for p in (parts, iid)]
    assert skew[0] > skew[1] + 0.1
