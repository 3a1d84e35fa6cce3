"""`omnilytics task` and `omnilytics join` refuse what they cannot use in one line naming the
field, file or value and the rule, exit 1, no traceback, and before any chain is contacted when
the spec or the model owner's own data is at fault."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
import typer
from typer.testing import CliRunner

from actors.entry.cli import app
from actors.entry.tasks_cli import _refused_as
from actors.learning import spec_model as sm
from actors.roles.model_owner import _NS, _Saved
from actors.roles.store import StateStore
from protocol.spec import parse_spec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "breast-cancer-mlp.toml"
# nothing listens here: a command that got as far as the chain would fail on it instead
CHAIN = ["--rpc-url", "http://127.0.0.1:9", "--market", "0x" + "00" * 20]


def _run(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(app, args, env={"OMNILYTICS_PRIVATE_KEY": "0x" + "11" * 32})
    return result.exit_code, result.output


def _spec(tmp_path: Path, old: str, new: str) -> Path:
    path = tmp_path / "spec.toml"
    text = EXAMPLE.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('type = "relu"', 'type = "batchnorm"', "field model.layers[1].type: unknown layer"),
        ("max_params = 5_000", "max_params = 500", "field model.max_params: 1554 parameters"),
        ("private_from = 4", "private_from = 5", "field model.private_from"),
        ("out_features = 2", "out_features = 3", "field model.layers: the network outputs [3]"),
        ("version = 1", "version = 2", "field version: 2 is newer"),
        ("max_samples = 200", "max_samples = 10", "field data.min_samples: must not exceed"),
        ("lr = 0.05", "lr = 5.0", "field training.lr"),
    ],
)
def test_task_create_refuses_a_bad_spec_before_the_chain(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    spec = _spec(tmp_path, old, new)
    code, output = _run(["task", "create", str(spec), "--validation", "x.csv", *CHAIN])
    assert code == 1
    assert output.count("\n") == 1 and "Traceback" not in output
    assert f"error: task create refused: spec {spec}: {message}" in output


def test_task_create_refuses_its_own_data_that_does_not_fit(tmp_path: Path) -> None:
    table = tmp_path / "own.csv"
    table.write_text("mean_radius,diagnosis\n1.0,0\n")
    code, output = _run(["task", "create", str(EXAMPLE), "--validation", str(table), *CHAIN])
    assert (code, output) == (1, f"error: task create refused: data {table}: missing column "
                                  "'mean_texture'\n")  # fmt: skip


def test_join_of_an_unreachable_node_fails_in_one_line(tmp_path: Path) -> None:
    code, output = _run(["join", "1", "--data", str(tmp_path), *CHAIN])
    assert code == 1 and output.startswith("error: refusing to join: ") and output.count("\n") == 1


def test_join_refuses_a_bad_drop() -> None:
    code, output = _run(["join", "1", "--data", "x", "--drop", "0:train", *CHAIN])
    assert code == 2 and "ROUND:STEP" in output


def test_task_model_writes_the_saved_model_of_that_task_only(tmp_path: Path) -> None:
    code, output = _run(["task", "model", "3", "--state-dir", str(tmp_path), "--out", "m"])
    expected = f"error: task model: state {tmp_path}: no model owner state here\n"
    assert (code, output) == (1, expected)
    spec = parse_spec(EXAMPLE.read_bytes())
    exported = sm.export_model(spec, sm.new_public_model(spec, 0), sm.new_head(spec, 0))
    store = StateStore(tmp_path / "state.sqlite")
    store.put_many(_NS, {"progress": msgspec.msgpack.encode(_Saved("0x1", 3)), "model": exported})
    store.close()
    code, output = _run(["task", "model", "4", "--state-dir", str(tmp_path), "--out", "m"])
    assert (code, output) == (1, f"error: task model: state {tmp_path}: holds task 3, not task 4\n")
    out = tmp_path / "out" / "model.safetensors"
    code, output = _run(["task", "model", "3", "--state-dir", str(tmp_path), "--out", str(out)])
    assert code == 0 and out.read_bytes() == exported
    assert sm.load_exported(out.read_bytes())[0] == spec


@pytest.mark.parametrize(
    "interrupt",
    [KeyboardInterrupt(), BaseExceptionGroup("trio", [KeyboardInterrupt(), KeyboardInterrupt()])],
)
def test_ctrl_c_is_one_line_saying_how_to_resume(
    interrupt: BaseException, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(typer.Exit) as info, _refused_as("refusing to join"):
        raise interrupt
    assert info.value.exit_code == 1
    assert capsys.readouterr().err == (
        "error: refusing to join: interrupted; run it again with the same --state-dir to resume\n"
    )


def test_an_error_beside_ctrl_c_is_not_hidden() -> None:
    group = BaseExceptionGroup("nursery", [KeyboardInterrupt(), ZeroDivisionError()])
    with pytest.raises(BaseExceptionGroup), _refused_as("refusing to join"):
        raise group
