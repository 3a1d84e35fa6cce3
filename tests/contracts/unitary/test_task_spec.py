"""A task's spec from chain data alone: `Market.task_spec` reads the `TaskSpec` event of the
creating transaction and checks its bytes against the config's `spec_hash`."""

from collections.abc import Iterator
from pathlib import Path

import boa
import pytest
from eth_utils import keccak

from actors.chain import BoaChain, TransactionReverted
from actors.chain.market import Market, TaskConfig
from protocol.commitments import published_model_digest
from protocol.constants import MAX_SPEC_BYTES
from protocol.errors import ConfigError, RemoteProtocolError
from protocol.spec import NO_SPEC_HASH, canonical_bytes, decode_canonical, parse_spec

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
MODEL = b"test_task_spec: the public model"


@pytest.fixture
def chain() -> Iterator[BoaChain]:
    with boa.env.anchor():
        yield BoaChain()


def task_config(spec_hash: bytes = NO_SPEC_HASH) -> TaskConfig:
    return TaskConfig(
        model_hash=published_model_digest(MODEL),
        spec_hash=spec_hash,
        d=100,
        lane_bits=32,
        scale_bits=16,
        clip_norm_micro=1_000_000,
        sample_cap=500,
        rounds=1,
        max_dos=2,
        min_dos=2,
        group_size=2,
        threshold=2,
        reward_per_do=10**15,
    )


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.toml")), ids=lambda p: p.stem)
def test_example_specs_round_trip_through_the_chain(chain: BoaChain, path: Path) -> None:
    spec = parse_spec(path.read_bytes())
    data = canonical_bytes(spec)
    owner = chain.new_account(10**21)
    market = Market.deploy(chain, owner)
    task, receipt = market.create_task(task_config(keccak(data)), owner, data)
    assert [e.name for e in receipt.events].count("TaskSpec") == 1
    assert market.config(task).spec_hash == keccak(data)
    assert market.config(task).sample_cap == 500
    assert market.task_spec(task) == data
    assert decode_canonical(market.task_spec(task)) == spec


def test_a_task_without_a_spec_publishes_empty_bytes(chain: BoaChain) -> None:
    owner = chain.new_account(10**21)
    market = Market.deploy(chain, owner)
    task, _ = market.create_task(task_config(), owner)
    assert market.task_spec(task) == b""


def test_spec_bytes_that_do_not_match_the_hash_are_refused(chain: BoaChain) -> None:
    owner = chain.new_account(10**21)
    market = Market.deploy(chain, owner)
    data = canonical_bytes(parse_spec((EXAMPLES / "mnist-cnn.toml").read_bytes()))
    task, _ = market.create_task(task_config(keccak(data)), owner, data)
    # what a reader holds as the task's hash (from a config it read elsewhere) decides
    with pytest.raises(RemoteProtocolError, match="spec_hash"):
        market.task_spec(task, expected=NO_SPEC_HASH)
    with pytest.raises(RemoteProtocolError, match="0 TaskSpec events"):
        market.task_spec(task + 1)
    # and the contract publishes no spec its config does not commit to
    with pytest.raises(TransactionReverted) as info:
        market.create_task(task_config(keccak(data)), owner, data + b" ")
    assert info.value.reason == "rounds: spec hash mismatch"


def test_an_oversize_spec_is_refused_before_sending(chain: BoaChain) -> None:
    owner = chain.new_account(10**21)
    market = Market.deploy(chain, owner)
    data = b"x" * (MAX_SPEC_BYTES + 1)
    sent = len(market.receipts)
    with pytest.raises(ConfigError, match=str(MAX_SPEC_BYTES)):
        market.create_task(task_config(keccak(data)), owner, data)
    assert len(market.receipts) == sent
