"""Random calls into the market: every entry point with arguments of its ABI types drawn at random
(and some plausible ones), raw calldata with random selectors, from random senders, with and
without ETH. Each call either succeeds or reverts (no other EVM failure), a reverted call changes
nothing, and after every call the market's ETH balance equals the sum of what it owes: the
escrow left in every ETH task, every bond held and every account's ETH credits.

A refused call names its reason, except the calls Vyper refuses before the function body runs
(docs/interfaces.md §8): an unknown selector, ETH sent to a non-payable entry point, calldata
that is not an ABI encoding of the arguments, an array, `Bytes` or `String` over its bound.
Those revert with no reason, and always (the clients never send them).
"""

from __future__ import annotations

import boa
import pytest
from eth_abi import decode, encode
from eth_utils import function_abi_to_4byte_selector
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from vyper.semantics.types import BytesT, DArrayT, SArrayT, StringT, StructT, TupleT

from tests.contracts.market import ETH, TaskRun, as_struct, config, escrow_of
from tests.fuzzing.recorder import recorder

# the calls Vyper refuses before the body, with no reason (docs/interfaces.md §8)
UNKNOWN_SELECTOR = "unknown selector"
VALUE_TO_NON_PAYABLE = "ETH to a non-payable entry point"
MALFORMED = "calldata not an ABI encoding of the arguments"
OVER_LONG = "array, Bytes or String over its bound"

# the ci profile's own suppressions, plus the session-wide market fixture every example shares
# (each example runs in boa.env.anchor(), so it starts from the fixture's state untouched)
FUZZ = settings(
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ]
)


def _abi_type(arg: dict) -> str:
    kind = arg["type"]
    if kind.startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in arg["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def _entry_points(market) -> list[dict]:
    return [
        f
        for f in market.abi
        if f["type"] == "function" and f.get("stateMutability") not in ("view", "pure")
    ]


def _values(arg: dict, pool: list[str], plausible: bool) -> st.SearchStrategy:
    """Values of one ABI argument: small and meaningful (tasks 1 and 2, rounds 0 and 1, our
    accounts), or anything of its type."""
    kind = arg["type"]
    if kind.endswith("[]"):
        item = dict(arg, type=kind[:-2])
        return st.lists(_values(item, pool, plausible), max_size=4)
    if kind == "tuple":
        return st.tuples(*(_values(c, pool, plausible) for c in arg["components"]))
    if kind == "uint256":
        if plausible:
            # the tasks set up below, rounds 0 and 1
            return st.sampled_from({"task": [1, 2], "round": [0, 1]}.get(arg["name"], [0, 1, 2]))
        return st.sampled_from([2**32, 2**255, 2**256 - 1]) | st.integers(0, 2**256 - 1)
    if kind == "address":
        if plausible and arg["name"] == "token":
            return st.just(ETH)
        return st.sampled_from([*pool, ETH])
    if kind == "bytes32":
        return st.binary(min_size=32, max_size=32) | st.just(bytes(32))
    if kind == "bytes":
        return st.binary(min_size=int(plausible), max_size=64)
    if kind == "string":
        return st.text(min_size=int(plausible), max_size=40)
    raise AssertionError(f"no strategy for ABI type {kind}")


def _bound(typ) -> int | None:
    """The most items (DynArray) or bytes (Bytes, String) Vyper accepts of a type, if bounded."""
    if isinstance(typ, DArrayT):
        return typ.count
    if isinstance(typ, BytesT | StringT):
        return typ.length
    return None


def _over_long(market, pool: list[str]) -> st.SearchStrategy:
    """Calldata of an entry point with plausible arguments but one dynamic argument a single
    item (or byte) over its bound: 6,145 words to `submit`, 65 reveals, a 129-byte endpoint."""
    targets = [
        (fn, i)
        for fn in _entry_points(market)
        for i, arg in enumerate(getattr(market, fn["name"]).func_t.arguments)
        if _bound(arg.typ) is not None
    ]

    def build(target: tuple[dict, int]) -> st.SearchStrategy:
        fn, index = target
        inputs = fn["inputs"]
        size = _bound(getattr(market, fn["name"]).func_t.arguments[index].typ) + 1
        kind = inputs[index]["type"]
        if kind.endswith("[]"):
            item = _values(dict(inputs[index], type=kind[:-2]), pool, True)
            long = item.map(lambda v: [v] * size)
        else:
            long = st.just("x" * size if kind == "string" else b"\x01" * size)
        args = [_values(a, pool, True) for a in inputs]
        args[index] = long
        types = [_abi_type(a) for a in inputs]
        selector = function_abi_to_4byte_selector(fn)
        return st.tuples(*args).map(lambda a: selector + encode(types, list(a)))

    return st.sampled_from(targets).flatmap(build)


def _call(market, pool: list[str]) -> st.SearchStrategy:
    """(sender, value, calldata) of one call: mostly an entry point with plausible arguments
    (those get past the first checks and move money), else anything."""

    def typed(plausible: bool) -> st.SearchStrategy:
        def args_of(fn: dict) -> st.SearchStrategy:
            types = [_abi_type(a) for a in fn["inputs"]]
            selector = function_abi_to_4byte_selector(fn)
            args = st.tuples(*(_values(a, pool, plausible) for a in fn["inputs"]))
            return args.map(lambda a: selector + encode(types, list(a)))

        return st.sampled_from(_entry_points(market)).flatmap(args_of)

    create = _create(market)
    # a valid config, so tasks (and their escrow) do get created
    valid_task = function_abi_to_4byte_selector(create) + encode(
        [_abi_type(a) for a in create["inputs"]], [as_struct(config()), b""]
    )
    known = [function_abi_to_4byte_selector(f) for f in _entry_points(market)]
    raw = st.tuples(
        st.sampled_from(known) | st.binary(min_size=4, max_size=4), st.binary(max_size=200)
    ).map(lambda p: p[0] + p[1])
    modes = {
        "plausible": typed(True),
        "typed": typed(False),
        "valid task": st.just(valid_task),
        "raw": raw,
        "short": st.binary(max_size=8),
        "over-long": _over_long(market, pool),
    }
    weighted = ["plausible"] * 6 + ["typed", "valid task", "raw", "short", "over-long"]
    calldata = st.integers(0, len(weighted) - 1).flatmap(lambda i: modes[weighted[i]])
    bond, escrow = config()["bond"], escrow_of(config())
    # ETH mostly where it belongs (none to a non-payable entry point), sometimes any amount
    amounts = [st.just(0)] * 6 + [st.just(bond), st.just(escrow), st.integers(0, 10**21)]
    value = st.integers(0, len(amounts) - 1).flatmap(lambda i: amounts[i])
    return st.tuples(st.sampled_from(pool), value, calldata)


def _reason(result) -> str:
    """The revert reason string of a failed call; empty if it has none."""
    payload = result.error.args[0] if result.error.args else b""
    if isinstance(payload, bytes) and payload[:4] == bytes.fromhex("08c379a0"):
        return decode(["string"], payload[4:])[0]
    return ""


def _decoded_type(typ) -> str:
    """The ABI type to decode an argument of Vyper type `typ` as (a String as bytes: Vyper
    does not check UTF-8, and bounds a String's bytes, not its characters)."""
    if isinstance(typ, StringT):
        return "bytes"
    if isinstance(typ, DArrayT):
        return f"{_decoded_type(typ.value_type)}[]"
    if isinstance(typ, SArrayT):
        return f"{_decoded_type(typ.value_type)}[{typ.length}]"
    if isinstance(typ, StructT):
        return f"({','.join(_decoded_type(t) for t in typ.members.values())})"
    if isinstance(typ, TupleT):
        return f"({','.join(_decoded_type(t) for t in typ.member_types)})"
    return typ.abi_type.selector_name()


def _fits(typ, value) -> bool:
    """Whether a decoded value is within the bounds of its Vyper type."""
    if isinstance(typ, BytesT | StringT):
        return len(value) <= typ.length
    if isinstance(typ, DArrayT | SArrayT):
        bound = typ.count if isinstance(typ, DArrayT) else typ.length
        return len(value) <= bound and all(_fits(typ.value_type, v) for v in value)
    if isinstance(typ, StructT):
        return all(_fits(t, v) for t, v in zip(typ.members.values(), value, strict=True))
    if isinstance(typ, TupleT):
        return all(_fits(t, v) for t, v in zip(typ.member_types, value, strict=True))
    return True


def _refused_before_body(functions: dict, value: int, calldata: bytes) -> str | None:
    """Which of Vyper's checks before the function body refuses this call, with no reason;
    None if the call reaches the body (`functions`: every function's Vyper type by selector)."""
    fn_t = functions.get(calldata[:4]) if len(calldata) >= 4 else None
    if fn_t is None:
        return UNKNOWN_SELECTOR
    if value and not fn_t.is_payable:
        return VALUE_TO_NON_PAYABLE
    args = fn_t.arguments
    try:
        values = decode([_decoded_type(a.typ) for a in args], calldata[4:])
    except Exception:  # eth_abi's many decoding errors: whatever it cannot decode
        return MALFORMED
    if not all(_fits(a.typ, v) for a, v in zip(args, values, strict=True)):
        return OVER_LONG
    return None


def _create(market) -> dict:
    return next(f for f in market.abi if f["name"] == "create_task")


def _obligations(market, pool: list[str]) -> tuple[int, tuple]:
    """What the market owes in ETH, and every view it is computed from (to compare states)."""
    views = []
    total = 0
    accounts = set(pool)
    for task in range(1, market.task_count() + 1):
        accounts.add(market.task_owner(task))
        eth_task = market.task_config(task).token == ETH
        escrow = market.escrow_remaining(task)
        bonds = [market.bond_of(task, do) for do in market.members(task)]
        accounts.update(market.members(task))
        views.append((task, market.task_phase(task), escrow, tuple(bonds)))
        if eth_task:
            total += escrow + sum(bonds)
    credits = {a: market.credits(ETH, a) for a in sorted(accounts)}
    total += sum(credits.values())
    views.append(tuple(credits.items()))
    return total, tuple(views)


@pytest.fixture(scope="module")
def tasks(market, model_owner, data_owners) -> list[TaskRun]:
    """Task 1 with round 0 played (rewards credited, escrow and bonds held), task 2 in SHARE."""
    played = TaskRun(market, model_owner, config())
    played.start(data_owners[:5])
    played.play_round(committers=data_owners[:5], submitters=data_owners[:5])
    sharing = TaskRun(market, model_owner, config())
    sharing.start(data_owners[2:8])
    assert (played.task, sharing.task) == (1, 2)
    return [played, sharing]


@FUZZ
@given(data=st.data())
def test_random_calls_revert_or_succeed_and_funds_stay_covered(
    market, tasks, model_owner, data_owners, stranger, data: st.DataObject
) -> None:
    pool = [model_owner, stranger, *data_owners[:8]]
    calls = _call(market, pool)
    names = {function_abi_to_4byte_selector(f): f["name"] for f in _entry_points(market)}
    functions = {
        function_abi_to_4byte_selector(f): getattr(market, f["name"]).func_t
        for f in market.abi
        if f["type"] == "function"
    }
    # titanoboa's plugin runs each example in boa.env.anchor(): each starts from `tasks`
    before = _obligations(market, pool)
    calls_seen = recorder("market_calls")  # per entry point: successes, reverts by reason
    for _ in range(data.draw(st.integers(1, 12), label="calls")):
        jump = data.draw(st.sampled_from([0, 101, 10**6]), label="time travel")
        if jump:
            boa.env.time_travel(seconds=jump)  # moves deadlines, none of the views summed
        sender, value, calldata = data.draw(calls, label="call")
        result = boa.env.execute_code(
            to_address=market.address, sender=sender, value=value, data=calldata
        )
        total, views = _obligations(market, pool)
        name = names.get(calldata[:4], "unknown selector")
        early = _refused_before_body(functions, value, calldata)
        reason = _reason(result) if result.is_error else ""
        event(f"{name}: {reason or early or 'succeeded'}")
        if result.is_error:
            calls_seen.revert(name, reason or early)
        else:
            calls_seen.success(name)
        calls_seen.steps += 1
        if early in (UNKNOWN_SELECTOR, VALUE_TO_NON_PAYABLE, OVER_LONG):
            # Vyper always refuses these (a calldata eth_abi cannot decode may still pass
            # Vyper's decoder, e.g. with non-zero padding bytes, so MALFORMED is not here)
            assert result.is_error and not reason, (name, early, reason)
        if result.is_error:
            assert type(result.error).__name__ == "Revert", result.error
            # every other refusal names its rule
            assert reason or early, f"{name} reverted without a reason (value {value})"
            assert (total, views) == before  # a refused call leaves no trace
        assert boa.env.get_balance(market.address) == total
        before = (total, views)
