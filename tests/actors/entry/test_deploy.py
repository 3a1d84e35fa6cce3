"""`omnilytics deploy` on anvil: the court and the market deployed and recorded (chain id,
addresses, transaction hashes, bytecode hashes, compiler), the standard-JSON input that
reproduces the deployed code written beside the record, a second deploy warned about and
appended; the chain id checked at connect; a live network refused without confirmation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_utils import keccak
from vyper.cli.vyper_json import compile_json

from actors.chain.anvil import AnvilNode
from actors.chain.rpc_backend import RpcChain
from tests.actors.entry.conftest import (
    DEV_ADDRESS,
    assert_one_line_error,
    import_dev_account,
    run,
)

pytestmark = pytest.mark.anvil


@pytest.fixture(scope="module")
def node() -> Iterator[AnvilNode]:
    with AnvilNode() as node:
        yield node


@pytest.fixture
def project(home: Path, password_file: Path, tmp_path: Path, node: AnvilNode) -> Path:
    """A project whose omnilytics.toml names the node three ways, and the dev account."""
    import_dev_account(password_file, tmp_path)
    Path("omnilytics.toml").write_text(
        f'[networks.local]\nurl = "{node.url}"\nchain_id = 31337\ndefault_account = "dev"\n\n'
        f'[networks.wrong]\nurl = "{node.url}"\nchain_id = 5\ndefault_account = "dev"\n\n'
        f'[networks.live]\nurl = "{node.url}"\nchain_id = 31337\ndefault_account = "dev"\n'
        "live = true\n"
    )
    return Path.cwd()


def test_deploy_records_it_and_writes_the_standard_json(
    project: Path, password_file: Path, node: AnvilNode
) -> None:
    result = run("deploy", "--network", "local", "--password-file", str(password_file))
    assert result.exit_code == 0, result.output
    market = result.stdout.strip()
    records = json.loads((project / "deployments" / "local.json").read_text())["deployments"]
    (record,) = records
    assert record["chain_id"] == 31337 and record["deployer"] == DEV_ADDRESS
    assert record["market"] == market == record["contracts"]["DataMarket"]["address"]
    assert record["compiler"]["version"].startswith("0.4.3")
    assert record["compiler"]["settings"]["optimize"] == "codesize"

    chain = RpcChain(node.url)
    for name, entry in record["contracts"].items():
        receipt = chain.request("eth_getTransactionReceipt", [entry["tx_hash"]])
        assert receipt["contractAddress"].lower() == entry["address"].lower()
        sent_tx = chain.request("eth_getTransactionByHash", [entry["tx_hash"]])
        sent = bytes.fromhex(sent_tx["input"][2:])
        arguments = bytes.fromhex(entry["constructor_args"][2:])
        assert sent.endswith(arguments)
        initcode = sent[: len(sent) - len(arguments)]
        assert "0x" + keccak(initcode).hex() == entry["initcode_keccak"]
        standard = json.loads((project / "deployments" / entry["standard_json"]).read_text())
        assert standard["language"] == "Vyper"
        if name == "DataMarket":  # the verifier's view: compile the file, get the sent bytes
            standard["settings"]["outputSelection"] = {entry["source"]: ["evm.bytecode"]}
            (compiled,) = compile_json(standard)["contracts"][entry["source"]].values()
            assert compiled["evm"]["bytecode"]["object"] == "0x" + initcode.hex()

    again = run("deploy", "--network", "local", "--password-file", str(password_file))
    assert again.exit_code == 0, again.output
    assert "already has 1 deployment(s)" in again.stderr
    assert f"the last the market {market}" in again.stderr
    records = json.loads((project / "deployments" / "local.json").read_text())["deployments"]
    assert records[0] == record and len(records) == 2
    listed = run("tasks", "--network", "local", "--json")
    assert listed.exit_code == 0 and json.loads(listed.stdout) == []


def test_a_chain_id_mismatch_names_both_ids(project: Path, password_file: Path) -> None:
    result = run("deploy", "--network", "wrong", "--password-file", str(password_file))
    assert_one_line_error(result, "network wrong", "has chain id 31337, the config says 5")
    assert not (project / "deployments").exists()


@pytest.mark.parametrize("answer", ["n\n", None])
def test_a_live_network_deploys_only_when_confirmed(
    project: Path, password_file: Path, node: AnvilNode, answer: str | None
) -> None:
    nonce = RpcChain(node.url).w3.eth.get_transaction_count(DEV_ADDRESS)
    result = run("deploy", "--network", "live", "--password-file", str(password_file), input=answer)
    assert_one_line_error(result, "not confirmed on live network live", "--yes")
    assert RpcChain(node.url).w3.eth.get_transaction_count(DEV_ADDRESS) == nonce
    assert not (project / "deployments").exists()
