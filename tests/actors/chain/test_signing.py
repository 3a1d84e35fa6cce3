"""OpenSSL signatures of typed transactions recover to the signer, with a low `s` (EIP-2)."""

from eth_account import Account
from eth_keys import keys
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.chain.signing import _N, Signer

secret_keys = st.integers(1, _N - 1).map(lambda k: k.to_bytes(32, "big"))


@settings(max_examples=50)
@given(key=secret_keys, msg_hash=st.binary(min_size=32, max_size=32))
def test_signature_recovers_the_signer_with_low_s(key: bytes, msg_hash: bytes) -> None:
    v, r, s = Signer(key).sign_hash(msg_hash)
    assert v in (0, 1) and 0 < s <= _N // 2
    recovered = keys.Signature(vrs=(v, r, s)).recover_public_key_from_msg_hash(msg_hash)
    assert recovered == keys.PrivateKey(key).public_key


@settings(max_examples=20)
@given(
    key=secret_keys,
    nonce=st.integers(0, 2**32),
    data=st.binary(max_size=200),
    value=st.integers(0, 10**24),
)
def test_signed_transaction_names_its_sender(key: bytes, nonce: int, data: bytes, value: int):
    tx = {
        "to": "0x" + "11" * 20,
        "data": data,
        "value": value,
        "gas": 100_000,
        "nonce": nonce,
        "chainId": 31337,
        "maxFeePerGas": 10**9,
        "maxPriorityFeePerGas": 1,
    }
    raw = Signer(key).sign_transaction(tx)
    assert Account.recover_transaction(raw) == Account.from_key(key).address
