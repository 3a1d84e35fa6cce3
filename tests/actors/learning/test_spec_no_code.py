"""No string from a spec reaches code execution (DESIGN.md §8): a static scan of every module a
spec drives, and a run of a whole spec task's learning path (parse, build, publish, read files,
train, aggregate, export, load) with eval, exec, compile, __import__, importlib, getattr on a
module, torch.load and pickle watched: none of them ever sees a spec's string."""

from __future__ import annotations

import builtins
import importlib
import pickle
import re
import types
from pathlib import Path

import msgspec
import numpy as np
import pytest
import torch

from actors.learning import spec_model as sm
from actors.learning.adapters import read_data
from actors.learning.spec_learners import SpecDataOwner, SpecModelOwner
from actors.learning.train import fedavg
from protocol.spec import canonical_bytes, decode_canonical, parse_spec
from tests.actors.learning.test_spec_model import _offences

ROOT = Path(__file__).resolve().parents[3]
# the modules a spec drives beyond protocol.spec, spec_model, adapters and recipe (scanned in
# test_spec_model): its learners, a data owner's join, the spec task processes and the harness
SCANNED = [
    ROOT / "actors" / "learning" / "spec_learners.py",
    ROOT / "actors" / "roles" / "join.py",
    ROOT / "actors" / "entry" / "spec_tasks.py",
    ROOT / "actors" / "entry" / "tasks_cli.py",
    ROOT / "actors" / "entry" / "scenario.py",
]
MARK = "zq9spec"  # in every free-text string of the spec below
_CODE = {"eval", "exec", "compile"}  # these take source code


@pytest.mark.parametrize("path", SCANNED, ids=lambda p: p.name)
def test_no_spec_driven_module_calls_what_runs_code(path: Path) -> None:
    assert _offences(path.read_text()) == []


def _marked_spec(tmp_path: Path):
    """A tabular spec whose column and label names carry MARK, and its files."""
    columns = [f"{MARK}_col{i}" for i in range(4)]
    text = f"""
version = 1
[model]
private_from = 2
max_params = 1000
max_flops_per_sample = 10000
[[model.layers]]
type = "linear"
out_features = 8
[[model.layers]]
type = "gelu"
[[model.layers]]
type = "linear"
out_features = 2
[data]
kind = "tabular"
shape = [4]
label = "{MARK}_label"
classes = 2
min_samples = 10
max_samples = 40
[data.tabular]
columns = {columns!r}
mean = [0.0, 0.0, 0.0, 0.0]
std = [1.0, 1.0, 1.0, 1.0]
[training]
loss = "cross_entropy"
optimizer = "adam"
lr = 0.01
epochs = 2
batch_size = 8
owner_epochs = 2
finetune_epochs = 1
[market]
rounds = 1
max_dos = 2
min_dos = 2
group_size = 2
threshold = 2
reward_wei = 1
"""
    rng = np.random.default_rng(0)
    paths = []
    for part in ("owner", "do-0", "do-1"):
        x = rng.standard_normal((30, 4))
        y = (x[:, 0] > 0).astype(int)
        path = tmp_path / f"{part}.csv"
        lines = [",".join([*columns, f"{MARK}_label"])]
        lines += [
            ",".join([*(f"{v:.4f}" for v in row), str(label)])
            for row, label in zip(x, y, strict=True)
        ]
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return text.encode(), paths


def _strings(value: object) -> set[str]:
    """The string values a spec holds (its keys are our schema's names, not the author's)."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(_strings(v) for v in value.values()), set())
    if isinstance(value, list | tuple):
        return set().union(*(_strings(v) for v in value), set())
    return set()


def _watch(monkeypatch: pytest.MonkeyPatch, watched: set[str]) -> list[tuple[str, str]]:
    """Wrap what runs code so that a call handed a watched string (or any string carrying MARK)
    is recorded; getattr on a module is watched for MARK only, since torch looks up its own
    functions by names that are also the spec vocabulary's ("linear", "gelu", "mean")."""
    seen: list[tuple[str, str]] = []

    def leaked(args: tuple, kwargs: dict, words: set[str], code: bool) -> str | None:
        for text in (a for a in (*args, *kwargs.values()) if isinstance(a, str | bytes)):
            text = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
            # source code may hold a word as any token of it; a name must be the word
            tokens = set(re.findall(r"\w+", text)) if code else {text}
            if MARK in text or tokens & words:
                return text
        return None

    def wrap(owner: object, name: str, *, on_modules: bool = False) -> None:
        original = getattr(owner, name)

        def guarded(*args, **kwargs):
            if on_modules:
                if isinstance(args[0], types.ModuleType):
                    text = leaked(args[1:], kwargs, set(), False)
                    if text is not None:
                        seen.append((name, text))
            elif (text := leaked(args, kwargs, watched, name in _CODE)) is not None:
                seen.append((name, text))
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, guarded)

    for name in ("eval", "exec", "compile", "__import__"):
        wrap(builtins, name)
    wrap(builtins, "getattr", on_modules=True)
    wrap(importlib, "import_module")
    wrap(torch, "load")
    wrap(pickle, "loads")
    wrap(pickle, "load")
    return seen


def test_a_whole_spec_task_never_hands_a_spec_string_to_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    toml, (owner_path, *do_paths) = _marked_spec(tmp_path)
    watched = {s for s in _strings(msgspec.to_builtins(parse_spec(toml))) if len(s) > 2}
    assert {"linear", "gelu", "adam", f"{MARK}_label"} <= watched
    # once to load what torch imports lazily (its namedtuples are made by eval, with words such
    # as "event"), then under watch
    _run_task(toml, owner_path, do_paths)
    seen = _watch(monkeypatch, watched)
    spec, loaded_spec = _run_task(toml, owner_path, do_paths)
    monkeypatch.undo()
    assert loaded_spec == spec
    assert seen == []


def _run_task(toml: bytes, owner_path: Path, do_paths: list[Path]):
    """Everything a model owner and two data owners do with a spec, from the spec's bytes."""
    spec = decode_canonical(canonical_bytes(parse_spec(toml)))
    own = read_data(spec, owner_path, model_owner=True)
    owner = SpecModelOwner(spec, own, own, seed=0)
    published = owner.model_bytes()
    results = [
        SpecDataOwner(spec, read_data(spec, path), seed=i).train(published, 0)
        for i, path in enumerate(do_paths)
    ]
    owner.apply(fedavg([u for u, _ in results], [n for _, n in results]).astype(np.float64))
    owner.reference_update()
    loaded_spec, _ = sm.load_exported(owner.export())
    owner.restore(owner.state())
    return spec, loaded_spec


def test_the_watch_sees_a_spec_string_that_reaches_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runtime watch itself catches what it is there to catch."""
    seen = _watch(monkeypatch, {"linear"})
    column = f"{MARK}_col0"
    builtins.getattr(torch.nn.functional, column, None)  # a module lookup by a spec's name
    builtins.eval("1", {"linear": 1})  # only string arguments count
    with pytest.raises(SyntaxError):
        builtins.exec("linear(")
    monkeypatch.undo()
    assert seen == [("getattr", column), ("exec", "linear(")]
