# pragma version ~=0.4.3
"""
@title OmniLytics shares court: complaints about dealt shares, settled on-chain
@notice During a round's SETTLE phase each data owner files, once, its complaints against the
        dealers of its group whose shares for it are missing or fail their checks (often none).
        An accused dealer answers by publishing that holder's two shares; the court accepts the
        answer only if each share proves against the dealer's shares root *and* lies on the
        polynomial the dealer committed to with Feldman commitments over BN254 G1
        (`share · G == Σ_j x^j · C_j`, via the ecAdd/ecMul precompiles). When SETTLE closes, the
        market excludes every dealer with a complaint still open: a dealer that dealt bad shares
        cannot answer, and an honest dealer always can, so a false complaint costs it one
        transaction and excludes nobody.
@dev A separate contract because the market is near the EIP-170 code-size limit. One court
     serves one market: the market binds it in its constructor. Formats in
     docs/interfaces.md §4 and §9.
"""

from .modules import commitments
from .modules import rounds

# @dev The market's views this court relies on.
interface DataMarket:
    def task_phase_of(task: uint256) -> (uint256, uint256, uint256): view
    def task_config(task: uint256) -> rounds.TaskConfig: view
    def do_status(task: uint256, round: uint256, do: address) -> uint256: view
    def group_of(task: uint256, do: address) -> uint256: view
    def group_members(task: uint256, group: uint256) -> DynArray[address, MAX_GROUP]: view
    def position_of(task: uint256, do: address) -> uint256: view
    def shares_root(task: uint256, round: uint256, do: address) -> bytes32: view
    def points_digest(task: uint256, round: uint256, do: address) -> bytes32: view

# @dev Longest group member list (the market's registry.MAX_GROUP).
MAX_GROUP: constant(uint256) = 64
# @dev Most data owners of a task (the market's registry.MAX_DOS).
MAX_DOS: constant(uint256) = 256
# @dev Largest threshold: t <= m <= 32.
MAX_THRESHOLD: constant(uint256) = 32
# @dev Order of BN254 G1: shares are elements of Z_r.
CURVE_ORDER: constant(uint256) = 21888242871839275222246405745257275088548364400416034343698204186575808495617

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
_accused: HashMap[uint256, HashMap[uint256, DynArray[address, MAX_DOS]]]
_listed: HashMap[uint256, HashMap[uint256, HashMap[address, bool]]]

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
    key_share: bytes32
    seed_proof: DynArray[bytes32, commitments.MAX_PROOF]
    key_proof: DynArray[bytes32, commitments.MAX_PROOF]


@external
def bind():
    """
    @notice Tie this court to its market; the market calls it once, from its constructor.
    """
    assert self.market.address == empty(address), "court: already bound"
    self.market = DataMarket(msg.sender)


@external
def settle(task: uint256, round: uint256, accused: uint256):
    """
    @notice Say, once per round, which dealers of the caller's group owe it shares that are
            missing or fail their checks (none: the caller is satisfied). Complaints close
            halfway through SETTLE, so every accused dealer has at least the second half to
            answer.
    @param task The task.
    @param round The current round.
    @param accused Bit `p` set: a complaint against the member at position `p` of the group.
    """
    duration: uint256 = self._expect_settle(task, round).share_duration
    deadline: uint256 = (staticcall self.market.task_phase_of(task))[2]
    assert block.timestamp + duration // 2 < deadline, "court: complaints closed"
    market: DataMarket = self.market
    assert staticcall market.do_status(task, round, msg.sender) == rounds.STATUS_COMMITTED, "court: not committed"
    assert not self.settled[task][round][msg.sender], "court: already settled"
    members: DynArray[address, MAX_GROUP] = staticcall market.group_members(task, staticcall market.group_of(task, msg.sender))
    assert accused >> len(members) == 0, "court: not in group"
    self.settled[task][round][msg.sender] = True
    self.round_settled[task][round] += 1
    for p: uint256 in range(len(members), bound=MAX_GROUP):
        if (accused >> p) & 1 == 0:
            continue
        dealer: address = members[p]
        assert dealer != msg.sender, "court: complaint against self"
        assert staticcall market.do_status(task, round, dealer) == rounds.STATUS_COMMITTED, "court: dealer not committed"
        self.complaint_open[task][round][dealer][msg.sender] = True
        self.open_against[task][round][dealer] += 1
        self.round_open[task][round] += 1
        if not self._listed[task][round][dealer]:
            self._listed[task][round][dealer] = True
            self._accused[task][round].append(dealer)
        log Complaint(task=task, round=round, dealer=dealer, holder=msg.sender)
    log Settled(task=task, round=round, holder=msg.sender, accused=accused)


@external
def answer(task: uint256, round: uint256, holder: address, shares: bytes32[2], seed_proof: DynArray[bytes32, commitments.MAX_PROOF], key_proof: DynArray[bytes32, commitments.MAX_PROOF], points: Bytes[commitments.MAX_POINT_BYTES]):
    """
    @notice Settle a complaint against the caller by publishing the holder's two shares (self
            seed, then mask key), each with its Merkle proof; both must also lie on the
            caller's committed polynomials.
    @param task The task.
    @param round The current round.
    @param holder The complaining member.
    @param shares The holder's self-seed share and mask-key share.
    @param seed_proof The self-seed share's proof against the caller's shares root.
    @param key_proof The mask-key share's proof.
    @param points The caller's Feldman commitments, exactly as posted with `commit_shares`.
    """
    threshold: uint256 = self._expect_settle(task, round).threshold
    market: DataMarket = self.market
    assert self.complaint_open[task][round][msg.sender][holder], "court: no open complaint"
    assert keccak256(points) == staticcall market.points_digest(task, round, msg.sender), "court: wrong points"
    root: bytes32 = staticcall market.shares_root(task, round, msg.sender)
    assert commitments._root(task, round, msg.sender, holder, commitments.KIND_SELF_SEED, shares[0], seed_proof) == root, "court: bad proof"
    assert commitments._root(task, round, msg.sender, holder, commitments.KIND_MASK_KEY, shares[1], key_proof) == root, "court: bad proof"
    x: uint256 = staticcall market.position_of(task, holder) + 1
    for kind: uint256 in range(2):
        assert self._on_polynomial(points, kind * threshold, threshold, x, convert(shares[kind], uint256)), "court: share off polynomial"
    self.complaint_open[task][round][msg.sender][holder] = False
    self.open_against[task][round][msg.sender] -= 1
    self.round_open[task][round] -= 1
    log ComplaintAnswered(task=task, round=round, dealer=msg.sender, holder=holder, seed_share=shares[0], key_share=shares[1], seed_proof=seed_proof, key_proof=key_proof)


@view
@external
def accused_of(task: uint256, round: uint256) -> DynArray[address, MAX_DOS]:
    """
    @notice Every dealer complained about in a round (answered or not), each once.
    """
    return self._accused[task][round]


@view
@internal
def _expect_settle(task: uint256, round: uint256) -> rounds.TaskConfig:
    """
    @dev Revert unless `task` is in SETTLE of `round` before its deadline; return its config.
    """
    phase: uint256 = 0
    current: uint256 = 0
    deadline: uint256 = 0
    phase, current, deadline = staticcall self.market.task_phase_of(task)
    assert phase == rounds.PHASE_SETTLE, "court: wrong phase"
    assert round == current, "court: wrong round"
    assert block.timestamp < deadline, "court: deadline passed"
    return staticcall self.market.task_config(task)


@view
@internal
def _on_polynomial(points: Bytes[commitments.MAX_POINT_BYTES], first: uint256, threshold: uint256, x: uint256, share: uint256) -> bool:
    """
    @dev Feldman: `share · G == Σ_j x^j · C_j` over the `threshold` points from index `first`,
         by Horner from the top coefficient. A point off the curve makes the precompile fail
         and the call revert: a dealer that committed such points can never answer.
    """
    if share >= CURVE_ORDER:
        return False
    acc: uint256[2] = self._point(points, first + threshold - 1)
    for j: uint256 in range(1, MAX_THRESHOLD):
        if j >= threshold:
            break
        acc = ecadd(ecmul(acc, x), self._point(points, first + threshold - 1 - j))
    expected: uint256[2] = ecmul([1, 2], share)
    return acc[0] == expected[0] and acc[1] == expected[1]


@pure
@internal
def _point(points: Bytes[commitments.MAX_POINT_BYTES], index: uint256) -> uint256[2]:
    return [extract32(points, 64 * index, output_type=uint256), extract32(points, 64 * index + 32, output_type=uint256)]
