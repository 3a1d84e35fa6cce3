"""`omnilytics swarm --task SPEC --data-dir DIR` on anvil: the model owner is an `omnilytics task
create` process and each data owner an `omnilytics join` process given only its own folder; the
aggregates recovered from chain data are exact, every data owner is paid, `task show` reads the
task from the chain and `task model` exports the model owner's model, loadable from its bytes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from actors.chain.anvil import AnvilNode
from actors.chain.rpc_backend import RpcChain
from actors.entry.cli import app
from actors.entry.scenario import Scenario
from actors.entry.swarm import Swarm
from actors.learning import spec_model as sm
from actors.learning.adapters import read_data

pytestmark = pytest.mark.anvil

ROOT = Path(__file__).resolve().parents[2]


def test_a_swarm_of_a_spec_runs_task_create_and_join_processes(tmp_path: Path) -> None:
    spec = ROOT / "examples" / "breast-cancer-mlp.toml"
    data_dir = tmp_path / "data"
    scenario = Scenario.for_spec(spec, dos=3, rounds=1, data_dir=str(data_dir))
    with AnvilNode() as node:
        swarm = Swarm(scenario, RpcChain(node.url, dev=True), tmp_path / "state")
        try:
            swarm.start(timeout=180)
            commands = {i: process.args for i, process in swarm.dos.items()}
            swarm.wait(timeout=400)
            report = swarm.report()
            chain = ["--rpc-url", node.url, "--market", swarm.market.address]
            shown = CliRunner().invoke(app, ["task", "show", str(swarm.task), *chain, "--json"])
        finally:
            swarm.stop()
    assert report.aggregate_exact is True
    reward = scenario.plan().reward_per_do
    assert list(report.withdrawn_wei.values()) == [reward] * 3
    assert report.accuracy_central is not None and report.task == str(spec)
    for i, args in commands.items():
        assert args[args.index("-m") + 2 : args.index("-m") + 3] == ["join"]
        folders = [a for a in args if str(data_dir) in a]
        assert folders == [str(data_dir / f"do-{i}" / "data.csv")]
    facts = json.loads(shown.stdout)
    assert (facts["phase"], facts["terms"]["sample_cap"], facts["registered"]) == (
        "ENDED", scenario.do_samples, 3,
    )  # fmt: skip
    out = tmp_path / "model.safetensors"
    state = ["--state-dir", str(tmp_path / "state" / "mo"), "--out", str(out)]
    exported = CliRunner().invoke(app, ["task", "model", str(swarm.task), *state])
    assert exported.exit_code == 0, exported.output
    loaded_spec, model = sm.load_exported(out.read_bytes())
    test = read_data(loaded_spec, data_dir / "test" / "data.csv", model_owner=True)
    with torch.no_grad():
        accuracy = float((model(test.x).argmax(1) == test.y).float().mean())
    assert accuracy == pytest.approx(report.accuracy_after[-1], abs=1e-6)
