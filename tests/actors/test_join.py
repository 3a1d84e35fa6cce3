"""Joining a spec task (actors.roles.join): the model owner's config comes from the spec's market
terms and create_task publishes its canonical bytes; a data owner reads the spec from chain data
alone and refuses, before it registers, a task without a spec, a config that says something else
than its spec (the sample cap above all), and files that do not fit the spec."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import msgspec
import pytest
from eth_utils import keccak

from actors.chain import BoaChain
from actors.chain.market import Market
from actors.learning.examples import write_example
from actors.learning.spec_learners import SpecModelOwner
from actors.roles.join import JoinRefused, config_mismatches, read_terms, spec_learner
from actors.roles.model_owner import ModelOwner, TaskPlan
from protocol.spec import canonical_bytes, parse_spec, spec_hash

ROOT = Path(__file__).resolve().parents[2]
SPEC = parse_spec((ROOT / "examples" / "breast-cancer-mlp.toml").read_bytes())


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("table")
    return write_example("breast-cancer-mlp", out, dos=2, per_do=60, owner=20, test=60)


@pytest.fixture(scope="module")
def owner_learner(layout) -> SpecModelOwner:
    from actors.learning.adapters import read_data

    own = read_data(SPEC, layout.owner, model_owner=True)
    return SpecModelOwner(SPEC, own, own, seed=0)


def _market() -> tuple[Market, str]:
    chain = BoaChain()
    account = chain.new_account(10**22)
    return Market.deploy(chain, account), account


def test_the_plan_is_the_specs_market_terms() -> None:
    plan = TaskPlan.from_spec(SPEC)
    m = SPEC.market
    assert (plan.max_dos, plan.min_dos, plan.group_size, plan.threshold, plan.rounds) == (
        m.max_dos, m.min_dos, m.group_size, m.threshold, m.rounds,
    )  # fmt: skip
    assert (plan.reward_per_do, plan.bond, plan.clip_norm) == (m.reward_wei, m.bond_wei, 8.0)
    assert plan.sample_cap == SPEC.data.max_samples == 200
    assert plan.spec == canonical_bytes(SPEC)


async def test_a_data_owner_reads_the_spec_from_chain_data_alone(layout, owner_learner) -> None:
    market, account = _market()
    owner = ModelOwner(market, account, owner_learner, TaskPlan.from_spec(SPEC))
    task = await owner.create_task()
    config = market.config(task)
    assert config.spec_hash == spec_hash(SPEC)
    assert config.sample_cap == SPEC.data.max_samples
    terms = read_terms(market, task)
    assert terms.spec == SPEC
    learner = spec_learner(terms, layout.data_owners[0], seed=1)
    update, samples = learner.train(market.model_bytes(task, 0), 0)
    assert samples == 60 and update.shape == (config.d - 1,)


def test_a_model_owner_whose_learner_does_not_fit_the_spec_is_refused(owner_learner) -> None:
    from protocol.errors import ConfigError

    other = parse_spec((ROOT / "examples" / "digits16-cnn.toml").read_bytes())
    market, account = _market()
    with pytest.raises(ConfigError, match="parameters"):
        ModelOwner(market, account, owner_learner, TaskPlan.from_spec(other))


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"sample_cap": 150}, "data.max_samples (the sample cap): the spec says 200"),
        ({"d": 10}, "model (public parameters"),
        ({"scale_bits": 12}, "market.scale_bits"),
        ({"rounds": 1}, "market.rounds"),
        ({"reward_per_do": 1}, "market.reward_wei"),
    ],
)
async def test_a_config_that_contradicts_its_spec_is_refused(
    owner_learner, change: dict, named: str
) -> None:
    market, account = _market()
    owner = ModelOwner(market, account, owner_learner, TaskPlan.from_spec(SPEC))
    task = await owner.create_task()
    config = replace(market.config(task), **change)
    assert next(name for name, _, _ in config_mismatches(SPEC, config)).startswith(named[:12])
    forged, _ = market.create_task(config, account, canonical_bytes(SPEC))
    with pytest.raises(JoinRefused, match=re.escape(f"task {forged}: {named}")):
        read_terms(market, forged)


async def test_a_task_without_a_spec_or_with_a_bad_one_is_refused(owner_learner) -> None:
    market, account = _market()
    owner = ModelOwner(market, account, owner_learner, TaskPlan.from_spec(SPEC))
    task = await owner.create_task()
    config = market.config(task)
    bare, _ = market.create_task(replace(config, spec_hash=keccak(b"")), account)
    with pytest.raises(JoinRefused, match="publishes no task spec"):
        read_terms(market, bare)
    raw = msgspec.json.decode(canonical_bytes(SPEC))
    raw["model"]["layers"][0]["type"] = "batchnorm"
    bad = msgspec.json.encode(raw, order="sorted")
    broken, _ = market.create_task(replace(config, spec_hash=keccak(bad)), account, bad)
    with pytest.raises(JoinRefused, match=r"spec field model.layers\[0\].type: unknown layer"):
        read_terms(market, broken)


def _edit(old: str, new: str):
    return lambda p: p.write_text(p.read_text().replace(old, new, 1))


@pytest.mark.parametrize(
    ("damage", "rule"),
    [
        (_edit("mean_radius", "radius"), "missing column 'mean_radius'"),
        (lambda p: p.write_text("\n".join(p.read_text().splitlines()[:5])), "4 samples, the spec"),
        (_edit(",1\n", ",nan\n"), "not finite"),
        (_edit(",1\n", ",7\n"), "not a class in"),
    ],
)
async def test_data_that_does_not_fit_is_refused_before_registering(
    tmp_path: Path, layout, owner_learner, damage, rule: str
) -> None:
    market, account = _market()
    task = await ModelOwner(market, account, owner_learner, TaskPlan.from_spec(SPEC)).create_task()
    path = tmp_path / "data.csv"
    path.write_text(Path(layout.data_owners[0]).read_text())
    damage(path)
    with pytest.raises(JoinRefused, match=rf"task {task}: data {path}.*{rule}"):
        spec_learner(read_terms(market, task), path, seed=0)
