"""`omnilytics demo --task`: each example spec runs to completion on the embedded chain at small
size, its data owners' files written from the data set the project ships and read back through
the spec's adapter; the aggregates are exact, every data owner is paid every round, and the
report carries the central ceiling beside the model owner alone and after each round."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from actors.entry.cli import app
from actors.entry.run import demo
from actors.entry.scenario import Scenario, default_data_dir

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"dos": 3, "group_size": 3, "threshold": 2, "rounds": 1, "test_limit": 300}


@pytest.mark.parametrize(
    ("name", "samples"), [("mnist-cnn", 100), ("breast-cancer-mlp", 60), ("digits16-cnn", 100)]
)
def test_each_example_runs_to_completion_and_pays(tmp_path: Path, name: str, samples: int) -> None:
    spec = ROOT / "examples" / f"{name}.toml"
    scenario = Scenario.for_spec(spec, do_samples=samples, **SMALL)
    out = io.StringIO()
    report = demo(
        scenario,
        report_path=tmp_path / "report.json",
        plot_path=None,
        state_dir=tmp_path / "state",
        console=Console(file=out, width=140),
    )
    assert report.aggregate_exact is True
    reward = scenario.plan().reward_per_do
    assert list(report.withdrawn_wei.values()) == [reward] * 3
    assert list(report.credited_wei.values()) == [reward] * 3
    assert report.task == str(spec)
    assert 0.0 < report.accuracy_central <= 1.0
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["accuracy_central"] == report.accuracy_central
    assert "central (ceiling)" in out.getvalue()
    # each data owner's files sit in a folder of its own, read through the spec's adapter: with
    # no --data-dir, in the split's cache folder
    cached = default_data_dir(scenario)
    assert sorted(p.name for p in cached.glob("do-*")) == ["do-0", "do-1", "do-2"]
    assert (cached / "complete").exists() and not (tmp_path / "state" / "data").exists()


def test_demo_task_on_the_command_line(tmp_path: Path) -> None:
    spec = ROOT / "examples" / "breast-cancer-mlp.toml"
    args = ["demo", "--task", str(spec), "--dos", "3", "--rounds", "1"]
    args += ["--report", str(tmp_path / "r.json"), "--plot", str(tmp_path / "p.png")]
    args += ["--data-dir", str(tmp_path / "data")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["aggregate_exact"] is True and data["rounds"] == 1
    assert (tmp_path / "data" / "do-2" / "data.csv").exists()


def test_demo_refuses_a_bad_spec_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    text = (ROOT / "examples" / "digits16-cnn.toml").read_text()
    bad.write_text(text.replace("groups = 4", "groups = 3"))
    result = CliRunner().invoke(app, ["demo", "--task", str(bad)])
    assert result.exit_code == 1
    assert result.output.startswith("demo failed: model.layers[4]: groupnorm 16 channels do not")
