"""`omnilytics.toml` networks: parsed strictly, found in the project or the user's directory,
and checked against the node at connect; every bad value is one line and exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.entry import networks
from actors.entry.networks import NetworkError, get_network, load_networks, parse_config
from tests.actors.entry.conftest import assert_one_line_error, run

GOOD = """
[networks.sepolia]
url = "https://rpc.example.org/v1?key=abc"
chain_id = 11155111
market = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
beacon_url = "http://127.0.0.1:5052"
default_account = "deployer"
live = true

[networks.local]
url = "http://127.0.0.1:8545"
chain_id = 31337
"""


def test_a_config_is_read_field_by_field(home: Path) -> None:
    path = Path("omnilytics.toml")
    path.write_text(GOOD)
    sepolia = get_network("sepolia")
    assert sepolia.chain_id == 11155111 and sepolia.live
    assert sepolia.market == "0x5FbDB2315678afecb367f032d93F642f64180aa3"  # checksummed
    assert sepolia.beacon_url == "http://127.0.0.1:5052"
    assert sepolia.default_account == "deployer"
    local = get_network("local")
    assert not local.live and local.market is None and local.beacon_url is None
    assert local.deployments_file == path.resolve().parent / "deployments" / "local.json"


def test_the_project_config_shadows_the_users(home: Path) -> None:
    home.mkdir()
    (home / "omnilytics.toml").write_text(GOOD)
    Path("omnilytics.toml").write_text(
        '[networks.local]\nurl = "http://10.0.0.2:8545"\nchain_id = 1337\n'
    )
    found = load_networks()
    assert found["local"].url == "http://10.0.0.2:8545"
    assert found["sepolia"].config == home / "omnilytics.toml"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('url = "http://x:1"\nchain_id = 1\nrpc = "y"', "unknown field 'rpc'"),
        ('url = "http://x:1"\nchain_id = "1"', "chain_id must be int, not '1'"),
        ('url = "http://x:1"\nchain_id = 1\nlive = "yes"', "live must be bool"),
        ("chain_id = 1", "url is missing"),
        ('url = "ws://x:1"\nchain_id = 1', "url 'ws://x:1' is not an http(s) URL"),
        ('url = "http://x:1"\nchain_id = 0', "chain_id 0 is out of range"),
        ('url = "http://x:1"\nchain_id = 1\nmarket = "0x12"', "market '0x12' is not an address"),
    ],
)
def test_a_bad_field_is_named(home: Path, table: str, message: str) -> None:
    path = Path("omnilytics.toml")
    path.write_text(f"[networks.n]\n{table}\n")
    with pytest.raises(NetworkError) as info:
        parse_config(path)
    assert "[networks.n]" in str(info.value) and message in str(info.value)


def test_a_file_that_is_not_toml_is_named(home: Path) -> None:
    Path("omnilytics.toml").write_text("[networks.n\n")
    assert_one_line_error(run("tasks", "--network", "n"), "omnilytics.toml: not a TOML file")


def test_an_unknown_network_names_the_known_ones(home: Path) -> None:
    Path("omnilytics.toml").write_text(GOOD)
    result = run("tasks", "--network", "mainnet")
    assert_one_line_error(result, "unknown network 'mainnet'", "known: local, sepolia")


def test_no_config_at_all_says_where_it_looked(home: Path) -> None:
    result = run("deploy", "--network", "local")
    assert_one_line_error(result, "unknown network 'local'", "no omnilytics.toml in")


def test_an_unreachable_node_is_asked_again_then_named(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(networks, "_RETRY_PAUSE", 0.01)
    config = '[networks.down]\nurl = "http://127.0.0.1:9"\nchain_id = 1\n'
    Path("omnilytics.toml").write_text(config)
    result = run("tasks", "--network", "down")
    assert_one_line_error(result, "network down: no JSON-RPC node answers at http://127.0.0.1:9")
    assert f"({networks.CONNECT_ATTEMPTS} tries)" in result.stderr
