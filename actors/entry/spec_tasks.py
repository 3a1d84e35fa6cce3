"""Spec tasks as processes: a model owner creating a task from its spec, a data owner joining one
with its own files, and what anyone can read about a task (`omnilytics task`, `omnilytics join`).

No scenario and no MNIST here: the model owner brings a spec (TOML) and its own labelled data, a
data owner brings its own files; everything else comes from chain data. Every refusal is a
`TaskRefused` (or `join.JoinRefused`, `terms.HostileTerms`) whose message is one line naming the
field, file or value and the rule, raised before any transaction that stakes something.
"""

from __future__ import annotations

import json
import logging
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from actors.chain.base import NodeUnavailable
from actors.chain.market import Market, TaskConfig
from actors.entry.processes import (
    _SWITCH_INTERVAL,
    _log_to,
    drive_data_owner,
    drive_model_owner,
)
from actors.entry.progress import Progress
from actors.learning import spec_model as sm
from actors.learning.adapters import DataError, read_data
from actors.learning.spec_learners import SpecModelOwner
from actors.learning.train import use_threads
from actors.roles.data_owner import Learner
from actors.roles.join import check_seat, read_terms, spec_learner
from actors.roles.model_owner import SavedModel, TaskPlan, saved_model
from actors.roles.round_driver import DataOwnerSettings
from actors.roles.store import StateStore
from protocol.constants import MAX_CHUNK_WORDS, Phase
from protocol.spec import (
    SpecError,
    TaskSpec,
    decode_canonical,
    infer_shapes,
    parse_spec,
    spec_hash,
)

if TYPE_CHECKING:
    from actors.entry.signer import Signer

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


# A node that went away (restarted, or the network dropped): the party is run again from its
# state directory, which resumes it where its store says, after pauses doubling from 1 s up to
# 30 s, until the node has been away this long.
_OUTAGE_LIMIT = 600.0
_OUTAGE_PAUSE = (1.0, 30.0)


def _outage(error: BaseException) -> bool:
    """Whether `error` (every error of a group) is the node being unreachable."""
    if isinstance(error, BaseExceptionGroup):
        return all(_outage(inner) for inner in error.exceptions)
    return isinstance(error, NodeUnavailable)


def _first(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def resuming(run: Callable[[], None], progress: Progress) -> None:
    """`run` a party; while it stops because the node is unreachable, wait and run it again
    (it resumes from its state directory), up to `_OUTAGE_LIMIT` seconds of outage."""
    pause, away = _OUTAGE_PAUSE[0], 0.0
    while True:
        try:
            return run()
        except BaseException as error:
            if not _outage(error):
                raise
            first = _first(error)
            if away >= _OUTAGE_LIMIT:
                raise NodeUnavailable(f"{first} (away {away:.0f} s, giving up)") from None
            log.warning("the node went away (%s): resuming in %.0f s", first, pause)
            retry = f"{first}; resuming in {pause:.0f} s"
            progress.observe("", "", "node_unavailable", error=retry)
            time.sleep(pause)
            away += pause
            pause = min(2 * pause, _OUTAGE_PAUSE[1])


def check_task_owner(
    spec_path: Path, validation: Path, test: Path | None, seed: int
) -> tuple[TaskSpec, SpecModelOwner]:
    """`omnilytics task create`'s checks before any chain is contacted: the spec, and the model
    owner's own data against it."""
    spec = load_spec(spec_path)
    return spec, owner_learner(spec, validation, test, seed=seed)


def run_task_owner(
    signer: Signer,
    market: Market,
    spec: TaskSpec,
    learner: SpecModelOwner,
    state_dir: Path,
    *,
    beacon_url: str | None = None,
    announce: Callable[[int], None] | None = None,
) -> dict[str, object]:
    """Create the task (or resume the one `state_dir` holds), announce its id, drive it to
    its end, showing its progress; what `result.json` holds."""
    _log_to(state_dir)
    use_threads(1)
    plan = TaskPlan.from_spec(spec)
    progress = Progress(market)
    try:
        with progress.shown():
            resuming(
                lambda: drive_model_owner(
                    signer.chain,
                    signer.account,
                    market.address,
                    learner,
                    plan,
                    state_dir,
                    beacon_url or signer.network.beacon_url,
                    announce=announce,
                    observe=progress.observe,
                ),
                progress,
            )
    except sm.ModelFileError as error:
        raise TaskRefused(f"state {state_dir}: {error}") from None
    return json.loads((state_dir / "result.json").read_text())


def check_join(market: Market, task: int, account: str, data: Path, seed: int | None) -> Learner:
    """`omnilytics join`'s checks, all before registering: the task exists and has a seat for
    us (or we hold one), its spec from chain data, its config against the spec, our files
    against the spec."""
    check_seat(market, task, account)
    terms = read_terms(market, task)
    return spec_learner(terms, data, seed=secrets.randbelow(2**31) if seed is None else seed)


def run_join(
    signer: Signer,
    market: Market,
    task: int,
    learner: Learner,
    state_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    keep_plaintext: bool = False,
    drop_at: tuple[int, str] | None = None,
    chunk_words: int = MAX_CHUNK_WORDS,
    timings: bool = False,
    seed: int | None = None,
) -> dict[str, object]:
    """Take part in `task` until it is over for us, showing the progress, then withdraw; what
    `result.json` holds. `seed` fixes the stochastic rounding of our updates (None: fresh)."""
    _log_to(state_dir)
    use_threads(1)
    sys.setswitchinterval(_SWITCH_INTERVAL)
    settings = DataOwnerSettings(
        host=host,
        port=port,
        poll_interval=0.1,
        keep_plaintext=keep_plaintext,
        drop_at=drop_at,
        chunk_words=chunk_words,
        rounding_seed=seed,
    )
    log.info("joining task %d with %d samples", task, len(learner.data))
    progress = Progress(market, task)
    with progress.shown():
        resuming(
            lambda: drive_data_owner(
                signer.chain,
                signer.account,
                market.address,
                task,
                learner,
                state_dir,
                settings,
                timings=timings,
                observe=progress.observe,
            ),
            progress,
        )
    return json.loads((state_dir / "result.json").read_text())


def withdraw_all(market: Market, account: str, task: int | None = None) -> int:
    """Withdraw what the market and its court credit `account` (after taking back its bond
    from `task`, which must be over); the total in wei."""
    if task is not None and market.bond_of(task, account):
        phase = market.phase(task).phase
        if phase not in (Phase.ENDED, Phase.CANCELLED):
            raise TaskRefused(
                f"task {task} is in phase {Phase(phase).name}: its bond comes back once it ended"
            )
        market.release_bond(task, account, account)
    total = 0
    owed = market.credits(account)
    if owed:
        market.withdraw(account)
        total += owed
    court = market.court_credits(account)
    if court:
        market.withdraw_court(account)
        total += court
    return total


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
