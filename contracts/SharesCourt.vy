# pragma version ~=0.4.3
"""
@title OmniLytics shares court: complaints about dealt shares, and every share made public
@notice During a round's SETTLE phase each data owner files, once, its complaints against the
        dealers of its group whose shares for it are missing or fail their checks (often none),
        with a deposit of `reward_per_do` per complaint. An accused dealer answers by publishing
        that holder's shares; the court accepts the answer only if each share proves against the
        dealer's shares root *and* lies on the polynomials the dealer committed to with Pedersen
        commitments over BN254 G1 (`share · G + blind · H == Σ_j x^j · C_j`, via the ecAdd/ecMul
        precompiles). An answered complaint makes shares of the dealer's secrets public, so the
        dealer may not submit in that round (the market refuses it): it is paid the complainer's
        deposit instead, and a holder files at most `n - t` complaints a round. A complaint still
        open when SETTLE closes excludes its dealer (the market reads `open_against`), and its
        deposit goes back to the complainer (`refund`).
        At UNMASK every revealed share passes the same two checks here before the market counts
        the message (`unmask`).
@dev A separate contract because the market is near the EIP-170 code-size limit. One court
     serves one market: the market binds it in its constructor. Formats in
     docs/interfaces.md §4, §5 and §9. The court holds complaint deposits and its own credits
     (withdrawn with `withdraw`): its balance is the credits plus the deposits of open complaints.
"""

# @dev formats, limits and numbers only: the market owns these modules' state
from .modules import commitments
from .modules import registry
from .modules import rounds

# @dev complaint deposits: pulled, held and credited as the market does with escrow and bonds
from .modules import escrow
initializes: escrow

# @dev The market's views and callbacks this court relies on.
interface DataMarket:
    def court_terms(task: uint256) -> rounds.CourtTerms: view
    def do_status(task: uint256, round: uint256, do: address) -> uint256: view
    def group_of(task: uint256, do: address) -> uint256: view
    def group_members(task: uint256, group: uint256) -> DynArray[address, registry.MAX_GROUP]: view
    def position_of(task: uint256, do: address) -> uint256: view
    def shares_root(task: uint256, round: uint256, do: address) -> bytes32: view
    def points_digest(task: uint256, round: uint256, do: address) -> bytes32: view
    def record_unmask(task: uint256, round: uint256, holder: address): nonpayable
    def expose(task: uint256, round: uint256, dealer: address): nonpayable

exports: (escrow.withdraw, escrow.credits)

# @dev Order of BN254 G1: shares are elements of Z_r.
CURVE_ORDER: constant(uint256) = 21888242871839275222246405745257275088548364400416034343698204186575808495617
# @dev Pedersen's second generator H: the first point of G1 (try-and-increment from
#      keccak256("omnilytics/pedersen/H/v1" ‖ counter), even y) whose discrete log to G = (1, 2)
#      nobody knows (docs/interfaces.md §4; protocol.bn254 derives the same point).
H_X: constant(uint256) = 11711197069860854400599243185465880082237782576325844805189761335331431321712
H_Y: constant(uint256) = 21364449253837443648535319466223791736143145901471762962134496570904289189668

# @dev The market this court serves; set once, by the market's constructor.
market: public(DataMarket)
# @dev Whether a holder's complaint against a dealer is open (dealer first).
complaint_open: public(HashMap[uint256, HashMap[uint256, HashMap[address, HashMap[address, bool]]]])
# @dev Open complaints against a dealer in a round.
open_against: public(HashMap[uint256, HashMap[uint256, HashMap[address, uint256]]])
# @dev Open complaints of a round.
round_open: public(HashMap[uint256, HashMap[uint256, uint256]])
# @dev Whether a data owner settled (filed its complaints, maybe none) in a round.
settled: public(HashMap[uint256, HashMap[uint256, HashMap[address, bool]]])
# @dev Data owners that settled in a round.
round_settled: public(HashMap[uint256, HashMap[uint256, uint256]])
# @dev Dealers complained about in a round, each listed once.
_accused: HashMap[uint256, HashMap[uint256, DynArray[address, registry.MAX_DOS]]]
_listed: HashMap[uint256, HashMap[uint256, HashMap[address, bool]]]
# @dev Whether an unanswered complaint's deposit went back to its holder (dealer first).
refunded: public(HashMap[uint256, HashMap[uint256, HashMap[address, HashMap[address, bool]]]])

# @dev A holder says a dealer's shares for it are missing or wrong.
event Complaint:
    task: indexed(uint256)
    round: indexed(uint256)
    dealer: indexed(address)
    holder: address

# @dev A data owner filed its complaints for a round (`accused`: a bit per group position).
event Settled:
    task: indexed(uint256)
    round: indexed(uint256)
    holder: indexed(address)
    accused: uint256

# @dev A dealer published the disputed shares and they passed both checks; the holder now
#      holds them from chain data (with the proofs it needs to reveal one at UNMASK).
event ComplaintAnswered:
    task: indexed(uint256)
    round: indexed(uint256)
    dealer: indexed(address)
    holder: address
    seed_share: bytes32
    seed_blind: bytes32
    key_share: bytes32
    key_blind: bytes32
    seed_proof: DynArray[bytes32, commitments.MAX_PROOF]
    key_proof: DynArray[bytes32, commitments.MAX_PROOF]

# @dev A share passed its proof and Pedersen checks in an unmask message and is now public.
event ShareRevealed:
    task: indexed(uint256)
    round: indexed(uint256)
    dealer: indexed(address)
    holder: address
    kind: uint256
    share: bytes32
    blind: bytes32


@external
def bind():
    """
    @notice Tie this court to its market; the market calls it once, from its constructor.
    """
    assert self.market.address == empty(address), "court: already bound"
    self.market = DataMarket(msg.sender)


@external
@payable
@nonreentrant
def settle(task: uint256, round: uint256, accused: uint256):
    """
    @notice Say, once per round, which dealers of the caller's group owe it shares that are
            missing or fail their checks (none: the caller is satisfied). Each complaint carries
            a deposit of `reward_per_do` in the task's token (ETH as `msg.value`, or approved to
            this court): paid to the dealer if it answers, refunded if it does not. Complaints
            close halfway through SETTLE, so every accused dealer has the second half to answer.
    @param task The task.
    @param round The current round.
    @param accused Bit `p` set: a complaint against the member at position `p` of the group;
           at most `n - t` bits for a group of `n`.
    """
    terms: rounds.CourtTerms = self._expect_phase(task, round, rounds.PHASE_SETTLE)
    assert block.timestamp + terms.share_duration // 2 < terms.deadline, "court: complaints closed"
    market: DataMarket = self.market
    assert staticcall market.do_status(task, round, msg.sender) == rounds.STATUS_COMMITTED, "court: not committed"
    assert not self.settled[task][round][msg.sender], "court: already settled"
    members: DynArray[address, registry.MAX_GROUP] = staticcall market.group_members(task, staticcall market.group_of(task, msg.sender))
    assert accused >> len(members) == 0, "court: not in group"
    self.settled[task][round][msg.sender] = True
    self.round_settled[task][round] += 1
    count: uint256 = 0
    for p: uint256 in range(len(members), bound=registry.MAX_GROUP):
        if (accused >> p) & 1 == 0:
            continue
        dealer: address = members[p]
        assert dealer != msg.sender, "court: complaint against self"
        assert staticcall market.do_status(task, round, dealer) == rounds.STATUS_COMMITTED, "court: dealer not committed"
        self.complaint_open[task][round][dealer][msg.sender] = True
        self.open_against[task][round][dealer] += 1
        self.round_open[task][round] += 1
        count += 1
        if not self._listed[task][round][dealer]:
            self._listed[task][round][dealer] = True
            self._accused[task][round].append(dealer)
        log Complaint(task=task, round=round, dealer=dealer, holder=msg.sender)
    # @dev an honest holder never needs more: beyond n - t cheating dealers the group cannot
    #      reach t submitters anyway
    assert count + terms.threshold <= len(members), "court: too many complaints"
    escrow._pull(terms.token, msg.sender, count * terms.reward_per_do, msg.value, "court: wrong deposit")
    log Settled(task=task, round=round, holder=msg.sender, accused=accused)


@external
def answer(task: uint256, round: uint256, holder: address, shares: bytes32[4], seed_proof: DynArray[bytes32, commitments.MAX_PROOF], key_proof: DynArray[bytes32, commitments.MAX_PROOF], points: Bytes[commitments.MAX_POINT_BYTES]):
    """
    @notice Settle a complaint against the caller by publishing the holder's shares, each with
            its Merkle proof; they must also lie on the caller's committed polynomials. The
            caller is paid the complaint's deposit and may not submit in this round.
    @param task The task.
    @param round The current round.
    @param holder The complaining member.
    @param shares The holder's self-seed share and its blind, then its mask-key share and blind.
    @param seed_proof The self-seed leaf's proof against the caller's shares root.
    @param key_proof The mask-key leaf's proof.
    @param points The caller's Pedersen commitments, exactly as posted with `commit_shares`.
    """
    terms: rounds.CourtTerms = self._expect_phase(task, round, rounds.PHASE_SETTLE)
    market: DataMarket = self.market
    assert self.complaint_open[task][round][msg.sender][holder], "court: no open complaint"
    assert keccak256(points) == staticcall market.points_digest(task, round, msg.sender), "court: wrong points"
    root: bytes32 = staticcall market.shares_root(task, round, msg.sender)
    assert commitments._root(task, round, msg.sender, holder, commitments.KIND_SELF_SEED, shares[0], shares[1], seed_proof) == root, "court: bad proof"
    assert commitments._root(task, round, msg.sender, holder, commitments.KIND_MASK_KEY, shares[2], shares[3], key_proof) == root, "court: bad proof"
    x: uint256 = staticcall market.position_of(task, holder) + 1
    for kind: uint256 in range(2):
        assert self._on_polynomial(points, kind * terms.threshold, terms.threshold, x, shares[2 * kind], shares[2 * kind + 1]), "court: share off polynomial"
    self.complaint_open[task][round][msg.sender][holder] = False
    self.open_against[task][round][msg.sender] -= 1
    self.round_open[task][round] -= 1
    self._credit(task, terms.token, msg.sender, terms.reward_per_do)
    extcall market.expose(task, round, msg.sender)
    log ComplaintAnswered(task=task, round=round, dealer=msg.sender, holder=holder, seed_share=shares[0], seed_blind=shares[1], key_share=shares[2], key_blind=shares[3], seed_proof=seed_proof, key_proof=key_proof)


@external
def refund(task: uint256, round: uint256, dealer: address, holder: address):
    """
    @notice Give a holder back the deposit of its complaint that the dealer never answered
            (the dealer was excluded when SETTLE closed); anyone may call, once SETTLE is over.
    @param task The task.
    @param round The complaint's round.
    @param dealer The accused dealer.
    @param holder The complaining member.
    """
    terms: rounds.CourtTerms = staticcall self.market.court_terms(task)
    assert terms.round > round or terms.phase > rounds.PHASE_SETTLE, "court: settle not over"
    assert self.complaint_open[task][round][dealer][holder], "court: no open complaint"
    assert not self.refunded[task][round][dealer][holder], "court: already refunded"
    self.refunded[task][round][dealer][holder] = True
    self._credit(task, terms.token, holder, terms.reward_per_do)


@external
def unmask(task: uint256, round: uint256, reveals: DynArray[commitments.Reveal, registry.MAX_GROUP]):
    """
    @notice Reveal, as a submitter, one share per group member that committed this round, in
            member-list order: of the self-mask seed of a member that submitted, of the mask key
            of a member that did not. Each share must prove against its dealer's root and lie on
            its dealer's committed polynomial; the market then counts the message, and the
            group's `t`-th accepted message credits every submitter of the group.
    @param task The task.
    @param round The current round.
    @param reveals The shares, blinds, proofs and dealers' points (docs/interfaces.md §5).
    """
    terms: rounds.CourtTerms = self._expect_phase(task, round, rounds.PHASE_UNMASK)
    market: DataMarket = self.market
    # @dev first, so its rules (a submitter, once, its group pending) come before the shares'
    extcall market.record_unmask(task, round, msg.sender)
    members: DynArray[address, registry.MAX_GROUP] = staticcall market.group_members(task, staticcall market.group_of(task, msg.sender))
    x: uint256 = staticcall market.position_of(task, msg.sender) + 1
    k: uint256 = 0
    for dealer: address in members:
        status: uint256 = staticcall market.do_status(task, round, dealer)
        if status == rounds.STATUS_NONE:
            continue
        kind: uint256 = commitments.KIND_MASK_KEY
        if status >= rounds.STATUS_SUBMITTED:
            kind = commitments.KIND_SELF_SEED
        assert k < len(reveals), "commitments: missing reveal"
        assert reveals[k].dealer == dealer, "commitments: wrong dealer"
        assert reveals[k].kind == kind, "commitments: wrong kind"
        assert commitments._root(task, round, dealer, msg.sender, kind, reveals[k].share, reveals[k].blind, reveals[k].proof) == staticcall market.shares_root(task, round, dealer), "commitments: bad proof"
        assert keccak256(reveals[k].points) == staticcall market.points_digest(task, round, dealer), "court: wrong points"
        assert self._on_polynomial(reveals[k].points, kind * terms.threshold, terms.threshold, x, reveals[k].share, reveals[k].blind), "court: share off polynomial"
        log ShareRevealed(task=task, round=round, dealer=dealer, holder=msg.sender, kind=kind, share=reveals[k].share, blind=reveals[k].blind)
        k += 1
    assert k == len(reveals), "commitments: extra reveal"


@view
@external
def accused_of(task: uint256, round: uint256) -> DynArray[address, registry.MAX_DOS]:
    """
    @notice Every dealer complained about in a round (answered or not), each once.
    """
    return self._accused[task][round]


@view
@internal
def _expect_phase(task: uint256, round: uint256, expected: uint256) -> rounds.CourtTerms:
    """
    @dev Revert unless `task` is in phase `expected` of `round` before its deadline; return
         where it stands with the terms the court's rules read.
    """
    terms: rounds.CourtTerms = staticcall self.market.court_terms(task)
    assert terms.phase == expected, "court: wrong phase"
    assert round == terms.round, "court: wrong round"
    assert block.timestamp < terms.deadline, "court: deadline passed"
    return terms


@internal
def _credit(task: uint256, token: address, to: address, amount: uint256):
    escrow.credits[token][to] += amount
    log escrow.Credited(task=task, token=token, account=to, amount=amount)


@view
@internal
def _on_polynomial(points: Bytes[commitments.MAX_POINT_BYTES], first: uint256, threshold: uint256, x: uint256, share: bytes32, blind: bytes32) -> bool:
    """
    @dev Pedersen: `share · G + blind · H == Σ_j x^j · C_j` over the `threshold` points from
         index `first`, by Horner from the top coefficient. A point off the curve makes the
         precompile fail and the call revert: a dealer that committed such points can never
         answer, nor can its shares be revealed.
    """
    s: uint256 = convert(share, uint256)
    b: uint256 = convert(blind, uint256)
    if s >= CURVE_ORDER or b >= CURVE_ORDER:
        return False
    acc: uint256[2] = self._point(points, first + threshold - 1)
    for j: uint256 in range(1, registry.MAX_GROUP_SIZE):
        if j >= threshold:
            break
        acc = ecadd(ecmul(acc, x), self._point(points, first + threshold - 1 - j))
    expected: uint256[2] = ecadd(ecmul([1, 2], s), ecmul([H_X, H_Y], b))
    return acc[0] == expected[0] and acc[1] == expected[1]


@pure
@internal
def _point(points: Bytes[commitments.MAX_POINT_BYTES], index: uint256) -> uint256[2]:
    return [extract32(points, 64 * index, output_type=uint256), extract32(points, 64 * index + 32, output_type=uint256)]
