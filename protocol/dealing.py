"""A data owner's dealing for one round: fresh secrets, Pedersen-shared, committed in one tree.

This module owns the one recipe every dealer follows (``docs/interfaces.md`` §4): a fresh X25519
mask key pair and self-mask seed, each split into ``n`` verifiable Shamir shares and blinds with
threshold ``t`` (``protocol.shamir``), and the Merkle tree over the shares and blinds
(``protocol.commitments``). The
round machine deals with it; benchmarks and tests that play dealers on a bare market use it too,
so they post exactly what a data owner posts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from protocol.commitments import DealtShares, deal_commitment
from protocol.masks import MaskKeyPair, new_self_seed
from protocol.shamir import Dealing, split_secret

RandBytes = Callable[[int], bytes]


@dataclass(frozen=True, slots=True)
class RoundDealing:
    """Everything a dealer draws and commits to in one round."""

    keys: MaskKeyPair
    self_seed: bytes
    seed: Dealing  # shares, blinds and Pedersen commitments of the self-mask seed
    key: Dealing  # the same for the mask secret key
    tree: DealtShares

    @property
    def points(self) -> bytes:
        """The Pedersen commitments ``commit_shares`` posts: self seed's first, then mask key's."""
        return self.seed.commitments + self.key.commitments


def deal_round(
    task: int,
    round: int,
    dealer: int,
    members: Sequence[int],
    threshold: int,
    randbytes: RandBytes,
) -> RoundDealing:
    """Draw the round's secrets from ``randbytes`` and deal them to ``members`` (dealer included;
    member position ``p`` gets the shares at ``x = p + 1``)."""
    keys = MaskKeyPair.generate(randbytes)
    self_seed = new_self_seed(randbytes)
    seed = split_secret(self_seed, threshold, len(members), randbytes)
    key = split_secret(keys.secret, threshold, len(members), randbytes)
    tree = deal_commitment(
        task, round, dealer, members, seed.shares, key.shares, seed.blinds, key.blinds
    )
    return RoundDealing(keys=keys, self_seed=self_seed, seed=seed, key=key, tree=tree)
