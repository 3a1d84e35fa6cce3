"""Actor lifetimes of the one-process demo: a run ends when every actor has finished its own
job, and a data owner's job ends with collecting what it is owed (bond, rewards, refunds), after
the model owner is done. One that raises, or is still at work `collect_grace` seconds after the
task ended, fails the run by name (`RunError`); the CLI says so in one line and exits 1."""

import io
from pathlib import Path

import pytest
import trio
from rich.console import Console
from typer.testing import CliRunner

import actors.entry.run
from actors.entry.cli import app
from actors.entry.run import RunError, demo
from actors.entry.scenario import Scenario
from actors.roles.data_owner import DataOwner

# one round of two groups of two, tiny shards and test set: the demo's path, quickly
SMALL = {"rounds": 1, "group_size": 2, "threshold": 2, "do_samples": 100, "test_limit": 500}


def _quiet() -> Console:
    return Console(file=io.StringIO(), width=200)


def _collecting(behaviour: dict[int, str]) -> type[DataOwner]:
    """DataOwner whose n-th instance (creation order: the scenario's index) collects late:
    "slow" after a second, "never", or "raise"s instead."""
    made = []

    class LateCollector(DataOwner):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.index = len(made)
            made.append(self)

        async def _collect(self) -> None:
            what = behaviour.get(self.index)
            if what == "slow":
                await trio.sleep(1.0)
            elif what == "never":
                await trio.sleep_forever()
            elif what == "raise":
                raise RuntimeError("node lost\nmid-withdrawal")
            await super()._collect()

    return LateCollector


def test_demo_waits_for_every_data_owner_to_collect(tmp_path, monkeypatch) -> None:
    """Each data owner collects a second after it saw the task end: the model owner is long
    done by then, and the run still waits for them all."""
    monkeypatch.setattr(actors.entry.run, "DataOwner", _collecting(dict.fromkeys(range(4), "slow")))
    scenario = Scenario(dos=4, **SMALL)
    report = demo(scenario, state_dir=tmp_path, console=_quiet())
    reward = scenario.plan().reward_per_do
    assert report.credited_wei == dict.fromkeys(report.credited_wei, reward)
    assert len(report.credited_wei) == 4
    assert report.withdrawn_wei == report.credited_wei


def test_data_owners_that_fail_or_never_finish_fail_the_run_by_name(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(actors.entry.run, "DataOwner", _collecting({1: "never", 2: "raise"}))
    scenario = Scenario(dos=4, **SMALL)
    out = io.StringIO()
    with pytest.raises(RunError) as raised:
        demo(
            scenario,
            state_dir=tmp_path,
            console=Console(file=out, width=200),
            collect_grace=2.0,
        )
    report = raised.value.report
    assert report is not None  # the model owner finished: the chain's account is printed
    accounts = list(report.credited_wei)
    assert raised.value.failures == {
        accounts[1]: raised.value.failures[accounts[1]],
        accounts[2]: "RuntimeError: node lost mid-withdrawal",
    }
    assert raised.value.failures[accounts[1]].startswith("not finished 2 s after the task ended")
    reward = scenario.plan().reward_per_do
    assert report.credited_wei == dict.fromkeys(accounts, reward)
    assert report.withdrawn_wei == {a: 0 if i in (1, 2) else reward for i, a in enumerate(accounts)}
    assert "2 have not withdrawn 0.0200 ETH credited" in " ".join(out.getvalue().split())


def test_cli_reports_a_failed_run_in_one_line(monkeypatch) -> None:
    def failing(*args, **kwargs):
        raise RunError({"0xAbC": "RuntimeError: node lost\nmid-withdrawal", "0xDeF": "not done"})

    monkeypatch.setattr(actors.entry.run, "demo", failing)
    result = CliRunner().invoke(
        app, ["demo", "--dos", "4", "--group-size", "2", "--threshold", "2"]
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "demo failed: 0xAbC: RuntimeError: node lost mid-withdrawal; 0xDeF: not done"
    ]
    assert "Traceback" not in result.output


@pytest.mark.anvil
def test_demo_on_anvil_every_data_owner_withdraws_its_pay(tmp_path: Path) -> None:
    """The bug as seen: on anvil the demo used to stop the data owners as the model owner
    finished, some before their withdrawal (3 of 6 paid). Now every one withdrew, on-chain.
    (Two groups of three: with three groups of two the old code lost no withdrawal here.)"""
    scenario = Scenario(dos=6, **(SMALL | {"group_size": 3}))
    out = io.StringIO()
    report = demo(
        scenario, chain_kind="anvil", state_dir=tmp_path, console=Console(file=out, width=200)
    )
    reward = scenario.plan().reward_per_do
    assert report.credited_wei == dict.fromkeys(report.credited_wei, reward)
    assert len(report.credited_wei) == 6
    # from chain data: each one's Withdrawn events add up to what it was credited
    assert report.withdrawn_wei == report.credited_wei
    assert report.aggregate_exact is True
    assert "paid 0.0600 ETH to 6 data owners" in out.getvalue()
