"""Properties of protocol.masks: X25519 + HKDF seeds, AES-CTR expansion, cancelling masks."""

import random

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import EncodingError, KeyAgreementError, LocalProtocolError
from protocol.masks import (
    MaskKeyPair,
    expand,
    mask_update,
    new_self_seed,
    pairwise_mask_sum,
    pairwise_seed,
    pairwise_sign,
)

lane_bits = st.sampled_from([16, 32])
addresses = st.integers(1, 2**160 - 1)


def seeded_randbytes(seed: int):
    """Deterministic randomness for tests only (the protocol takes os.urandom in production)."""
    rnd = random.Random(seed)
    return rnd.randbytes


@st.composite
def groups(draw: st.DrawFn, min_size: int = 2, max_size: int = 8):
    addrs = draw(st.lists(addresses, min_size=min_size, max_size=max_size, unique=True))
    randbytes = seeded_randbytes(draw(st.integers(0, 2**32)))
    return {a: MaskKeyPair.generate(randbytes) for a in addrs}, randbytes


def test_key_pair_rebuilds_from_secret() -> None:
    pair = MaskKeyPair.generate(seeded_randbytes(1))
    assert MaskKeyPair.from_secret(pair.secret) == pair
    assert len(pair.public) == 32
    with pytest.raises(LocalProtocolError):
        MaskKeyPair.from_secret(b"short")


@given(group=groups(2, 2), task=st.integers(0, 2**256 - 1), rnd=st.integers(0, 2**256 - 1))
def test_pairwise_seed_is_symmetric(group, task: int, rnd: int) -> None:
    keys, _ = group
    (a, ka), (b, kb) = keys.items()
    assert pairwise_seed(ka.secret, kb.public, task, rnd, a, b) == pairwise_seed(
        kb.secret, ka.public, task, rnd, b, a
    )


@given(group=groups(3, 3), task=st.integers(1, 2**64), rnd=st.integers(0, 2**32))
def test_pairwise_seed_binds_task_round_and_addresses(group, task: int, rnd: int) -> None:
    keys, _ = group
    (a, ka), (b, kb), (c, _) = keys.items()
    base = pairwise_seed(ka.secret, kb.public, task, rnd, a, b)
    assert len(base) == 32
    assert pairwise_seed(ka.secret, kb.public, task + 1, rnd, a, b) != base
    assert pairwise_seed(ka.secret, kb.public, task, rnd + 1, a, b) != base
    # the same keys claimed by another address pair give another seed
    assert pairwise_seed(ka.secret, kb.public, task, rnd, a, c) != base
    assert pairwise_seed(ka.secret, kb.public, task, rnd, c, b) != base
    # info holds the address pair sorted (lo, hi), so both sides of the agreement derive one seed
    assert pairwise_seed(ka.secret, kb.public, task, rnd, b, a) == base
    assert pairwise_seed(kb.secret, ka.public, task, rnd, a, b) == base


def test_pairwise_seed_matches_spec_by_hand() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.x25519 import (
        X25519PrivateKey,
        X25519PublicKey,
    )
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    ka = MaskKeyPair.from_secret(bytes(range(32)))
    kb = MaskKeyPair.from_secret(bytes(range(32, 64)))
    shared = X25519PrivateKey.from_private_bytes(ka.secret).exchange(
        X25519PublicKey.from_public_bytes(kb.public)
    )
    info = (
        b"omnilytics/pairwise/v1"
        + (7).to_bytes(32, "big")
        + (3).to_bytes(32, "big")
        + (0x11).to_bytes(20, "big")
        + (0x22).to_bytes(20, "big")
    )
    expected = HKDF(hashes.SHA256(), 32, None, info).derive(shared)
    assert pairwise_seed(ka.secret, kb.public, 7, 3, 0x22, 0x11) == expected


@pytest.mark.parametrize(
    "public",
    [
        bytes(32),  # the identity point: all-zero shared secret
        (1).to_bytes(32, "little"),  # a low-order point
        bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    ],
)
def test_low_order_peer_key_is_refused(public: bytes) -> None:
    me = MaskKeyPair.generate(seeded_randbytes(2))
    with pytest.raises(KeyAgreementError):
        pairwise_seed(me.secret, public, 1, 0, 1, 2)


def test_malformed_inputs_are_refused() -> None:
    me = MaskKeyPair.generate(seeded_randbytes(3))
    with pytest.raises(KeyAgreementError):
        pairwise_seed(me.secret, b"\x01" * 31, 1, 0, 1, 2)
    with pytest.raises(LocalProtocolError):
        pairwise_seed(me.secret, me.public, 1, 0, 5, 5)
    with pytest.raises(LocalProtocolError):
        pairwise_seed(me.secret, me.public, 1, 0, 2**160, 5)
    with pytest.raises(LocalProtocolError):
        pairwise_sign(4, 4)
    with pytest.raises(LocalProtocolError):
        expand(b"x" * 16, 10, 32)  # a 128-bit seed is not enough
    with pytest.raises(EncodingError):
        expand(bytes(32), 0, 32)
    with pytest.raises(EncodingError):
        expand(bytes(32), 10.0, 32)
    # a numpy integer (an array's size, a config field) is a valid length
    assert np.array_equal(expand(bytes(32), np.int64(10), 32), expand(bytes(32), 10, 32))


@given(seed=st.binary(min_size=32, max_size=32), k=lane_bits, d=st.integers(1, 2000))
def test_expansion_is_deterministic_and_matches_aes_ctr(seed: bytes, k: int, d: int) -> None:
    v = expand(seed, d, k)
    assert v.dtype == (np.uint16 if k == 16 else np.uint32) and v.shape == (d,)
    assert np.array_equal(v, expand(seed, d, k))
    stream = (
        Cipher(algorithms.AES(seed), modes.CTR(bytes(16))).encryptor().update(bytes(d * k // 8))
    )
    lanes = [
        int.from_bytes(stream[i : i + k // 8], "little") for i in range(0, len(stream), k // 8)
    ]
    assert v.tolist() == lanes
    # a prefix of a longer expansion: the keystream does not depend on d
    assert np.array_equal(expand(seed, d + 5, k)[:d], v)


@given(
    seeds=st.lists(st.binary(min_size=32, max_size=32), min_size=2, max_size=2, unique=True),
    k=lane_bits,
)
def test_expansion_differs_per_seed(seeds: list[bytes], k: int) -> None:
    a, b = (expand(s, 64, k) for s in seeds)
    assert not np.array_equal(a, b)


def test_new_self_seed_uses_injected_randomness() -> None:
    assert new_self_seed(seeded_randbytes(5)) == new_self_seed(seeded_randbytes(5))
    assert len(new_self_seed(seeded_randbytes(5))) == 32
    with pytest.raises(LocalProtocolError):
        new_self_seed(lambda n: bytes(n - 1))


@given(
    group=groups(),
    k=lane_bits,
    d=st.integers(1, 300),
    task=st.integers(1, 2**40),
    rnd=st.integers(0, 100),
)
def test_pairwise_masks_cancel_in_the_group_sum(group, k: int, d: int, task: int, rnd: int) -> None:
    keys, randbytes = group
    dtype = np.uint16 if k == 16 else np.uint32
    total_masked = np.zeros(d, dtype=dtype)
    total_plain = np.zeros(d, dtype=dtype)
    self_masks = np.zeros(d, dtype=dtype)
    for addr, pair in keys.items():
        x = np.frombuffer(randbytes(d * k // 8), dtype=dtype).copy()
        b = new_self_seed(randbytes)
        peers = {a: p.public for a, p in keys.items() if a != addr}
        y = mask_update(
            x,
            self_seed=b,
            my_keys=pair,
            my_addr=addr,
            peers=peers,
            task=task,
            round=rnd,
            lane_bits=k,
        )
        assert not np.array_equal(y, x)
        total_masked += y
        total_plain += x
        self_masks += expand(b, d, k)
    assert np.array_equal(total_masked - self_masks, total_plain)


@given(group=groups(3, 8), data=st.data())
def test_pairwise_mask_sum_recovers_a_dropped_do(group, data: st.DataObject) -> None:
    keys, randbytes = group
    d, k, task, rnd = 40, 32, 9, 2
    addrs = list(keys)
    dropped = data.draw(st.lists(st.sampled_from(addrs), unique=True, max_size=len(addrs) - 1))
    survivors = [a for a in addrs if a not in dropped]
    total = np.zeros(d, dtype=np.uint32)
    plain = np.zeros(d, dtype=np.uint32)
    for addr in survivors:
        x = np.frombuffer(randbytes(d * 4), dtype=np.uint32).copy()
        peers = {a: p.public for a, p in keys.items() if a != addr}  # all committed members
        b = new_self_seed(randbytes)
        total += mask_update(
            x,
            self_seed=b,
            my_keys=keys[addr],
            my_addr=addr,
            peers=peers,
            task=task,
            round=rnd,
            lane_bits=k,
        )
        total -= expand(b, d, k)
        plain += x
    for j in dropped:
        rebuilt = MaskKeyPair.from_secret(keys[j].secret)
        total += pairwise_mask_sum(
            rebuilt.secret,
            my_addr=j,
            peers={a: keys[a].public for a in survivors},
            task=task,
            round=rnd,
            d=d,
            lane_bits=k,
        )
    assert np.array_equal(total, plain)


def test_mask_update_refusals() -> None:
    pair = MaskKeyPair.generate(seeded_randbytes(9))
    common = dict(self_seed=bytes(32), my_keys=pair, my_addr=1, task=1, round=0, lane_bits=32)
    with pytest.raises(EncodingError):
        mask_update(np.zeros(4, dtype=np.uint16), peers={}, **common)
    with pytest.raises(LocalProtocolError):
        mask_update(np.zeros(4, dtype=np.uint32), peers={1: pair.public}, **common)
