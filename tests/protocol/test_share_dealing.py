"""The share primitives together: split, commit, deliver over a channel, check, reconstruct."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.commitments import check_share
from protocol.constants import KIND_MASK_KEY, KIND_SELF_SEED
from protocol.dealing import deal_round
from protocol.errors import CommitmentError
from protocol.masks import MaskKeyPair
from protocol.messages import ShareDelivery, address_bytes, address_int, decode, encode
from protocol.shamir import combine_shares, verify_share

TASK, ROUND = 3, 1


def deal(members: list[int], dealer: int, t: int, seed: int):
    dealing = deal_round(TASK, ROUND, dealer, members, t, random.Random(seed).randbytes)
    keys, self_seed, dealt = dealing.keys, dealing.self_seed, dealing.tree
    frames = [
        encode(
            ShareDelivery(
                task=TASK,
                round=ROUND,
                dealer=address_bytes(dealer),
                holder=address_bytes(holder),
                seed_share=dealing.seed.shares[p],
                seed_blind=dealing.seed.blinds[p],
                key_share=dealing.key.shares[p],
                key_blind=dealing.key.blinds[p],
                mask_public=keys.public,
                shares_root=dealt.root,
                seed_proof=tuple(dealt.proof(p, KIND_SELF_SEED)),
                key_proof=tuple(dealt.proof(p, KIND_MASK_KEY)),
                points=dealing.points,
            )
        )
        for p, holder in enumerate(members)
    ]
    return keys, self_seed, dealt, frames


@given(
    members=st.lists(st.integers(1, 2**160 - 1), min_size=2, max_size=10, unique=True),
    data=st.data(),
)
def test_delivered_shares_check_and_reconstruct(members: list[int], data: st.DataObject) -> None:
    dealer = data.draw(st.sampled_from(members))
    t = data.draw(st.integers(2, len(members)))
    keys, self_seed, dealt, frames = deal(members, dealer, t, data.draw(st.integers(0, 2**32)))
    received = {}
    for p, frame in enumerate(frames):
        msg = decode(frame)
        assert isinstance(msg, ShareDelivery)
        holder = address_int(msg.holder)
        assert holder == members[p] and msg.shares_root == dealt.root
        for kind in (KIND_SELF_SEED, KIND_MASK_KEY):
            share, blind = msg.share(kind), msg.blind(kind)
            check_share(
                TASK, ROUND, dealer, holder, kind, share, blind, msg.proof(kind), msg.shares_root
            )
            assert verify_share(p + 1, share, blind, msg.polynomial(kind), t)
        received[p] = msg
    chosen = data.draw(
        st.lists(st.sampled_from(range(len(members))), min_size=t, max_size=t, unique=True)
    )
    assert combine_shares([(p + 1, received[p].seed_share) for p in chosen]) == self_seed
    rebuilt = combine_shares([(p + 1, received[p].key_share) for p in chosen])
    assert MaskKeyPair.from_secret(rebuilt).public == received[chosen[0]].mask_public == keys.public


def test_check_share_refuses_swapped_and_forged_shares() -> None:
    members = [0x10, 0x20, 0x30]
    _, _, dealt, frames = deal(members, 0x20, 2, seed=1)
    a, b = decode(frames[0]), decode(frames[1])
    root = dealt.root
    with pytest.raises(CommitmentError):  # the seed share revealed as the key share
        check_share(
            TASK, ROUND, 0x20, 0x10, KIND_MASK_KEY, a.seed_share, a.seed_blind, a.key_proof, root
        )
    with pytest.raises(CommitmentError):  # another holder's share and proof
        check_share(
            TASK, ROUND, 0x20, 0x10, KIND_SELF_SEED, b.seed_share, b.seed_blind, b.seed_proof, root
        )
    with pytest.raises(CommitmentError):  # another round
        check_share(
            TASK,
            ROUND + 1,
            0x20,
            0x10,
            KIND_SELF_SEED,
            a.seed_share,
            a.seed_blind,
            a.seed_proof,
            root,
        )
    with pytest.raises(CommitmentError):  # the right share with the key's blind
        check_share(
            TASK, ROUND, 0x20, 0x10, KIND_SELF_SEED, a.seed_share, a.key_blind, a.seed_proof, root
        )
    check_share(
        TASK, ROUND, 0x20, 0x10, KIND_SELF_SEED, a.seed_share, a.seed_blind, a.seed_proof, root
    )
