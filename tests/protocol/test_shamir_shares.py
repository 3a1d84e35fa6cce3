"""Properties of protocol.shamir: any t of n reconstruct, t-1 do not, errors are named."""

import os

import pytest
from Crypto.Protocol.SecretSharing import Shamir
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import ConfigError, LocalProtocolError, ShareError
from protocol.shamir import combine_shares, split_secret

secrets_ = st.binary(min_size=32, max_size=32)


@st.composite
def dealings(draw: st.DrawFn):
    n = draw(st.integers(2, 12))
    t = draw(st.integers(2, n))
    secret = draw(secrets_)
    return secret, t, n, split_secret(secret, t, n)


@given(dealing=dealings(), data=st.data())
def test_any_t_shares_reconstruct(dealing, data: st.DataObject) -> None:
    secret, t, n, shares = dealing
    assert len(shares) == n and all(len(s) == 32 for s in shares)
    chosen = data.draw(st.lists(st.integers(0, n - 1), min_size=t, max_size=n, unique=True))
    assert combine_shares([(p + 1, shares[p]) for p in chosen]) == secret


@given(dealing=dealings(), data=st.data())
def test_t_minus_one_shares_do_not_reconstruct(dealing, data: st.DataObject) -> None:
    secret, t, n, shares = dealing
    chosen = data.draw(st.lists(st.integers(0, n - 1), min_size=t - 1, max_size=t - 1, unique=True))
    # equal only with probability 2**-256 (fresh random coefficients per half)
    assert combine_shares([(p + 1, shares[p]) for p in chosen]) != secret


def test_share_layout_is_two_pycryptodome_halves() -> None:
    secret = os.urandom(32)
    shares = split_secret(secret, 3, 5)
    for half, part in ((0, secret[:16]), (1, secret[16:])):
        halves = [(p + 1, s[16 * half : 16 * half + 16]) for p, s in enumerate(shares)]
        assert Shamir.combine(halves[1:4]) == part


def test_split_refusals() -> None:
    for t, n in [(1, 3), (4, 3), (0, 0), (2, 65)]:
        with pytest.raises(ConfigError):
            split_secret(bytes(32), t, n)
    with pytest.raises(LocalProtocolError):
        split_secret(bytes(16), 2, 3)


def test_combine_refusals_are_share_errors() -> None:
    shares = split_secret(os.urandom(32), 2, 3)
    bad = [
        [],
        [(1, shares[0]), (1, shares[0])],  # duplicate x
        [(0, shares[0]), (2, shares[1])],  # x = 0 would be the secret itself
        [(65, shares[0]), (2, shares[1])],
        [(True, shares[0]), (2, shares[1])],
        [(1, shares[0][:31]), (2, shares[1])],
        [(1, shares[0] + b"\x00"), (2, shares[1])],
    ]
    for case in bad:
        with pytest.raises(ShareError):
            combine_shares(case)
