"""The outside review's attacks, as the attacker would script them against the contracts.

Each test plays one hole of the review (issue: "Close five privacy and funds holes") with real
dealings (protocol.dealing) and real masked updates (protocol.masks), and asserts the attack
now gets nothing. On the code before the fix each of them succeeded:
1. t - 1 colluding holders plus one answered complaint rebuild a submitting dealer's update;
2. a sybil contract grinds the group draw until its victim lands in its group;
3. a task with a sub-block SHARE phase hands every bond to its model owner;
4. a dealer's off-polynomial share for itself makes a paid group's aggregate wrong;
5. a public commitment confirms a guess of a submitter's X25519 mask key (C_0 = sk · G).
"""

from pathlib import Path

import boa
import numpy as np
import pytest
from eth_utils import keccak

from protocol.bn254 import g_multiply
from protocol.constants import (
    KIND_MASK_KEY,
    KIND_SELF_SEED,
    PHASE_DRAW,
    PHASE_SETTLE,
    PHASE_SUBMIT,
    STATUS_COMMITTED,
    STATUS_NONE,
)
from protocol.dealing import deal_round
from protocol.encoding import pack_lanes
from protocol.masks import MaskKeyPair, expand, mask_update, pairwise_seed, pairwise_sign
from protocol.shamir import combine_shares, encode_point
from tests.contracts.market import events, seeded_randbytes

MOCKS = Path(__file__).resolve().parents[1] / "mocks"
LANE_BITS = 32
D = 20


def _deal_and_commit(run, members):
    """Every member deals for real (X25519 key, self seed, Pedersen shares) and commits."""
    dealt = {}
    for do in members:
        randbytes = seeded_randbytes(b"review" + bytes.fromhex(do[2:]))
        dealing = deal_round(run.task, 0, int(do, 16), [int(m, 16) for m in members], 2, randbytes)
        run.market.commit_shares(
            run.task, 0, dealing.keys.public, dealing.tree.root, dealing.points, sender=do
        )
        dealt[do] = dealing
    return dealt


def _masked_words(run, dealt, do, members, x):
    """`do`'s masked update of plaintext `x` against every other committed member."""
    peers = {int(m, 16): dealt[m].keys.public for m in members if m != do}
    y = mask_update(
        x,
        self_seed=dealt[do].self_seed,
        my_keys=dealt[do].keys,
        my_addr=int(do, 16),
        peers=peers,
        task=run.task,
        round=0,
        lane_bits=LANE_BITS,
    )
    return list(pack_lanes(y, LANE_BITS))


def _unmask_from_secrets(run, words, do, members, seed, secret, peers_public):
    """The attacker's last step: x = y - PRG(b) - Σ_j sign · PRG(s_dj)."""
    from protocol.encoding import unpack_lanes

    y = unpack_lanes(words, D, LANE_BITS)
    x = (y - expand(seed, D, LANE_BITS)).astype(np.uint32)
    for peer, public in peers_public.items():
        s = pairwise_seed(secret, public, run.task, 0, int(do, 16), peer)
        sign = pairwise_sign(int(do, 16), peer)
        x = (x - np.uint32(sign % 2**32) * expand(s, D, LANE_BITS)).astype(np.uint32)
    return x


def test_hole1_an_answered_dealer_cannot_submit_so_colluders_learn_nothing(new_run, data_owners):
    """Group of 3, t = 2: one colluding holder plus the shares a public answer reveals give two
    shares of each of the dealer's secrets. The market now refuses the exposed dealer's update,
    so those secrets unmask nothing; the group aggregates without it."""
    r = new_run(max_dos=3, min_dos=3, group_size=3, threshold=2, d=D)
    r.start(data_owners[:3])
    (members,) = r.groups()
    victim, colluder, honest = members
    dealt = _deal_and_commit(r, members)
    r.advance_after_deadline()
    assert r.market.task_phase(r.task) == PHASE_SETTLE
    # an honest holder whose delivery from the victim was merely lost complains
    r.settle(honest, 1 << members.index(victim))
    for do in (victim, colluder):
        r.settle(do, 0)
    p = members.index(honest)
    seed_d, key_d = dealt[victim].seed, dealt[victim].key
    court = r.court
    court.answer(
        r.task,
        0,
        honest,
        [seed_d.shares[p], seed_d.blinds[p], key_d.shares[p], key_d.blinds[p]],
        dealt[victim].tree.proof(p, KIND_SELF_SEED),
        dealt[victim].tree.proof(p, KIND_MASK_KEY),
        dealt[victim].points,
        sender=victim,
    )
    (answer,) = events(court, "ComplaintAnswered")
    assert r.market.exposed(r.task, 0, victim)
    assert court.credits(r.cfg["token"], victim) == r.cfg["reward_per_do"]  # the deposit

    # the attacker's reconstruction: its own share plus the public one rebuild both secrets
    c = members.index(colluder)
    seed = combine_shares([(c + 1, seed_d.shares[c]), (p + 1, answer.seed_share)])
    secret = combine_shares([(c + 1, key_d.shares[c]), (p + 1, answer.key_share)])
    assert (seed, secret) == (dealt[victim].self_seed, dealt[victim].keys.secret)

    r.advance_after_deadline()
    assert r.market.task_phase(r.task) == PHASE_SUBMIT
    rng = np.random.default_rng(1)
    plain = {do: rng.integers(0, 2**16, D, dtype=np.uint32) for do in members}
    with boa.reverts("rounds: shares exposed"):
        r.market.submit(
            r.task, 0, 0, _masked_words(r, dealt, victim, members, plain[victim]), sender=victim
        )
    assert not [e for e in events(r.market, "UpdateChunk") if e.do == victim]
    # had the market taken it, the attacker would hold the victim's update exactly
    words = _masked_words(r, dealt, victim, members, plain[victim])
    peers = {int(m, 16): dealt[m].keys.public for m in members if m != victim}
    assert np.array_equal(
        _unmask_from_secrets(r, words, victim, members, seed, secret, peers), plain[victim]
    )

    # the two others submit; SUBMIT closes early (the exposed dealer is not waited for)
    for do in (colluder, honest):
        r.market.submit(r.task, 0, 0, _masked_words(r, dealt, do, members, plain[do]), sender=do)
    r.market.advance(r.task)
    assert r.market.do_status(r.task, 0, victim) == STATUS_COMMITTED
    # at UNMASK the victim counts as dropped: its mask key is revealed, never its seed
    revealed = []
    for holder in (colluder, honest):
        h = members.index(holder)
        reveals = []
        for dealer in members:
            kind = KIND_MASK_KEY if dealer == victim else KIND_SELF_SEED
            d = dealt[dealer]
            dealing = d.key if kind == KIND_MASK_KEY else d.seed
            reveals.append(
                (
                    dealer,
                    kind,
                    dealing.shares[h],
                    dealing.blinds[h],
                    d.tree.proof(h, kind),
                    d.points,
                )
            )
        court.unmask(r.task, 0, reveals, sender=holder)
        revealed += [(e.dealer, e.kind) for e in events(court, "ShareRevealed")]
    assert (victim, KIND_SELF_SEED) not in revealed and (victim, KIND_MASK_KEY) in revealed
    assert r.market.is_credited(r.task, 0, colluder) and r.market.is_credited(r.task, 0, honest)
    assert not r.market.is_credited(r.task, 0, victim)


def test_hole1_griefing_is_bounded_and_priced(new_run, data_owners):
    """A holder pays reward_per_do per complaint: an answering dealer earns it (for the round it
    may no longer submit in), an unanswered complaint's deposit comes back after SETTLE; and a
    holder files at most n - t complaints a round."""
    r = new_run(max_dos=4, min_dos=4, group_size=4, threshold=2, d=D)
    r.start(data_owners[:4])
    (members,) = r.groups()
    for do in members:
        r.commit(do)
    r.advance_after_deadline()
    griefer, a, b, c = members
    reward = r.cfg["reward_per_do"]
    court = r.court
    with boa.reverts("court: too many complaints"):  # n - t = 2
        r.settle(griefer, sum(1 << members.index(x) for x in (a, b, c)))
    with boa.reverts("court: wrong deposit"):
        court.settle(r.task, 0, 1 << members.index(a), value=reward - 1, sender=griefer)
    r.settle(griefer, (1 << members.index(a)) | (1 << members.index(b)))
    assert boa.env.get_balance(court.address) == 2 * reward
    court.answer(*r.answer_args(a, griefer), sender=a)  # a answers: paid; b stays silent
    assert court.credits(r.cfg["token"], a) == reward
    with boa.reverts("court: settle not over"):
        court.refund(r.task, 0, b, griefer)
    for do in (a, b, c):
        r.settle(do, 0)
    r.advance_after_deadline()
    assert r.market.do_status(r.task, 0, b) == STATUS_NONE  # excluded: it never answered
    with boa.reverts("court: no open complaint"):
        court.refund(r.task, 0, a, griefer)  # answered: the deposit is a's
    court.refund(r.task, 0, b, griefer)
    with boa.reverts("court: already refunded"):
        court.refund(r.task, 0, b, griefer)
    assert court.credits(r.cfg["token"], griefer) == reward
    before = boa.env.get_balance(a)
    court.withdraw(r.cfg["token"], sender=a)
    assert boa.env.get_balance(a) == before + reward
    court.withdraw(r.cfg["token"], sender=griefer)
    assert boa.env.get_balance(court.address) == 0


def _hashes_up_to(block: int) -> list[bytes]:
    """The last 256 block hashes as of `block` (a chain whose block n hashes to H(n))."""
    return [keccak(b"block %d" % n) for n in range(block - 1, max(-1, block - 257), -1)]


def test_hole2_a_sybil_contract_cannot_grind_the_group_draw(new_run, data_owners):
    """8 seats, groups of 2. The sybil takes the last seat and, every block, tries to close
    registration in a transaction that reverts unless its victim shares its group (before the
    fix it won in a dozen blocks; the chance without retrying is 1/7). The close no longer draws,
    and the draw a block later depends on the closing block's hash alone: retrying the draw in
    later blocks gives the same groups every time."""
    grinder = boa.load(str(MOCKS / "Grinder.vy"))
    r = new_run(max_dos=8, min_dos=8, group_size=2, threshold=2, bond=0, d=D)
    r.create()
    r.publish(0)
    r.register(data_owners[:7])
    victim = data_owners[0]
    grinder.join(r.market.address, r.task, keccak(b"sybil"), "10.0.0.1:1")
    wins = 0
    for attempt in range(40):  # noqa: B007 (reported on failure)
        boa.env.time_travel(blocks=1)
        block = boa.env.evm.patch.block_number
        boa.env.evm.patch.prevrandao = keccak(b"randao %d" % block)
        boa.env.evm.patch.prev_hashes = _hashes_up_to(block)
        try:
            grinder.grind(r.market.address, r.task, victim)
            wins += 1
            break
        except boa.BoaError:
            continue
    assert wins == 0, f"the sybil placed itself beside its victim after {attempt + 1} blocks"
    r.market.advance(r.task)  # an honest close
    assert r.market.task_phase(r.task) == PHASE_DRAW
    outcomes = set()
    for _ in range(40):  # the sybil retries the draw itself, block after block
        boa.env.time_travel(blocks=1)
        block = boa.env.evm.patch.block_number
        boa.env.evm.patch.prev_hashes = _hashes_up_to(block)
        with boa.env.anchor():
            r.market.advance(r.task)
            outcomes.add(tuple(tuple(g) for g in r.groups()))
    assert len(outcomes) == 1


@pytest.mark.parametrize("field", ["share_duration", "submit_duration", "register_duration"])
def test_hole3_a_sub_block_phase_is_refused(new_run, field):
    """A SHARE of 1 s excluded every data owner (they commit a block later) and forfeited every
    bond to the model owner; every phase now lasts at least 30 s."""
    for seconds in (1, 29):
        with boa.reverts("rounds: bad duration"):
            new_run(**{field: seconds}).create()
    new_run(**{field: 30}).create()


def test_hole4_an_off_polynomial_self_share_is_refused_at_unmask(new_run, data_owners):
    """A dealer puts a share for itself that is off its committed polynomial in its own tree
    (nobody can complain about it) and unmasks first: with exactly t shares on-chain the group's
    aggregate would be wrong. The court checks every revealed share against the commitments."""
    r = new_run(max_dos=3, min_dos=3, group_size=3, threshold=2, d=D)
    r.start(data_owners[:3])
    (members,) = r.groups()
    cheat = members[0]
    r.commit(cheat, corrupt=(cheat, KIND_SELF_SEED))
    for do in members[1:]:
        r.commit(do)
    r.advance_after_deadline()
    r.settle_all()
    for do in members:
        r.submit(do)
    r.market.advance(r.task)
    with boa.reverts("court: share off polynomial"):
        r.unmask(cheat)
    for do in members[1:]:
        r.unmask(do)
    assert r.market.is_credited(r.task, 0, members[1])


def test_hole5_public_commitments_do_not_confirm_a_mask_key(sharing_run):
    """Feldman put C_0 = sk · G on-chain: one BN254 discrete log (or a guess checked against it)
    gave a submitter's X25519 key and, with its public self seed, its update from archived data.
    Pedersen's C_0 = sk · G + b · H hides sk: the right key no longer matches the commitment."""
    r = sharing_run
    do = r.groups()[0][0]
    dealing = deal_round(
        r.task, 0, int(do, 16), [int(m, 16) for m in r.group_of(do)], 2, seeded_randbytes(b"k")
    )
    t = r.cfg["threshold"]
    c0_key = dealing.points[64 * t : 64 * t + 64]
    sk = int.from_bytes(dealing.keys.secret, "big")
    assert c0_key != encode_point(g_multiply(sk))
    assert MaskKeyPair.from_secret(dealing.keys.secret).public == dealing.keys.public
