"""Properties of protocol.shamir: any t of n reconstruct, t-1 do not, every dealt share passes
its Pedersen check with its blind and any other share or blind fails it, the commitments hide
the secret, errors are named."""

import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import bn254
from protocol.errors import ConfigError, LocalProtocolError, ShareError
from protocol.shamir import (
    FIELD_ORDER,
    POINT_BYTES,
    combine_shares,
    commitment_digest,
    decode_points,
    encode_point,
    random_scalar,
    random_secret,
    split_secret,
    verify_share,
)

scalars = st.integers(1, FIELD_ORDER - 1).map(lambda v: v.to_bytes(32, "big"))


@st.composite
def dealings(draw: st.DrawFn):
    n = draw(st.integers(2, 8))
    t = draw(st.integers(2, n))
    secret = draw(scalars)
    randbytes = random.Random(draw(st.integers(0, 2**32))).randbytes
    return secret, t, n, split_secret(secret, t, n, randbytes)


@settings(max_examples=25, deadline=None)
@given(dealing=dealings(), data=st.data())
def test_any_t_shares_reconstruct(dealing, data: st.DataObject) -> None:
    secret, t, n, dealt = dealing
    assert len(dealt.shares) == n and all(len(s) == 32 for s in dealt.shares)
    assert len(dealt.blinds) == n and all(len(b) == 32 for b in dealt.blinds)
    assert len(dealt.commitments) == t * POINT_BYTES
    chosen = data.draw(st.lists(st.integers(0, n - 1), min_size=t, max_size=n, unique=True))
    assert combine_shares([(p + 1, dealt.shares[p]) for p in chosen]) == secret


@settings(max_examples=25, deadline=None)
@given(dealing=dealings(), data=st.data())
def test_t_minus_one_shares_do_not_reconstruct(dealing, data: st.DataObject) -> None:
    secret, t, n, dealt = dealing
    chosen = data.draw(st.lists(st.integers(0, n - 1), min_size=t - 1, max_size=t - 1, unique=True))
    # equal only with probability 1/r (fresh random coefficients)
    assert combine_shares([(p + 1, dealt.shares[p]) for p in chosen]) != secret


@settings(max_examples=10, deadline=None)
@given(dealing=dealings(), data=st.data())
def test_dealt_shares_pass_pedersen_and_others_fail(dealing, data: st.DataObject) -> None:
    _secret, t, n, dealt = dealing
    p = data.draw(st.integers(0, n - 1))
    share, blind = dealt.shares[p], dealt.blinds[p]
    assert verify_share(p + 1, share, blind, dealt.commitments, t)
    assert verify_share(p + 1, share, blind, dealt.commitments)  # t from the length
    other = data.draw(st.integers(0, FIELD_ORDER - 1).map(lambda v: v.to_bytes(32, "big")))
    # a wrong share with the right blind, the right share with a wrong blind
    assert verify_share(p + 1, other, blind, dealt.commitments, t) == (other == share)
    assert verify_share(p + 1, share, other, dealt.commitments, t) == (other == blind)
    # share and blind swapped: both are in Z_r, neither is the other's
    assert not verify_share(p + 1, blind, share, dealt.commitments, t)
    # a share is bound to its x-coordinate: holder p's share is not holder q's
    q = (p + 1) % n
    assert not verify_share(q + 1, share, blind, dealt.commitments, t)
    # outside Z_r, or not 32 bytes: not a share
    top = FIELD_ORDER.to_bytes(32, "big")
    assert not verify_share(p + 1, top, blind, dealt.commitments, t)
    assert not verify_share(p + 1, share, top, dealt.commitments, t)
    assert not verify_share(p + 1, share, blind[:31], dealt.commitments, t)
    assert not verify_share(0, share, blind, dealt.commitments, t)


def test_a_share_shifted_along_with_its_blind_still_fails() -> None:
    # Pedersen binds the pair: moving the share needs log_G H to move the blind to match.
    randbytes = random.Random(3).randbytes
    dealt = split_secret(random_secret(randbytes), 3, 5, randbytes)
    shifted = ((int.from_bytes(dealt.shares[1], "big") + 1) % FIELD_ORDER).to_bytes(32, "big")
    for blind in (dealt.blinds[1], dealt.blinds[2], bytes(32)):
        assert not verify_share(2, shifted, blind, dealt.commitments, 3)


def test_commitments_hide_the_secret_and_tampering_is_caught() -> None:
    randbytes = random.Random(7).randbytes
    secret = random_secret(randbytes)
    dealt = split_secret(secret, 3, 5, randbytes)
    # C_0 is no longer secret · G (Feldman's): it is secret · G + g(0) · H, so nothing public is
    # one discrete log away from the secret
    exposed = encode_point(bn254.g_multiply(int.from_bytes(secret, "big")))
    assert dealt.commitments[:64] != exposed
    # the same secret dealt twice: different points, C_0 included (perfectly hiding)
    again = split_secret(secret, 3, 5, randbytes)
    assert again.commitments[:64] != dealt.commitments[:64]
    assert combine_shares([(x, again.shares[x - 1]) for x in (1, 2, 3)]) == secret
    # every share fails under the commitments of another dealing, even of the same secret
    other = split_secret(random_secret(randbytes), 3, 5, randbytes)
    for commitments in (other.commitments, again.commitments):
        assert not any(
            verify_share(p + 1, dealt.shares[p], dealt.blinds[p], commitments, 3) for p in range(5)
        )
    # a flipped coordinate byte: off the curve or another point; either way no share passes
    bad = bytearray(dealt.commitments)
    bad[100] ^= 1
    assert not any(
        verify_share(p + 1, dealt.shares[p], dealt.blinds[p], bytes(bad), 3) for p in range(5)
    )
    # the wrong number of points for the threshold
    assert not verify_share(1, dealt.shares[0], dealt.blinds[0], dealt.commitments[:128], 3)


def test_decode_points_refuses_what_is_not_a_curve_point() -> None:
    one_one = (1).to_bytes(32, "big") * 2
    for data in (b"", bytes(63), one_one, (2**256 - 1).to_bytes(32, "big") * 2):
        with pytest.raises(ShareError):
            decode_points(data)
    assert len(decode_points(bytes(64))) == 1  # (0, 0): the point at infinity, as the EVM has it


def test_digest_is_the_contracts_keccak_of_the_points() -> None:
    from eth_utils import keccak

    points = os.urandom(256)
    assert commitment_digest(points) == keccak(points)
    with pytest.raises(ShareError):
        commitment_digest(points[:-1])


def test_random_scalars_are_in_the_field_and_use_the_injected_source() -> None:
    a = random_scalar(random.Random(1).randbytes)
    assert a == random_scalar(random.Random(1).randbytes)
    assert 0 < a < FIELD_ORDER
    # a source that only ever yields values >= r is retried, never reduced with bias
    source = iter([b"\xff" * 32, b"\xff" * 32, (5).to_bytes(32, "big")])
    assert random_scalar(lambda n: next(source)) == 5
    with pytest.raises(LocalProtocolError):
        random_scalar(lambda n: bytes(n - 1))


def test_split_refusals() -> None:
    randbytes = random.Random(0).randbytes
    for t, n in [(1, 3), (4, 3), (0, 0), (2, 65), (33, 40)]:
        with pytest.raises(ConfigError):
            split_secret(bytes(31) + b"\x01", t, n, randbytes)
    with pytest.raises(LocalProtocolError):
        split_secret(bytes(16), 2, 3, randbytes)
    with pytest.raises(LocalProtocolError):  # not an element of Z_r
        split_secret(b"\xff" * 32, 2, 3, randbytes)


def test_combine_refusals_are_share_errors() -> None:
    shares = split_secret(random_secret(os.urandom), 2, 3, os.urandom).shares
    bad = [
        [],
        [(1, shares[0]), (1, shares[0])],  # duplicate x
        [(0, shares[0]), (2, shares[1])],  # x = 0 would be the secret itself
        [(65, shares[0]), (2, shares[1])],
        [(True, shares[0]), (2, shares[1])],
        [(1, shares[0][:31]), (2, shares[1])],
        [(1, shares[0] + b"\x00"), (2, shares[1])],
        [(1, b"\xff" * 32), (2, shares[1])],  # not in Z_r
    ]
    for case in bad:
        with pytest.raises(ShareError):
            combine_shares(case)
