"""Bad command-line input gets a named message and a non-zero exit before anything runs."""

import pytest
from typer.testing import CliRunner

from actors.entry.cli import app

_DO_ARGS = ["--rpc-url", "http://127.0.0.1:9", "--market", "0x" + "00" * 20, "--task", "0"]
_DO_ARGS += ["--index", "0", "--scenario", "scenario.json", "--state-dir", "state"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "--rule", "medain"], "unknown combination rule"),
        (["demo", "--threshold", "7"], "threshold <= group-size"),
        (["demo", "--drop", "3-0-submit"], "DO:ROUND:STEP"),
        (["demo", "--drop", "3:0:train"], "STEP is share, submit or unmask"),
        (["swarm", "--dos", "2", "--group-size", "3"], "threshold <= group-size"),
        (["demo", "--data-path", "blob"], "cannot carry blob transactions"),
        (["demo", "--data-path", "blobs", "--chain", "anvil"], "--data-path is one of"),
        (["swarm", "--data-path", "calldata"], "--data-path is one of"),
        (["demo", "--alpha", "0"], "--alpha (Dirichlet concentration) must be positive"),
        (["swarm", "--alpha", "-1"], "--alpha (Dirichlet concentration) must be positive"),
        (["do", *_DO_ARGS, "--chunk-words", "0"], "--chunk-words"),
        (["do", *_DO_ARGS, "--chunk-words", "6145"], "--chunk-words"),
    ],
)
def test_bad_input_is_refused_with_a_message(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_status_of_an_unreachable_node_fails_cleanly() -> None:
    result = CliRunner().invoke(
        app, ["status", "--rpc-url", "http://127.0.0.1:9", "--market", "0x" + "00" * 20]
    )
    assert result.exit_code == 1
    assert "no JSON-RPC node" in result.output
