"""A market scenario: a run of a task spec, its data split and its learners, the same in every
process.

The demo runs a scenario in one process; a swarm runs the same scenario with the model owner and
each data owner in processes of their own. A scenario is a run of a task spec (``task``: a spec
file, ``examples/mnist-cnn.toml`` unless another is given): the scenario's shape (data owners,
rounds, groups, sample cap, rule, phases) replaces the spec's market terms in the spec that is
run (`run_spec`), and the data owners' files are written from the data set the project ships
whose schema the spec's data fits (`examples.write_example`: ``owner``, ``test`` and one
``do-i`` folder per data owner under ``data_dir``), then read back through the spec's adapter:
each data owner reads only its own folder. The split is a pure function of the scenario
(seeded), so without a ``data_dir`` the files go to a cache folder named by what they hold
(`default_data_dir`), written once and read by every later run of the same split.
"""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import msgspec
import torch

from actors.learning import recipe
from actors.learning.adapters import read_data
from actors.learning.data import Samples, default_cache_path
from actors.learning.examples import EXAMPLES, Layout, write_example
from actors.learning.spec_learners import SpecDataOwner, SpecModelOwner
from actors.measure.probe import MO_SAMPLES  # ~62% alone, the paper's starting point
from actors.roles.attacks import attacker_indices, make_attacker
from actors.roles.data_owner import Learner
from actors.roles.model_owner import TaskPlan
from protocol.constants import DATA_PATH_EVENT, DATA_PATHS
from protocol.errors import ConfigError
from protocol.spec import TaskSpec, parse_spec, spec_from_dict

_EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
# the spec a scenario runs unless it names another: today's demo, the split MNIST CNN
MNIST_SPEC = _EXAMPLES_DIR / "mnist-cnn.toml"


@dataclass(frozen=True, slots=True)
class Scenario:
    """What to run: a task spec, the market's shape, the data split, faults to inject.

    The defaults are a run of the MNIST spec at its own terms (the demo); `for_spec` makes a run
    of any spec at its terms and at sizes that fit the data set it is run on.
    """

    dos: int = 10
    rounds: int = 1
    group_size: int = 5
    threshold: int = 3
    do_samples: int = 1_000
    mo_samples: int = MO_SAMPLES
    alpha: float | None = None  # None: IID; else Dirichlet label skew
    rule: str = "mean"
    seed: int = 0
    test_limit: int | None = None  # held-out samples; None: the example's (`HARNESS_SIZES`)
    drops: tuple[tuple[int, int, str], ...] = ()  # (data owner, round, step)
    lane_bits: int = 32
    scale_bits: int = 16
    clip_norm: float = 8.0
    share_duration: int = 60
    submit_duration: int = 120
    unmask_duration: int = 60
    attack: str = "none"  # actors.roles.attacks.ATTACKS: what the malicious data owners do
    attackers: float = 0.0  # fraction of data owners that attack, drawn from the seed
    data_path: int = DATA_PATH_EVENT  # DATA_PATH_BLOB: masked updates as blobs (a node only)
    task: str = str(MNIST_SPEC)  # the task spec (TOML) this scenario runs (`for_spec`)
    data_dir: str | None = None  # the run's files (written there if not there yet)

    @classmethod
    def for_spec(cls, path: Path, **given: object) -> Scenario:
        """A run of the spec at ``path``: its market terms, and harness sizes that fit the data
        set it is run on, unless ``given`` (None values are not given)."""
        spec = load_spec_file(str(path))
        m = spec.market
        example = example_for(spec)
        owner, test = HARNESS_SIZES[example]
        terms: dict[str, object] = {
            "dos": m.max_dos,
            "rounds": m.rounds,
            "group_size": m.group_size,
            "threshold": m.threshold,
            "rule": m.rule,
            "mo_samples": owner,
            "test_limit": test,
            "lane_bits": m.lane_bits,
            "scale_bits": m.scale_bits,
            "clip_norm": m.clip_norm,
            "share_duration": m.share_duration,
            "submit_duration": m.submit_duration,
            "unmask_duration": m.unmask_duration,
            "data_path": m.data_path_id,
        }
        terms |= {k: v for k, v in given.items() if v is not None}
        if given.get("do_samples") is None:
            room = (EXAMPLE_SIZES[example] - terms["mo_samples"] - terms["test_limit"]) // max(
                1, int(terms["dos"])
            )
            terms["do_samples"] = min(spec.data.max_samples, room)
        return cls(task=str(path), **terms)

    def spec(self) -> TaskSpec:
        """The spec this scenario runs (`run_spec`)."""
        return run_spec(self)

    def plan(self) -> TaskPlan:
        """The task the model owner creates for this scenario."""
        return TaskPlan.from_spec(self.spec())

    def held_out(self) -> int:
        """How many test samples the run holds out: ``test_limit``, else the example's."""
        if self.test_limit is not None:
            return self.test_limit
        return HARNESS_SIZES[example_for(load_spec_file(self.task))][1]


# (model owner's samples, test samples) a run of each example's data set uses by default: the
# MNIST model owner's 26 samples start it near the paper's ~62%; the others hold out what their
# small sets allow
HARNESS_SIZES = {
    "mnist-cnn": (MO_SAMPLES, 10_000),
    "breast-cancer-mlp": (20, 150),
    "digits16-cnn": (30, 200),
}
# samples each example's training pool holds (MNIST has its own test set)
EXAMPLE_SIZES = {"mnist-cnn": 60_000, "breast-cancer-mlp": 569, "digits16-cnn": 1_797}


@functools.lru_cache(maxsize=16)
def load_spec_file(path: str) -> TaskSpec:
    """A spec from TOML, or from canonical JSON (``.json``, as a run writes it)."""
    data = Path(path).read_bytes()
    if path.endswith(".json"):
        return spec_from_dict(msgspec.json.decode(data))
    return parse_spec(data)


def _schema(spec: TaskSpec) -> tuple[object, ...]:
    return msgspec.to_builtins(spec.data)


def example_for(spec: TaskSpec) -> str:
    """The shipped data set whose files fit ``spec``'s data schema (the example spec's)."""
    for name in EXAMPLES:
        example = load_spec_file(str(_EXAMPLES_DIR / f"{name}.toml"))
        ours, theirs = _schema(spec), _schema(example)
        # the sample counts are the task's terms, not the schema
        for schema in (ours, theirs):
            schema.pop("min_samples"), schema.pop("max_samples")
        if ours == theirs:
            return name
    raise ConfigError(
        f"no data set the project ships fits this spec's data ({spec.data.kind} "
        f"{list(spec.data.shape)}): the examples' [data] tables do; run your own data with "
        "`omnilytics task create` and `omnilytics join`"
    )


def run_spec(scenario: Scenario) -> TaskSpec:
    """The scenario's spec with the scenario's shape as its market terms and its sample count
    as the cap (``data.max_samples``), checked again as a whole."""
    spec = load_spec_file(scenario.task)
    raw = msgspec.to_builtins(spec)
    dos = scenario.dos
    raw["market"] |= {
        "rounds": scenario.rounds,
        "max_dos": dos,
        "min_dos": max(scenario.group_size, min(spec.market.min_dos, dos)),
        "group_size": scenario.group_size,
        "threshold": scenario.threshold,
        "rule": scenario.rule.partition(":")[0],
        "lane_bits": scenario.lane_bits,
        "scale_bits": scenario.scale_bits,
        "clip_norm": scenario.clip_norm,
        "share_duration": scenario.share_duration,
        "submit_duration": scenario.submit_duration,
        "unmask_duration": scenario.unmask_duration,
        "data_path": {v: k for k, v in DATA_PATHS.items()}[scenario.data_path],
    }
    raw["data"] |= {
        "max_samples": scenario.do_samples,
        "min_samples": min(spec.data.min_samples, scenario.do_samples),
    }
    return spec_from_dict(raw)


@dataclass(frozen=True, slots=True)
class SpecData:
    """A spec run's files: where each party's are (`examples.Layout`) and the spec they fit."""

    spec: TaskSpec
    layout: Layout


def split_data(scenario: Scenario) -> SpecData:
    """The run's files (deterministic in the scenario): under ``data_dir`` if given, written
    there unless a finished copy is there; else in this split's cache folder (`default_data_dir`),
    written once, into a folder of its own that is renamed into place when complete."""
    spec = scenario.spec()
    if scenario.data_dir is not None:
        root = Path(scenario.data_dir)
        if not (root / "complete").exists():
            _write_split(scenario, spec, root)
        return SpecData(spec, _layout(spec, root, scenario.dos))
    root = default_data_dir(scenario)
    if not (root / "complete").exists():
        root.parent.mkdir(parents=True, exist_ok=True)
        fresh = Path(tempfile.mkdtemp(prefix=".writing-", dir=root.parent))
        _write_split(scenario, spec, fresh)
        try:
            fresh.rename(root)
        except OSError:  # another run of the same split finished first: its files are ours
            shutil.rmtree(fresh)
    return SpecData(spec, _layout(spec, root, scenario.dos))


def default_data_dir(scenario: Scenario) -> Path:
    """The cache folder of the scenario's split, beside the MNIST cache: named by the example
    and a hash of everything that decides which samples go where."""
    example = example_for(scenario.spec())
    split = [scenario.dos, scenario.do_samples, scenario.mo_samples, scenario.held_out()]
    split += [scenario.seed, scenario.alpha]
    key = hashlib.sha256(json.dumps([example, *split]).encode()).hexdigest()[:16]
    return default_cache_path().parent / "runs" / f"{example}-{key}"


def _write_split(scenario: Scenario, spec: TaskSpec, root: Path) -> None:
    write_example(
        example_for(spec),
        root,
        dos=scenario.dos,
        per_do=scenario.do_samples,
        owner=scenario.mo_samples,
        test=scenario.held_out(),
        seed=scenario.seed,
        alpha=scenario.alpha,
    )
    (root / "complete").write_text("written by actors.entry.scenario.split_data\n")


def _layout(spec: TaskSpec, root: Path, dos: int) -> Layout:
    name = "data.csv" if spec.data.kind == "tabular" else ""
    paths = [root / part / name if name else root / part for part in ("owner", "test")]
    parts = tuple(root / f"do-{i}" / name if name else root / f"do-{i}" for i in range(dos))
    return Layout(paths[0], paths[1], parts)


def model_owner_learner(scenario: Scenario, data: SpecData) -> SpecModelOwner:
    spec, layout = data.spec, data.layout
    own = read_data(spec, layout.owner, model_owner=True)
    test = read_data(spec, layout.test, model_owner=True)
    return SpecModelOwner(spec, own, test, seed=scenario.seed)


def data_owner_learner(scenario: Scenario, data: SpecData, index: int) -> Learner:
    samples = read_data(data.spec, data.layout.data_owners[index])
    honest = SpecDataOwner(data.spec, samples, seed=data_owner_seed(scenario, index))
    return _maybe_attacker(scenario, honest, index)


def central_accuracy(scenario: Scenario, data: SpecData) -> float:
    """The run's ceiling: the spec's network trained on the union of every data owner's files
    with the same recipe (`recipe.train_central`), on the model owner's test data. Deterministic
    in its inputs, so for files in the split's cache folder it is computed once and kept there."""
    kept = _central_file(scenario, data)
    if kept is not None and kept.exists():
        return float(json.loads(kept.read_text())["accuracy_central"])
    spec = data.spec
    parts = [read_data(spec, path) for path in data.layout.data_owners]
    union = Samples(torch.cat([p.x for p in parts]), torch.cat([p.y for p in parts]))
    body, head = recipe.train_central(spec, union, seed=scenario.seed)
    test = read_data(spec, data.layout.test, model_owner=True)
    accuracy = recipe.evaluate(spec, body, head, test)
    if kept is not None:
        fresh = kept.with_suffix(".tmp")
        fresh.write_text(json.dumps({"accuracy_central": accuracy}))
        fresh.replace(kept)
    return accuracy


def _central_file(scenario: Scenario, data: SpecData) -> Path | None:
    """Where the ceiling of a split in the cache is kept: named by what it depends on (the
    spec's model, data schema and sample cap, recipe and rounds; not the other market terms),
    the seed and torch's thread count (the order of its sums)."""
    if scenario.data_dir is not None:
        return None  # the caller's folder: its files may change between runs
    raw = msgspec.to_builtins(data.spec)
    terms = [raw["version"], raw["model"], raw["data"], raw["training"], raw["market"]["rounds"]]
    key = hashlib.sha256(json.dumps(terms, sort_keys=True).encode()).hexdigest()[:16]
    name = f"central-{key}-{scenario.seed}-{torch.get_num_threads()}"
    return default_data_dir(scenario) / f"{name}.json"


def data_owner_seed(scenario: Scenario, index: int) -> int:
    """Data owner `index`'s seed: its training's, and its stochastic rounding's
    (`DataOwnerSettings.rounding_seed`), so the scenario's seed fixes every number of a run."""
    return scenario.seed * 1_000 + index


def _maybe_attacker(scenario: Scenario, honest: Learner, index: int) -> Learner:
    if scenario.attack == "none" or index not in attacker_indices(
        scenario.dos, scenario.attackers, scenario.seed
    ):
        return honest
    return make_attacker(scenario.attack, honest, seed=data_owner_seed(scenario, index))
