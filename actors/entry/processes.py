"""The model owner and a data owner as processes of their own, on a JSON-RPC node.

`omnilytics mo` and `omnilytics do` call these. Each process holds its own private key (from the
environment, never from the command line), derives its own data shard from the scenario, keeps
its state in its own directory, and writes a small JSON result when it is done.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np
import trio

from actors.chain.blob_sources import blob_source
from actors.chain.market import Market
from actors.chain.rpc_backend import RpcChain
from actors.entry.collector import freeze_setup, rare_full_collections
from actors.entry.scenario import (
    Scenario,
    data_owner_learner,
    data_owner_seed,
    model_owner_learner,
    split_data,
)
from actors.learning.train import use_threads
from actors.measure import timing
from actors.roles.data_owner import DataOwner, DataOwnerSettings, Learner
from actors.roles.model_owner import ModelOwner, Observer, ResumableLearner, TaskPlan
from actors.roles.store import StateStore
from protocol.constants import DATA_PATH_DIRECT, MAX_CHUNK_WORDS

KEY_ENV = "OMNILYTICS_PRIVATE_KEY"


def load_scenario(path: Path) -> Scenario:
    fields = json.loads(path.read_text())
    fields["drops"] = tuple(tuple(d) for d in fields.get("drops", ()))
    return Scenario(**fields)


def save_scenario(scenario: Scenario, path: Path) -> None:
    path.write_text(json.dumps(asdict(scenario)))


def _connect(rpc_url: str) -> tuple[RpcChain, str]:
    key = os.environ.get(KEY_ENV)
    if not key:
        raise SystemExit(f"set {KEY_ENV} to the account's private key")
    chain = RpcChain(rpc_url)
    return chain, chain.add_account(key)


def _log_to(state_dir: Path) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        filename=state_dir / "actor.log",
        level=logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


def run_model_owner(
    rpc_url: str, market: str, scenario: Scenario, state_dir: Path, beacon_url: str | None = None
) -> None:
    """Create the task (or resume the one `state_dir` holds), drive it to its end, and write
    `result.json` in `state_dir`; a blob task's updates are read from the beacon node at
    `beacon_url` if given, else the node."""
    _log_to(state_dir)
    use_threads(1)  # the data owners' processes train beside us on the same cores
    chain, account = _connect(rpc_url)
    learner = model_owner_learner(scenario, split_data(scenario))
    drive_model_owner(chain, account, market, learner, scenario.plan(), state_dir, beacon_url)


def drive_model_owner(
    chain: RpcChain,
    account: str,
    market: str,
    learner: ResumableLearner,
    plan: TaskPlan,
    state_dir: Path,
    beacon_url: str | None = None,
    *,
    announce: Callable[[int], None] | None = None,
    observe: Observer | None = None,
) -> None:
    """Create `plan`'s task with `learner` (or resume the one `state_dir` holds), drive it to
    its end, and write `result.json` in `state_dir`; `announce` hears the task id once it
    exists."""
    view = Market(chain, market, blob_source=blob_source(chain, beacon_url))
    store = StateStore(state_dir / "state.sqlite")
    owner = ModelOwner(
        view, account, learner, plan, poll_interval=0.1, store=store, observe=observe
    )

    async def main() -> None:
        task = await owner.start()
        # the launcher waits for this file to start the data owners
        (state_dir / "task.tmp").write_text(str(task))
        (state_dir / "task.tmp").replace(state_dir / "task")
        if announce is not None:
            announce(task)
        reports = await owner.run()
        result = {
            "task": task,
            "account": account,
            "accuracy_before": [r.accuracy_before for r in reports],
            "accuracy_after": [r.accuracy_after for r in reports],
            "finalized_groups": [r.finalized_groups for r in reports],
            "refunded_wei": owner.refunded_wei,
            "chain_seconds": sum(r.seconds for r in owner.market.receipts),
        }
        (state_dir / "result.json").write_text(json.dumps(result, indent=2))
        if plan.data_path == DATA_PATH_DIRECT:
            # a direct task's updates are not on-chain: the launcher checks the sums we found
            for report in reports:
                for group, ring_sum in report.aggregates.items():
                    np.save(state_dir / f"aggregate-{report.round}-{group}.npy", ring_sum)

    _run_actor(main)


# The training thread holds the GIL between torch's operations; a protocol thread waiting for it
# (a chain call's reply, a peer's frame) waited up to Python's default 5 ms switch interval each
# time. A data owner asks for the GIL to change hands after 1 ms instead.
_SWITCH_INTERVAL = 0.001


def run_data_owner(
    rpc_url: str,
    market: str,
    task: int,
    index: int,
    scenario: Scenario,
    state_dir: Path,
    *,
    keep_plaintext: bool = False,
    host: str = "127.0.0.1",
    timings: bool = False,
    chunk_words: int = MAX_CHUNK_WORDS,
) -> None:
    """Take part in `task` as data owner `index` of the scenario until the task is over; peers
    reach our channel at `host` (the address we listen on and register as our endpoint); a
    submission transaction carries at most `chunk_words` words. With `timings`, `result.json`
    also tells where the time went (`actors.measure.timing`)."""
    _log_to(state_dir)
    use_threads(1)
    sys.setswitchinterval(_SWITCH_INTERVAL)
    chain, account = _connect(rpc_url)
    learner = data_owner_learner(scenario, split_data(scenario), index)
    drops = {i: (r, step) for i, r, step in scenario.drops}
    settings = DataOwnerSettings(
        host=host,
        poll_interval=0.1,
        keep_plaintext=keep_plaintext,
        drop_at=drops.get(index),
        chunk_words=chunk_words,
        rounding_seed=data_owner_seed(scenario, index),
    )
    drive_data_owner(chain, account, market, task, learner, state_dir, settings, timings=timings)


def drive_data_owner(
    chain: RpcChain,
    account: str,
    market: str,
    task: int,
    learner: Learner,
    state_dir: Path,
    settings: DataOwnerSettings,
    *,
    timings: bool = False,
    observe: Observer | None = None,
) -> None:
    """Run a data owner with `learner` in `task` until the task is over for it (resuming from
    `state_dir`), then write its `result.json` there (and its plaintext updates in test mode);
    `observe` hears each of its steps."""
    warm_up = getattr(learner, "warm_up", None)  # an attacker's learner may not have one
    if warm_up is not None:
        warm_up()  # torch's costly first steps at start-up, not inside the first round
    times = timing.new_times()
    if timings:
        chain, learner = timing.TimedChain(chain, times), timing.TimedLearner(learner, times)
    store = StateStore(state_dir / "state.sqlite")
    # with timings, where the time stood as each round opened (a round's own share: the next
    # mark, or the end, minus its own)
    marks: dict[str, dict[str, float]] = {}

    def mark(role: str, who: str, what: str, **fields: object) -> None:
        if observe is not None:
            observe(role, who, what, **fields)
        if timings and what == "opening":
            marks[str(fields["round"])] = dict(times)

    owner = DataOwner(
        Market(chain, market), account, task, learner, store, settings=settings, observe=mark
    )

    async def main() -> None:
        clock = timing.StepClock()
        if timings:
            clock.roots[trio.lowlevel.current_task()] = times
            trio.lowlevel.add_instrument(clock)
        await owner.run()
        if timings:
            trio.lowlevel.remove_instrument(clock)
        for number, lanes in owner.plaintext.items():
            np.save(state_dir / f"plaintext-{number}.npy", lanes, allow_pickle=False)
        result = {
            "account": account,
            "withdrawn_wei": owner.withdrawn_wei,
            "dropped": owner.settings.drop_at is not None,
            "chain_seconds": sum(r.seconds for r in owner.market.receipts),
        }
        if timings:
            result["seconds"] = dict(times)
            result["seconds_at_round_opening"] = marks
        (state_dir / "result.json").write_text(json.dumps(result, indent=2))

    _run_actor(main)


def _run_actor(main: Callable[[], Awaitable[None]]) -> None:
    """Run an actor's `main` once its setup is done: full collections rare, and what setup
    left alive (the learner's data and model, the chain client) out of them
    (`actors.entry.collector`)."""
    with rare_full_collections():
        freeze_setup()
        trio.run(main)
