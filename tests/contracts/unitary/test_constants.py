"""Every number the Python side mirrors equals the contract's (docs/interfaces.md §1, §3, §4, §7),
and the TaskConfig dataclasses list the struct's fields in its order: both are read from the
`.vy` sources themselves, so a change on either side fails here."""

import ast
import operator
import re
from dataclasses import fields
from pathlib import Path

import pytest

from actors.chain.market import TaskConfig
from protocol import bn254, constants, spec
from protocol.constants import Challenge, GroupResult, Phase, Status
from tests.contracts.market import CONFIG_FIELDS

CONTRACTS = Path(__file__).resolve().parents[3] / "contracts"
_DECLARATION = re.compile(r"^([A-Z][A-Z0-9_]*): constant\(uint256\) = (.+)$", re.MULTILINE)
_OPERATORS = {ast.Add: operator.add, ast.Mult: operator.mul, ast.Pow: operator.pow}


def _value(node: ast.expr) -> int:
    """An integer literal or a sum, product or power of them (all the sources use)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_value(node.left), _value(node.right))
    raise AssertionError(f"not a constant expression: {ast.unparse(node)}")


def _contract_constants() -> dict[str, int]:
    """`module.NAME -> value` of every uint256 constant under contracts/ (`SharesCourt.NAME`
    for the court's own)."""
    found = {}
    for path in sorted(CONTRACTS.rglob("*.vy")):
        for name, expression in _DECLARATION.findall(path.read_text()):
            found[f"{path.stem}.{name}"] = _value(ast.parse(expression, mode="eval").body)
    return found


CONTRACT = _contract_constants()

# (the contract's constant, the Python value that mirrors it)
MIRRORED = [
    ("commitments.KIND_SELF_SEED", constants.KIND_SELF_SEED),
    ("commitments.KIND_MASK_KEY", constants.KIND_MASK_KEY),
    ("commitments.MAX_PROOF", constants.MAX_PROOF),
    ("models.MAX_MODEL_CHUNK", constants.MAX_MODEL_CHUNK),
    # 2 polynomials of t points of 64 bytes
    ("commitments.MAX_POINT_BYTES", 2 * constants.MAX_THRESHOLD * 64),
    ("registry.MAX_DOS", constants.MAX_DOS),
    ("registry.MAX_GROUP_SIZE", constants.MAX_GROUP_SIZE),
    ("registry.MAX_GROUP", constants.MAX_GROUP),
    ("registry.MAX_ENDPOINT", constants.MAX_ENDPOINT),
    ("rounds.MAX_CHUNK_WORDS", constants.MAX_CHUNK_WORDS),
    ("rounds.MAX_CHUNK_BLOBS", constants.MAX_CHUNK_BLOBS),
    ("rounds.BLOB_WORDS", constants.BLOB_WORDS),
    ("rounds.MAX_ROUNDS", constants.MAX_ROUNDS),
    ("rounds.MIN_DURATION", constants.MIN_DURATION),
    ("rounds.MAX_DURATION", constants.MAX_DURATION),
    ("rounds.MAX_SPEC_BYTES", constants.MAX_SPEC_BYTES),
    ("rounds.MAX_SPEC_BYTES", spec.MAX_SPEC_BYTES),
    ("rounds.DATA_PATH_EVENT", constants.DATA_PATH_EVENT),
    ("rounds.DATA_PATH_BLOB", constants.DATA_PATH_BLOB),
    ("rounds.DATA_PATH_DIRECT", constants.DATA_PATH_DIRECT),
    ("SharesCourt.CURVE_ORDER", bn254.R),
    ("SharesCourt.H_X", bn254.H_AFFINE[0]),
    ("SharesCourt.H_Y", bn254.H_AFFINE[1]),
    *((f"rounds.PHASE_{p.name}", p.value) for p in Phase),
    *((f"rounds.STATUS_{s.name}", s.value) for s in Status),
    *((f"rounds.GROUP_{g.name}", g.value) for g in GroupResult),
    *((f"DeliveryDesk.CHALLENGE_{c.name}", c.value) for c in Challenge),
]


@pytest.mark.parametrize(("name", "value"), MIRRORED, ids=[n for n, _ in MIRRORED])
def test_python_mirrors_the_contract(name: str, value: int) -> None:
    assert CONTRACT[name] == value


def test_every_phase_status_and_result_of_the_contract_is_mirrored() -> None:
    enums = ("rounds.PHASE_", "rounds.STATUS_", "rounds.GROUP_", "DeliveryDesk.CHALLENGE_")
    ours = {name for name, _ in MIRRORED}
    assert {n for n in CONTRACT if n.startswith(enums)} == {n for n in ours if n.startswith(enums)}


def test_the_examples_fit_the_spec_bound_with_room() -> None:
    examples = sorted((CONTRACTS.parent / "examples").glob("*.toml"))
    sizes = [len(spec.canonical_bytes(spec.parse_spec(p.read_bytes()))) for p in examples]
    assert examples and 4 * max(sizes) <= CONTRACT["rounds.MAX_SPEC_BYTES"]


def test_task_config_mirrors_the_struct_field_for_field() -> None:
    source = (CONTRACTS / "modules" / "rounds.vy").read_text()
    body = source.split("struct TaskConfig:\n", 1)[1].split("\n\n", 1)[0]
    struct = [line.split(":")[0].strip() for line in body.splitlines()]
    assert [f.name for f in fields(TaskConfig)] == struct
    assert list(CONFIG_FIELDS) == struct
