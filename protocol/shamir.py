"""Shamir sharing of the round's two 32-byte secrets (``docs/interfaces.md`` §4).

This module owns the share format: a thin wrapper over pycryptodome's maintained
``Crypto.Protocol.SecretSharing.Shamir`` (GF(2^128)), applied to each 16-byte half of a 32-byte
secret with the same x-coordinates; a share value is ``half0_share ‖ half1_share`` (32 bytes) and
the holder at member position ``p`` gets x-coordinate ``p + 1``.

Randomness: pycryptodome draws the polynomial coefficients from its own OS CSPRNG
(``Crypto.Random.get_random_bytes``) and offers no way to inject a generator. That is acceptable
here: the coefficients must be unpredictable to everybody, tests never need to reproduce them
(they check reconstruction, not share bytes), and reimplementing GF(2^128) arithmetic to inject
randomness would trade a reviewed implementation for our own.
"""

from __future__ import annotations

from collections.abc import Sequence

from Crypto.Protocol.SecretSharing import Shamir

from protocol.constants import MAX_GROUP, SECRET_BYTES
from protocol.errors import ConfigError, LocalProtocolError, ShareError

SHARE_BYTES = SECRET_BYTES
_HALF = SECRET_BYTES // 2


def split_secret(secret: bytes, threshold: int, holders: int) -> list[bytes]:
    """Split a 32-byte secret into ``holders`` shares, any ``threshold`` of which reconstruct it.

    Index ``p`` of the result is the share for x-coordinate ``p + 1`` (member position ``p``).
    A threshold below 2 would hand every holder the secret itself, so it is refused.
    """
    if not isinstance(secret, bytes) or len(secret) != SECRET_BYTES:
        raise LocalProtocolError(f"a shared secret is {SECRET_BYTES} bytes")
    if not 2 <= threshold <= holders <= MAX_GROUP:
        raise ConfigError(
            f"need 2 <= threshold <= holders <= {MAX_GROUP}, got t={threshold}, n={holders}"
        )
    low = Shamir.split(threshold, holders, secret[:_HALF])
    high = Shamir.split(threshold, holders, secret[_HALF:])
    # pycryptodome numbers shares 1..n in order; keep both halves on the same x-coordinate.
    return [lo_share + hi_share for (_, lo_share), (_, hi_share) in zip(low, high, strict=True)]


def combine_shares(shares: Sequence[tuple[int, bytes]]) -> bytes:
    """Reconstruct a 32-byte secret from ``(x, share)`` pairs (``x = position + 1``).

    Give at least the threshold's number of shares: fewer interpolate to an unrelated value, which
    nothing here can detect (commitments on-chain are what vouch for each share). Raises
    ``ShareError`` for no shares, a duplicate x, an x outside ``[1, MAX_GROUP]`` or a share
    that is not 32 bytes.
    """
    if not shares:
        raise ShareError("no shares to combine")
    seen: set[int] = set()
    for x, share in shares:
        if not isinstance(x, int) or isinstance(x, bool) or not 1 <= x <= MAX_GROUP:
            raise ShareError(f"share x-coordinate must be in [1, {MAX_GROUP}], got {x!r}")
        if x in seen:
            raise ShareError(f"duplicate share for x = {x}")
        seen.add(x)
        if not isinstance(share, bytes) or len(share) != SHARE_BYTES:
            raise ShareError(f"share for x = {x} is not {SHARE_BYTES} bytes")
    low = Shamir.combine([(x, share[:_HALF]) for x, share in shares])
    high = Shamir.combine([(x, share[_HALF:]) for x, share in shares])
    return low + high
