"""What a party's steps look like on the terminal: every step a party reports gives a line or
nothing, never an error (a countdown or a progress line must not stop a party)."""

from __future__ import annotations

import pytest

from actors.entry.progress import describe


@pytest.mark.parametrize(
    ("what", "fields", "line"),
    [
        ("task_created", {"task": 3, "escrow": 6 * 10**15, "d": 15}, "task 3 created, 0.006 ETH"),
        ("resumed", {"task": 3, "applied": 1}, "resumed task 3 after 1 rounds"),
        ("resumed", {"round": 0, "state": "shared"}, "round 1 resumed from its saved state"),
        ("advanced", {"phase": 3, "round": 1}, "round 2: SHARE"),
        ("withdrew", {"amount": 21 * 10**14, "token": "ETH"}, "withdrew 0.0021 ETH"),
        ("withdrew_court", {"amount": 10**14}, "withdrew from the court 0.0001 ETH"),
        ("model_chunk", {"round": 0, "index": 0, "chunks": 1}, None),
    ],
)
def test_each_step_is_a_sentence_or_nothing(
    what: str, fields: dict[str, object], line: str | None
) -> None:
    described = describe(what, fields)
    assert described == line if line is None else line in described
