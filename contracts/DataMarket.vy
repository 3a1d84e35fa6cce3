# pragma version ~=0.4.3
# pragma optimize codesize
"""
@title OmniLytics data market
@notice A model owner escrows the reward of a federated-learning task; data owners register,
        commit to Shamir shares of their masks, post masked updates, and reveal shares (through
        the shares court, which checks them) so that each group's aggregate becomes computable
        in the very transaction that credits the group's submitters. One deployment serves any
        number of concurrent tasks.
@dev Thin composition: each module owns one concern and its state; the entry points here check
     the phase, the caller and the inputs through the modules, then move state in one order:
     rounds (phase, statuses), commitments (digests, roots), escrow (value). Phase and status
     numbers, byte formats and events are documented in docs/interfaces.md §7–§8.
"""

# @dev value: escrow, credits, bonds, withdrawals
from .modules import escrow
initializes: escrow

# @dev who takes part: registration, channel keys, endpoints, groups
from .modules import registry
initializes: registry

# @dev what was promised: mask keys, share roots, share checks
from .modules import commitments
initializes: commitments

# @dev when: task config, phases and their rules, deadlines, statuses, submissions, group results
from .modules import rounds
initializes: rounds[registry := registry]

# @dev Where complaints about dealt shares are filed and answered, and where revealed shares are
#      checked (contracts/SharesCourt.vy); the phase rules consult it when SETTLE closes
#      (`rounds.SharesCourt`), and the market takes its word on exposed dealers (`expose`) and
#      accepted unmask messages (`record_unmask`).
interface SharesCourt:
    def bind(): nonpayable

# @dev Where the public model is published and where a direct task's data owners commit to
#      their updates and the model owner challenges their delivery (contracts/DeliveryDesk.vy);
#      the phase rules read its model digests and have it settle DELIVERY when that closes
#      (`rounds.DeliveryDesk`), and the market takes its word on direct submissions and on
#      unanswered challenges (`record_delivery`).
interface DeliveryDesk:
    def bind(): nonpayable

# @dev The court this market trusts; it is bound to this market alone.
COURT: public(immutable(SharesCourt))
# @dev The delivery desk this market trusts; it is bound to this market alone.
DESK: public(immutable(DeliveryDesk))

exports: (
    escrow.withdraw,
    escrow.credits,
    escrow.escrow_remaining,
    escrow.bond_of,
    registry.members,
    registry.member_count,
    registry.is_registered,
    registry.channel_key,
    registry.endpoint,
    registry.group_count,
    registry.group_of,
    registry.group_members,
    registry.position_of,
    registry.group_seed,
    registry.draw_block,
    rounds.task_count,
    rounds.task_config,
    rounds.task_owner,
    rounds.task_phase,
    rounds.deadline,
    rounds.current_round,
    rounds.rounds_opened,
    rounds.round_model_hash,
    rounds.do_status,
    rounds.commits_made,
    rounds.update_digest,
    rounds.chunk_count,
    rounds.words_received,
    rounds.update_words,
    rounds.group_committed,
    rounds.group_submitted,
    rounds.unmask_count,
    rounds.group_result,
    rounds.round_committed,
    rounds.round_submitted,
    rounds.round_pending,
    rounds.exposed,
    rounds.round_exposed,
    rounds.court_terms,
    commitments.mask_pk,
    commitments.shares_root,
    commitments.points_digest,
)

# @dev Escrow returned to a model owner: a cancelled task's refund, or a reclaim.
event EscrowReturned:
    task: indexed(uint256)
    owner: indexed(address)
    amount: uint256

# @dev A group's `t`-th unmask message credited each of its submitters `reward` in this transaction.
event GroupPaid:
    task: indexed(uint256)
    round: indexed(uint256)
    group: indexed(uint256)
    submitters: uint256
    reward: uint256


@deploy
def __init__(court: SharesCourt, desk: DeliveryDesk):
    """
    @param court A fresh SharesCourt; the market binds it, so no other market can use it.
    @param desk A fresh DeliveryDesk, bound the same way.
    """
    COURT = court
    DESK = desk
    extcall court.bind()
    extcall desk.bind()


@external
@payable
@nonreentrant
def create_task(config: rounds.TaskConfig, spec: Bytes[rounds.MAX_SPEC_BYTES]) -> uint256:
    """
    @notice Create a task, publish its spec and escrow its whole reward,
            `reward_per_do * max_dos * rounds`.
    @dev ETH tasks send exactly that as `msg.value`; ERC-20 tasks send no ETH and approve the
         market for the amount, which is pulled with transferFrom. The spec's bytes live only in
         the `TaskSpec` event, so a data owner reads and checks them from chain data alone.
    @param config The task's configuration (docs/interfaces.md §7).
    @param spec The task spec's canonical bytes, whose keccak256 must be `config.spec_hash`
           (empty for a task without a spec).
    @return The new task id (from 1).
    """
    if config.token != empty(address):
        assert config.token.is_contract, "escrow: token is not a contract"
    task: uint256 = rounds._create(msg.sender, config, keccak256(spec))
    log rounds.TaskSpec(task=task, spec=spec)
    escrow._deposit(task, config.token, msg.sender, config.reward_per_do * config.max_dos * config.rounds, msg.value)
    return task


@external
@payable
@nonreentrant
def register(task: uint256, channel_pk: bytes32, endpoint: String[registry.MAX_ENDPOINT]):
    """
    @notice Join a task as a data owner, posting its bond (ETH as `msg.value`, or a token
            approved to the market).
    @dev Open during REGISTER until its deadline or until `max_dos` data owners are in.
    @param task The task.
    @param channel_pk The static public key of the caller's authenticated peer channel.
    @param endpoint Where the caller's peer channel listens.
    """
    rounds._expect(task, 0, rounds.PHASE_REGISTER)
    assert msg.sender != rounds.task_owner[task], "registry: owner cannot register"
    registry._register(task, msg.sender, channel_pk, endpoint, rounds.task_config[task].max_dos)
    escrow._post_bond(task, rounds.task_config[task].token, msg.sender, rounds.task_config[task].bond, msg.value)


@external
def advance(task: uint256):
    """
    @notice Move a task to its next phase; anyone may call, after the phase's deadline or as soon
            as the phase is complete.
    @dev The phase rules are `rounds._advance`'s. A task cancelled when registration closes
         (below `min_dos`, or without the round-0 model) refunds its model owner here.
    @param task The task.
    """
    if rounds._advance(task, rounds.SharesCourt(COURT.address), rounds.DeliveryDesk(DESK.address)):
        self._return_escrow(task, rounds.task_config[task].token, escrow.escrow_remaining[task])


@external
def commit_shares(task: uint256, round: uint256, mask_pk: bytes32, shares_root: bytes32, points: Bytes[commitments.MAX_POINT_BYTES]):
    """
    @notice Post the caller's fresh X25519 mask public key for the round, the Merkle root over
            the Shamir shares it dealt to its group, and the Feldman commitments to its two
            sharing polynomials (docs/interfaces.md §4).
    @param task The task.
    @param round The current round.
    @param mask_pk The round's mask public key.
    @param shares_root The root over one leaf per (holder, secret kind).
    @param points `t` points per polynomial, self seed's first: `C_j = a_j · G` on BN254 G1,
           64 bytes each (`x ‖ y`).
    """
    rounds._expect(task, round, rounds.PHASE_SHARE)
    assert registry._is_member(task, msg.sender), "registry: not a member"
    group: uint256 = registry.group_of[task][msg.sender]
    rounds._commit(task, round, msg.sender, group)
    commitments._commit(task, round, msg.sender, group, mask_pk, shares_root, points, rounds.task_config[task].threshold)


@external
def submit(task: uint256, round: uint256, chunk_index: uint256, words: DynArray[uint256, rounds.MAX_CHUNK_WORDS]):
    """
    @notice Post the next chunk of the caller's masked update (lanes packed per
            docs/interfaces.md §2); the caller counts as submitted once all `W` words are in.
    @dev The words are emitted in `UpdateChunk`, not stored; storage keeps the running digest.
    @param task The task.
    @param round The current round.
    @param chunk_index Number of chunks the caller already submitted this round.
    @param words The chunk's words, at least one.
    """
    rounds._expect(task, round, rounds.PHASE_SUBMIT)
    # @dev the words are hashed and logged here, once each and with no per-word work, so that
    #      execution stays under the EIP-7623 calldata floor the transaction pays anyway
    chunk_hash: bytes32 = keccak256(abi_encode(words))
    rounds._submit_chunk(task, round, msg.sender, registry.group_of[task][msg.sender], chunk_index, len(words), chunk_hash, False)
    log rounds.UpdateChunk(task=task, round=round, do=msg.sender, chunk_index=chunk_index, words=words)


@external
def submit_blobs(task: uint256, round: uint256, chunk_index: uint256):
    """
    @notice Post the next chunk of the caller's masked update (blob tasks) as this transaction's
            blobs, each carrying `BLOB_WORDS` words (the update's last blob fewer); the caller
            counts as submitted once all `W` words are in.
    @dev Only the blobs' versioned hashes reach the EVM: they are folded into the running digest
         as `submit` folds words, and emitted in `UpdateBlobs`. Execution gas does not grow with
         the data a blob carries.
    @param task The task.
    @param round The current round.
    @param chunk_index Number of chunks the caller already submitted this round.
    """
    rounds._expect(task, round, rounds.PHASE_SUBMIT)
    hashes: DynArray[bytes32, rounds.MAX_CHUNK_BLOBS] = []
    for i: uint256 in range(rounds.MAX_CHUNK_BLOBS):
        blob_hash: bytes32 = blobhash(i)
        if blob_hash == empty(bytes32):
            break
        hashes.append(blob_hash)
    # @dev at most MAX_CHUNK_BLOBS * BLOB_WORDS words: no overflow
    size: uint256 = unsafe_mul(len(hashes), rounds.BLOB_WORDS)
    rounds._submit_chunk(task, round, msg.sender, registry.group_of[task][msg.sender], chunk_index, size, keccak256(abi_encode(hashes)), True)
    log rounds.UpdateBlobs(task=task, round=round, do=msg.sender, chunk_index=chunk_index, blob_hashes=hashes)


@external
def record_unmask(task: uint256, round: uint256, holder: address):
    """
    @notice Count a submitter's unmask message whose shares the court checked; the group's
            `t`-th credits every submitter of the group `reward_per_do`.
    @dev Only the court calls this, from `unmask`, after checking the phase and every share.
    @param task The task.
    @param round The current round.
    @param holder The data owner that unmasked.
    """
    assert msg.sender == COURT.address, "market: not the court"
    group: uint256 = registry.group_of[task][holder]
    if not rounds._unmask(task, round, holder, group):
        return
    token: address = rounds.task_config[task].token
    reward: uint256 = rounds.task_config[task].reward_per_do
    paid: uint256 = 0
    members: DynArray[address, registry.MAX_GROUP] = registry._group(task, group)
    for member: address in members:
        if rounds.do_status[task][round][member] >= rounds.STATUS_SUBMITTED:
            escrow._pay(task, token, member, reward)
            paid += 1
    log GroupPaid(task=task, round=round, group=group, submitters=paid, reward=reward)
    rounds._finalize_group(task, round, group)


@external
def record_delivery(task: uint256, round: uint256, do: address, digest: bytes32):
    """
    @notice Take the desk's word on a direct task's data owner: it committed to its update
            (`digest`), and counts as submitted; or (a zero `digest`) it left a challenge of its
            delivery unanswered, and is a committed non-submitter again.
    @dev Only the desk calls this: from `commit_update`, after checking the phase and the word
         count (the status rules are the market's: committed, not exposed); and from `settle`,
         while DELIVERY closes.
    @param task The task.
    @param round The current round.
    @param do The data owner.
    @param digest The update's digest, kept as its `update_digest`; zero to exclude it.
    """
    assert msg.sender == DESK.address, "market: not the desk"
    group: uint256 = registry.group_of[task][do]
    if digest == empty(bytes32):
        rounds._unsubmit(task, round, do, group)
    else:
        rounds._commit_update(task, round, do, group, digest)


@external
def expose(task: uint256, round: uint256, dealer: address):
    """
    @notice Bar a dealer from submitting in `round`: it answered a complaint, so shares of its
            secrets are public and its update would follow from them.
    @dev Only the court calls this, from `answer`.
    @param task The task.
    @param round The current round.
    @param dealer The dealer that answered.
    """
    assert msg.sender == COURT.address, "market: not the court"
    rounds._expose(task, round, dealer)


@external
def open_round(task: uint256, round: uint256, model_hash: bytes32):
    """
    @notice Start the next round on a new public model (model owner, between rounds).
    @param task The task.
    @param round The round to open, the current one plus one.
    @param model_hash The digest of the round's model bytes: published at the desk
           (`DeliveryDesk.publish_model`), or, on a direct task, served off-chain.
    """
    rounds._expect_owner(task, msg.sender)
    rounds._expect_next(task, round)
    assert model_hash != empty(bytes32), "commitments: empty model hash"
    assert rounds._model_ready(task, round, model_hash, rounds.DeliveryDesk(DESK.address)), "commitments: model hash mismatch"
    rounds._open(task, round, model_hash)


@external
def end_task(task: uint256):
    """
    @notice End the task between rounds instead of opening the next one (model owner).
    @dev The unopened rounds' escrow becomes reclaimable and every bond releasable.
    @param task The task.
    """
    rounds._expect_owner(task, msg.sender)
    rounds._expect(task, rounds.current_round[task], rounds.PHASE_ROUND_DONE)
    rounds._enter(task, rounds.current_round[task], rounds.PHASE_ENDED, 0)


@external
@nonreentrant
def reclaim(task: uint256) -> uint256:
    """
    @notice Credit the model owner the escrow no data owner can be owed any more: empty slots,
            failed groups, failed and unopened rounds.
    @dev Only between rounds, or once the task is over; while a round is past REGISTER and
         unresolved nothing can be reclaimed. Between rounds the escrow of the rounds still to
         come stays locked.
    @param task The task.
    @return The amount credited to the model owner (withdraw it with `withdraw`).
    """
    rounds._expect_owner(task, msg.sender)
    assert rounds.task_phase[task] in [rounds.PHASE_ROUND_DONE, rounds.PHASE_ENDED, rounds.PHASE_CANCELLED], "escrow: round unresolved"
    amount: uint256 = self._reclaimable(task)
    assert amount > 0, "escrow: nothing to reclaim"
    self._return_escrow(task, rounds.task_config[task].token, amount)
    return amount


@external
@nonreentrant
def release_bond(task: uint256, do: address):
    """
    @notice Release a data owner's bond once the task is over; anyone may call.
    @dev The bond goes back to the data owner, unless it was in a round's group (every member is
         in every opened round) and never committed shares in that round: then it goes to the
         model owner, whose escrowed slot it took.
    @param task The task.
    @param do The data owner.
    """
    phase: uint256 = rounds.task_phase[task]
    assert phase == rounds.PHASE_ENDED or phase == rounds.PHASE_CANCELLED, "escrow: task not over"
    to: address = do
    if self._bond_forfeited(task, do):
        to = rounds.task_owner[task]
    escrow._release_bond(task, rounds.task_config[task].token, do, to)


@view
@external
def task_phase_of(task: uint256) -> (uint256, uint256, uint256):
    """
    @notice The phase, the current round and the current phase's deadline of a task, at once.
    """
    return rounds.task_phase[task], rounds.current_round[task], rounds.deadline[task]


@view
@external
def is_credited(task: uint256, round: uint256, do: address) -> bool:
    """
    @notice Whether `do` was paid for `round`: its group finalized with it as a submitter.
    """
    if registry.group_count[task] == 0 or not registry._is_member(task, do):
        return False
    group: uint256 = registry.group_of[task][do]
    return rounds.group_result[task][round][group] == rounds.GROUP_FINALIZED and rounds.do_status[task][round][do] >= rounds.STATUS_SUBMITTED


@view
@external
def reclaimable(task: uint256) -> uint256:
    """
    @notice Escrow the model owner could reclaim now.
    """
    return self._reclaimable(task)


@view
@external
def bond_forfeited(task: uint256, do: address) -> bool:
    """
    @notice Whether `do`'s bond goes to the model owner: it skipped committing shares in a round.
    """
    return self._bond_forfeited(task, do)


@view
@internal
def _reclaimable(task: uint256) -> uint256:
    phase: uint256 = rounds.task_phase[task]
    remaining: uint256 = escrow.escrow_remaining[task]
    if phase == rounds.PHASE_ENDED or phase == rounds.PHASE_CANCELLED:
        return remaining
    if phase != rounds.PHASE_ROUND_DONE:
        return 0
    # @dev rounds still to come keep their full escrow; resolved rounds owe nothing any more
    reserved: uint256 = rounds.task_config[task].reward_per_do * rounds.task_config[task].max_dos * (rounds.task_config[task].rounds - rounds.current_round[task] - 1)
    return remaining - reserved


@view
@internal
def _bond_forfeited(task: uint256, do: address) -> bool:
    return rounds.commits_made[task][do] < rounds.rounds_opened[task]


@internal
def _return_escrow(task: uint256, token: address, amount: uint256):
    escrow._pay(task, token, rounds.task_owner[task], amount)
    log EscrowReturned(task=task, owner=rounds.task_owner[task], amount=amount)
