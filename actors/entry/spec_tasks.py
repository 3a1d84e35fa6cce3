"""Spec tasks as processes: a model owner creating a task from its spec, a data owner joining one
with its own files, and what anyone can read about a task (`omnilytics task`, `omnilytics join`).

No scenario and no MNIST here: the model owner brings a spec (TOML) and its own labelled data, a
data owner brings its own files; everything else comes from chain data. Every refusal is a
`TaskRefused` (or `join.JoinRefused`, `terms.HostileTerms`) whose message is one line naming the
field, file or value and the rule, raised before any transaction that stakes something.
"""

from __future__ import annotations

import logging
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

from actors.chain.market import Market, TaskConfig
from actors.entry.processes import (
    _SWITCH_INTERVAL,
    _connect,
    _log_to,
    drive_data_owner,
    drive_model_owner,
)
from actors.learning import spec_model as sm
from actors.learning.adapters import DataError, read_data
from actors.learning.spec_learners import SpecModelOwner
from actors.learning.train import use_threads
from actors.roles.join import read_terms, spec_learner
from actors.roles.model_owner import SavedModel, TaskPlan, saved_model
from actors.roles.round_driver import DataOwnerSettings
from actors.roles.store import StateStore
from protocol.constants import MAX_CHUNK_WORDS
from protocol.spec import (
    SpecError,
    TaskSpec,
    decode_canonical,
    infer_shapes,
    parse_spec,
    spec_hash,
)

log = logging.getLogger("omnilytics.task")


class TaskRefused(Exception):
    """A spec, a data file or a saved model this command will not use: one line."""


def load_spec(path: Path) -> TaskSpec:
    """A checked spec from a TOML file (or a ``.json`` file of its canonical bytes, as a run
    writes it), or TaskRefused naming the field and the rule."""
    try:
        data = path.read_bytes()
        return decode_canonical(data) if path.suffix == ".json" else parse_spec(data)
    except OSError as error:
        raise TaskRefused(f"spec {path}: unreadable: {error.strerror or error}") from None
    except SpecError as error:
        raise TaskRefused(f"spec {path}: field {error}") from None


def owner_learner(
    spec: TaskSpec, validation: Path, test: Path | None = None, *, seed: int = 0
) -> SpecModelOwner:
    """The model owner's learner on its own labelled data (and held-out data for accuracy)."""
    try:
        own = read_data(spec, validation, model_owner=True)
        held_out = own if test is None else read_data(spec, test, model_owner=True)
    except DataError as error:
        raise TaskRefused(f"data {error}") from None
    if len(own) == 0:
        raise TaskRefused(f"data {validation}: no samples")
    return SpecModelOwner(spec, own, held_out, seed=seed)


def run_task_owner(
    rpc_url: str,
    market: str,
    spec_path: Path,
    validation: Path,
    state_dir: Path,
    *,
    test: Path | None = None,
    seed: int = 0,
    beacon_url: str | None = None,
    announce: Callable[[int], None] | None = None,
    observe: Callable[..., None] | None = None,
) -> None:
    """`omnilytics task create`: the spec and the data are checked before any transaction; then
    create the task (or resume the one `state_dir` holds), announce its id, drive it to its end."""
    spec = load_spec(spec_path)
    learner = owner_learner(spec, validation, test, seed=seed)
    _log_to(state_dir)
    use_threads(1)
    chain, account = _connect(rpc_url)
    plan = TaskPlan.from_spec(spec)
    try:
        drive_model_owner(
            chain,
            account,
            market,
            learner,
            plan,
            state_dir,
            beacon_url,
            announce=announce,
            observe=observe,
        )
    except sm.ModelFileError as error:
        raise TaskRefused(f"state {state_dir}: {error}") from None


def run_join(
    rpc_url: str,
    market: str,
    task: int,
    data: Path,
    state_dir: Path,
    *,
    seed: int | None = None,
    host: str = "127.0.0.1",
    keep_plaintext: bool = False,
    drop_at: tuple[int, str] | None = None,
    chunk_words: int = MAX_CHUNK_WORDS,
    timings: bool = False,
) -> None:
    """`omnilytics join`: read the task's spec from chain data, check the config against it and
    our files against it (all before registering), then take part until the task is over."""
    chain, account = _connect(rpc_url)
    terms = read_terms(Market(chain, market), task)
    learner = spec_learner(terms, data, seed=secrets.randbelow(2**31) if seed is None else seed)
    _log_to(state_dir)
    use_threads(1)
    sys.setswitchinterval(_SWITCH_INTERVAL)
    settings = DataOwnerSettings(
        host=host,
        poll_interval=0.1,
        keep_plaintext=keep_plaintext,
        drop_at=drop_at,
        chunk_words=chunk_words,
        rounding_seed=seed,
    )
    log.info("joining task %d with %d samples from %s", task, len(learner.data), data)
    drive_data_owner(chain, account, market, task, learner, state_dir, settings, timings=timings)


def exported_model(state_dir: Path, task: int) -> SavedModel:
    """The model owner's current model of `task` from its state directory, checked."""
    path = state_dir / "state.sqlite"
    if not path.exists():
        raise TaskRefused(f"state {state_dir}: no model owner state here")
    store = StateStore(path)
    try:
        saved = saved_model(store)
    finally:
        store.close()
    if saved is None:
        raise TaskRefused(f"state {state_dir}: holds no task yet")
    if saved.task != task:
        raise TaskRefused(f"state {state_dir}: holds task {saved.task}, not task {task}")
    try:
        sm.load_exported(saved.model)
    except (sm.ModelFileError, SpecError) as error:
        raise TaskRefused(f"state {state_dir}: not a spec task's model: {error}") from None
    return saved


def describe_task(market: Market, task: int) -> dict[str, object]:
    """What anyone can read about a task from chain data: its spec, its terms and its phase."""
    from actors.entry.status import PHASE_NAMES

    terms = read_terms(market, task)
    spec, config = terms.spec, terms.config
    plan = infer_shapes(spec)
    info = market.phase(task)
    data = spec.data
    return {
        "task": task,
        "owner": market.owner(task),
        "spec_hash": "0x" + spec_hash(spec).hex(),
        "model": {
            "layers": [type(layer).__struct_config__.tag for layer in spec.model.layers],
            "private_from": spec.model.private_from,
            "public_params": plan.public_params,
            "body_params": plan.body_params,
            "head_params": plan.head_params,
            "flops_per_sample": plan.flops_per_sample,
        },
        "data": {
            "kind": data.kind,
            "shape": list(data.shape),
            "label": data.label,
            "classes": data.classes,
            "min_samples": data.min_samples,
            "max_samples": data.max_samples,
        },
        "training": {
            "loss": spec.training.loss,
            "optimizer": spec.training.optimizer,
            "lr": spec.training.lr,
            "epochs": spec.training.epochs,
            "batch_size": spec.training.batch_size,
        },
        "terms": _terms(config, spec),
        "phase": PHASE_NAMES.get(info.phase, str(info.phase)),
        "round": info.round,
        "deadline": info.deadline,
        "registered": market.member_count(task),
    }


def _terms(config: TaskConfig, spec: TaskSpec) -> dict[str, object]:
    return {
        "rounds": config.rounds,
        "max_dos": config.max_dos,
        "min_dos": config.min_dos,
        "group_size": config.group_size,
        "threshold": config.threshold,
        "reward_per_do_wei": config.reward_per_do,
        "bond_wei": config.bond,
        "sample_cap": config.sample_cap,
        "rule": spec.market.rule,
        "lane_bits": config.lane_bits,
        "scale_bits": config.scale_bits,
        "clip_norm": config.clip_norm,
        "durations_s": {
            "register": config.register_duration,
            "share": config.share_duration,
            "submit": config.submit_duration,
            "unmask": config.unmask_duration,
        },
        "data_path": spec.market.data_path,
    }
