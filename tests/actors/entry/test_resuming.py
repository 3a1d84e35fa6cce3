"""A party whose node goes away is run again from its state directory after a back-off, and
only for an outage: any other error ends it, and an outage past the limit is one error."""

from __future__ import annotations

import pytest

from actors.chain.base import ChainError, NodeUnavailable
from actors.entry import spec_tasks
from actors.entry.spec_tasks import resuming


class _Heard:
    def __init__(self) -> None:
        self.steps: list[str] = []

    def observe(self, role: str, who: str, what: str, **fields: object) -> None:
        self.steps.append(what)


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(spec_tasks.time, "sleep", slept.append)
    return slept


def test_an_outage_is_waited_out_with_doubling_pauses(pauses: list[float]) -> None:
    # as trio raises it out of a nursery, and bare
    failures: list[BaseException] = [
        BaseExceptionGroup("x", [NodeUnavailable("down")]),
        NodeUnavailable("down"),
        BaseExceptionGroup("x", [NodeUnavailable("down"), NodeUnavailable("down")]),
    ]
    runs: list[int] = []

    def party() -> None:
        runs.append(1)
        if failures:
            raise failures.pop(0)

    heard = _Heard()
    resuming(party, heard)  # type: ignore[arg-type]
    assert len(runs) == 4 and pauses == [1.0, 2.0, 4.0]
    assert heard.steps == ["node_unavailable"] * 3


def test_other_errors_end_the_party(pauses: list[float]) -> None:
    def party() -> None:
        raise BaseExceptionGroup("x", [NodeUnavailable("down"), ChainError("reverted")])

    with pytest.raises(BaseExceptionGroup):
        resuming(party, _Heard())  # type: ignore[arg-type]
    assert pauses == []


def test_an_outage_past_the_limit_is_one_error(
    pauses: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spec_tasks, "_OUTAGE_LIMIT", 10.0)

    def party() -> None:
        raise BaseExceptionGroup("x", [NodeUnavailable("eth_call: node unreachable")])

    gave_up = r"eth_call: node unreachable \(away 15 s, giving up\)"
    with pytest.raises(NodeUnavailable, match=gave_up):
        resuming(party, _Heard())  # type: ignore[arg-type]
    assert pauses == [1.0, 2.0, 4.0, 8.0]
