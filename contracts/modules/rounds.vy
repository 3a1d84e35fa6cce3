# pragma version ~=0.4.3
"""
@title Tasks, rounds and phases
@notice Owns the life of each task: its configuration and model owner, the phase machine with
        its deadlines, every data owner's status in every round, the masked-update submissions
        (running digest and chunk count), and the per-group counters and results of each round.
@dev Phase, status and group-result numbers are fixed in docs/interfaces.md §7. An action of a
     phase is allowed while `block.timestamp < deadline`; the transition out of it is allowed from
     `block.timestamp >= deadline` on, or earlier when the phase is complete (`_advance`).
"""

# @dev the phase rules count the members, draw the groups and read a member's group
from . import registry
uses: registry


# @dev The shares court's account of a round's SETTLE phase, which decides when SETTLE may close
#      and which dealers it excludes (contracts/SharesCourt.vy).
interface SharesCourt:
    def round_settled(task: uint256, round: uint256) -> uint256: view
    def round_open(task: uint256, round: uint256) -> uint256: view
    def open_against(task: uint256, round: uint256, dealer: address) -> uint256: view
    def accused_of(task: uint256, round: uint256) -> DynArray[address, registry.MAX_DOS]: view

# @dev The delivery desk, which decides when a direct task's DELIVERY may close (its deadline, or
#      the model owner with no challenge open) and, when it closes, settles the challenges and
#      has the market exclude each data owner that left one unanswered (contracts/DeliveryDesk.vy).
interface DeliveryDesk:
    def settle(task: uint256, round: uint256): nonpayable
    def model_digest(task: uint256, round: uint256) -> bytes32: view

# @dev Most words in one submitted chunk (128 KiB of calldata).
MAX_CHUNK_WORDS: constant(uint256) = 6144
# @dev Most rounds a task may ask for.
MAX_ROUNDS: constant(uint256) = 1024
# @dev Most model parameters (lanes) per update.
MAX_PARAMS: constant(uint256) = 2**32
# @dev Longest phase duration a task may ask for.
MAX_DURATION: constant(uint256) = 365 * 86400
# @dev Shortest phase duration a task may ask for: several blocks even on a 12 s chain, so no
#      phase can open and close between two blocks (a sub-block SHARE would exclude every data
#      owner and forfeit every bond to the model owner). Data owners ask for more (protocol.terms).
MIN_DURATION: constant(uint256) = 30
# @dev Most blobs one `submit_blobs` chunk reads (above the per-transaction limit, 6 since Osaka).
MAX_CHUNK_BLOBS: constant(uint256) = 16
# @dev Words one blob carries: 4096 field elements of 31 payload bytes (docs/interfaces.md §3b).
BLOB_WORDS: constant(uint256) = 3968
# @dev Longest canonical task spec `create_task` publishes (protocol.spec.MAX_SPEC_BYTES).
MAX_SPEC_BYTES: constant(uint256) = 16384

# @dev How a task's masked updates reach the chain: words in calldata and events, or blobs, or
#      (direct) only a commitment, the words going to the model owner off-chain and on-chain
#      only when it challenges their delivery (contracts/DeliveryDesk.vy).
DATA_PATH_EVENT: constant(uint256) = 0
DATA_PATH_BLOB: constant(uint256) = 1
DATA_PATH_DIRECT: constant(uint256) = 2

# @dev Phases of a task, in the order a task goes through them (docs/interfaces.md §7;
#      protocol/constants.py mirrors them). DRAW: registration is closed and the groups wait for
#      the hash of the closing block, which no transaction of that block can read. DELIVERY:
#      direct tasks only, between SUBMIT and UNMASK.
PHASE_NONE: constant(uint256) = 0
PHASE_REGISTER: constant(uint256) = 1
PHASE_DRAW: constant(uint256) = 2
PHASE_SHARE: constant(uint256) = 3
PHASE_SETTLE: constant(uint256) = 4
PHASE_SUBMIT: constant(uint256) = 5
PHASE_DELIVERY: constant(uint256) = 6
PHASE_UNMASK: constant(uint256) = 7
PHASE_ROUND_DONE: constant(uint256) = 8
PHASE_ENDED: constant(uint256) = 9
PHASE_CANCELLED: constant(uint256) = 10

# @dev A data owner's status in one round.
STATUS_NONE: constant(uint256) = 0
STATUS_COMMITTED: constant(uint256) = 1
STATUS_SUBMITTED: constant(uint256) = 2
STATUS_UNMASKED: constant(uint256) = 3

# @dev A group's result in one round.
GROUP_PENDING: constant(uint256) = 0
GROUP_FINALIZED: constant(uint256) = 1
GROUP_FAILED: constant(uint256) = 2


# @dev What a model owner fixes when it creates a task (docs/interfaces.md §7): what it commits
#      to (the round-0 model's digest, the spec's hash), how updates are encoded (`sample_cap`:
#      the most samples one data owner counts for in the secure sum), and the market's terms.
struct TaskConfig:
    model_hash: bytes32
    spec_hash: bytes32
    d: uint256
    lane_bits: uint256
    scale_bits: uint256
    clip_norm_micro: uint256
    sample_cap: uint256
    rounds: uint256
    max_dos: uint256
    min_dos: uint256
    group_size: uint256
    threshold: uint256
    reward_per_do: uint256
    bond: uint256
    token: address
    register_duration: uint256
    share_duration: uint256
    submit_duration: uint256
    unmask_duration: uint256
    data_path: uint256

# @dev Where a task stands and the terms the shares court's rules read, in one call (a few slots
#      of the config instead of all of them).
struct CourtTerms:
    phase: uint256
    round: uint256
    deadline: uint256
    threshold: uint256
    reward_per_do: uint256
    token: address
    share_duration: uint256


# @dev Number of tasks created; task ids run 1 .. task_count.
task_count: public(uint256)
# @dev Configuration of each task.
task_config: public(HashMap[uint256, TaskConfig])
# @dev Model owner of each task.
task_owner: public(HashMap[uint256, address])
# @dev Current phase of each task (PHASE_*).
task_phase: public(HashMap[uint256, uint256])
# @dev End of the current phase (for ROUND_DONE: the last moment to open the next round).
deadline: public(HashMap[uint256, uint256])
# @dev Round the task is in, or last resolved.
current_round: public(HashMap[uint256, uint256])
# @dev Rounds whose SHARE phase started: every member was in each of them.
rounds_opened: public(HashMap[uint256, uint256])
# @dev Public-model digest each opened round trains.
round_model_hash: public(HashMap[uint256, HashMap[uint256, bytes32]])
# @dev A data owner's status in a round (STATUS_*).
do_status: public(HashMap[uint256, HashMap[uint256, HashMap[address, uint256]]])
# @dev Rounds in which a data owner committed shares; below `rounds_opened` forfeits its bond.
commits_made: public(HashMap[uint256, HashMap[address, uint256]])
# @dev Running digest of a data owner's submitted chunks (docs/interfaces.md §3).
update_digest: public(HashMap[uint256, HashMap[uint256, HashMap[address, bytes32]]])
# @dev Chunks (high 128 bits) and words (low 128 bits) a data owner submitted in a round: one
#      slot, one SSTORE per chunk.
_progress: HashMap[uint256, HashMap[uint256, HashMap[address, uint256]]]
# @dev Members of a group that committed shares in a round.
group_committed: public(HashMap[uint256, HashMap[uint256, HashMap[uint256, uint256]]])
# @dev Members of a group that submitted a complete update in a round.
group_submitted: public(HashMap[uint256, HashMap[uint256, HashMap[uint256, uint256]]])
# @dev Accepted unmask messages of a group in a round.
unmask_count: public(HashMap[uint256, HashMap[uint256, HashMap[uint256, uint256]]])
# @dev Result of a group in a round (GROUP_*).
group_result: public(HashMap[uint256, HashMap[uint256, HashMap[uint256, uint256]]])
# @dev Data owners that committed shares in a round.
round_committed: public(HashMap[uint256, HashMap[uint256, uint256]])
# @dev Data owners that submitted a complete update in a round.
round_submitted: public(HashMap[uint256, HashMap[uint256, uint256]])
# @dev Dealers whose shares an answered complaint made public in a round: they may not submit
#      in it (their update would follow from public shares), and count as committed non-submitters.
exposed: public(HashMap[uint256, HashMap[uint256, HashMap[address, bool]]])
# @dev Exposed dealers of a round (SUBMIT may close early without them).
round_exposed: public(HashMap[uint256, HashMap[uint256, uint256]])
# @dev Groups of a round still waiting for their threshold of unmask messages.
round_pending: public(HashMap[uint256, HashMap[uint256, uint256]])

# @dev A model owner created a task and escrowed its reward.
event TaskCreated:
    task: indexed(uint256)
    owner: indexed(address)
    config: TaskConfig

# @dev The canonical bytes of a task's spec (docs/interfaces.md §7), keccak256 `spec_hash`
#      (empty for a task without one); they live only in this event.
event TaskSpec:
    task: indexed(uint256)
    spec: Bytes[MAX_SPEC_BYTES]

# @dev A task entered a phase.
event PhaseChanged:
    task: indexed(uint256)
    round: indexed(uint256)
    phase: uint256
    deadline: uint256

# @dev Registration closed below `min_dos` or without the round-0 model: the task is over.
event TaskCancelled:
    task: indexed(uint256)
    members: uint256
    model_published: bool

# @dev A dealer left a complaint unanswered when SETTLE closed: its commitment is taken back.
event DealerExcluded:
    task: indexed(uint256)
    round: indexed(uint256)
    dealer: indexed(address)

# @dev A chunk of a data owner's masked update; its words are only in this event.
event UpdateChunk:
    task: indexed(uint256)
    round: indexed(uint256)
    do: indexed(address)
    chunk_index: uint256
    words: DynArray[uint256, MAX_CHUNK_WORDS]

# @dev A chunk of a data owner's masked update sent as blobs: their versioned hashes (each blob
#      carries BLOB_WORDS words, the update's last blob the rest).
event UpdateBlobs:
    task: indexed(uint256)
    round: indexed(uint256)
    do: indexed(address)
    chunk_index: uint256
    blob_hashes: DynArray[bytes32, MAX_CHUNK_BLOBS]

# @dev A data owner's masked update is complete.
event UpdateSubmitted:
    task: indexed(uint256)
    round: indexed(uint256)
    do: indexed(address)
    digest: bytes32

# @dev A submitter's unmask message was accepted.
event Unmasked:
    task: indexed(uint256)
    round: indexed(uint256)
    do: indexed(address)
    group: uint256
    count: uint256

# @dev A group of a round finalized (its submitters are credited) or failed.
event GroupResolved:
    task: indexed(uint256)
    round: indexed(uint256)
    group: indexed(uint256)
    result: uint256
    submitters: uint256


@view
@external
def update_words(task: uint256) -> uint256:
    """
    @notice Words `W` of one complete masked update of `task`.
    """
    return self._update_words(task)


@view
@external
def chunk_count(task: uint256, round: uint256, do: address) -> uint256:
    """
    @notice Chunks `do` submitted in `round`.
    """
    return self._progress[task][round][do] >> 128


@view
@external
def words_received(task: uint256, round: uint256, do: address) -> uint256:
    """
    @notice Words `do` submitted in `round`.
    """
    return self._progress[task][round][do] % 2**128


@view
@external
def court_terms(task: uint256) -> CourtTerms:
    """
    @notice The phase, round and deadline of `task` with the terms the shares court reads:
            threshold, reward per data owner, token and SETTLE's duration.
    """
    return CourtTerms(
        phase=self.task_phase[task],
        round=self.current_round[task],
        deadline=self.deadline[task],
        threshold=self.task_config[task].threshold,
        reward_per_do=self.task_config[task].reward_per_do,
        token=self.task_config[task].token,
        share_duration=self.task_config[task].share_duration,
    )


@view
@internal
def _update_words(task: uint256) -> uint256:
    lanes: uint256 = 256 // self.task_config[task].lane_bits
    return (self.task_config[task].d + lanes - 1) // lanes


@internal
def _create(owner: address, config: TaskConfig, spec_hash: bytes32) -> uint256:
    """
    @dev Check and store a new task's configuration and open its REGISTER phase; `spec_hash` is
         the keccak256 of the spec bytes the task publishes.
    """
    assert config.model_hash != empty(bytes32), "rounds: empty model hash"
    assert config.d > 0 and config.d <= MAX_PARAMS, "rounds: bad d"
    assert config.lane_bits == 16 or config.lane_bits == 32, "rounds: bad lane bits"
    assert config.scale_bits < config.lane_bits, "rounds: bad scale bits"
    assert config.clip_norm_micro > 0, "rounds: zero clip norm"
    assert config.rounds > 0 and config.rounds <= MAX_ROUNDS, "rounds: bad rounds"
    assert config.max_dos > 0 and config.max_dos <= registry.MAX_DOS, "rounds: bad max_dos"
    assert config.group_size >= 2 and config.group_size <= registry.MAX_GROUP_SIZE, "rounds: bad group size"
    assert config.min_dos >= config.group_size and config.min_dos <= config.max_dos, "rounds: bad min_dos"
    assert config.threshold >= 2 and config.threshold <= config.group_size, "rounds: bad threshold"
    # @dev the count lane of a group's sum must not wrap: groups have up to 2m - 1 members, each
    #      counting at most `sample_cap`, so (2m - 1) * sample_cap <= 2**(lane_bits - 1) - 1;
    #      lane_bits is 16 or 32 and 2 <= m <= 32 (checked above), so nothing here can wrap
    assert config.sample_cap > 0 and config.sample_cap <= unsafe_div(max_value(uint256) >> unsafe_sub(257, config.lane_bits), unsafe_sub(unsafe_add(config.group_size, config.group_size), 1)), "rounds: bad sample cap"
    assert config.reward_per_do > 0, "rounds: zero reward"
    assert config.reward_per_do <= max_value(uint256) // (config.max_dos * config.rounds), "rounds: reward too large"
    for duration: uint256 in [config.register_duration, config.share_duration, config.submit_duration, config.unmask_duration]:
        assert duration >= MIN_DURATION and duration <= MAX_DURATION, "rounds: bad duration"
    assert config.data_path <= DATA_PATH_DIRECT, "rounds: bad data path"
    assert spec_hash == config.spec_hash, "rounds: spec hash mismatch"
    task: uint256 = self.task_count + 1
    self.task_count = task
    self.task_config[task] = config
    self.task_owner[task] = owner
    log TaskCreated(task=task, owner=owner, config=config)
    self._enter(task, 0, PHASE_REGISTER, config.register_duration)
    return task


@internal
def _advance(task: uint256, court: SharesCourt, desk: DeliveryDesk) -> bool:
    """
    @dev Move `task` to its next phase, after the phase's deadline or as soon as it is complete
         (`_complete`). REGISTER cancels the task below `min_dos` or without the round-0 model,
         and otherwise enters DRAW, remembering its block. DRAW, from a later block, draws the
         groups from that block's hash and opens round 0. SETTLE excludes every dealer a
         complaint is still open against. SUBMIT fails the groups below `t` submitters, or on a
         direct task enters DELIVERY; DELIVERY first excludes every challenged data owner that
         did not answer (the desk's `settle`), then fails the groups below `t`. UNMASK
         fails the groups still pending. ROUND_DONE (the model owner let its window to open the
         next round pass) ends the task.
    @return Whether the task was cancelled: its escrow is the caller's to return.
    """
    phase: uint256 = self.task_phase[task]
    assert phase != PHASE_NONE, "rounds: no such task"
    assert phase != PHASE_ENDED and phase != PHASE_CANCELLED, "rounds: task over"
    round: uint256 = self.current_round[task]
    assert block.timestamp >= self.deadline[task] or self._complete(task, phase, round, court, desk), "rounds: phase not over"
    if phase == PHASE_REGISTER:
        members: uint256 = registry._count(task)
        published: bool = self._model_ready(task, 0, self.task_config[task].model_hash, desk)
        if members < self.task_config[task].min_dos or not published:
            self._cancel(task, members, published)
            return True
        registry.draw_block[task] = block.number
        self._enter(task, 0, PHASE_DRAW, 0)
    elif phase == PHASE_DRAW:
        target: uint256 = registry.draw_block[task]
        assert block.number > target, "rounds: draw not ready"
        seed: bytes32 = empty(bytes32)
        if block.number - target <= 256:
            seed = blockhash(target)
        if seed == empty(bytes32):
            # @dev the hash is out of reach (over 256 blocks old): draw from this block's instead
            registry.draw_block[task] = block.number
            return False
        registry._fix_groups(task, self.task_config[task].group_size, keccak256(abi_encode(seed, task)))
        self._open(task, 0, self.task_config[task].model_hash)
    elif phase == PHASE_SHARE:
        self._enter(task, round, PHASE_SETTLE, self.task_config[task].share_duration)
    elif phase == PHASE_SETTLE:
        for dealer: address in staticcall court.accused_of(task, round):
            if staticcall court.open_against(task, round, dealer) > 0:
                self._exclude(task, round, dealer, registry.group_of[task][dealer])
                log DealerExcluded(task=task, round=round, dealer=dealer)
        self._enter(task, round, PHASE_SUBMIT, self.task_config[task].submit_duration)
    elif phase == PHASE_SUBMIT and self.task_config[task].data_path == DATA_PATH_DIRECT:
        self._enter(task, round, PHASE_DELIVERY, self.task_config[task].submit_duration)
    elif phase == PHASE_SUBMIT or phase == PHASE_DELIVERY:
        if phase == PHASE_DELIVERY:
            # @dev the desk excludes each unanswered challenge's data owner (`_unsubmit`)
            extcall desk.settle(task, round)
        self._close_submit(task, round, registry.group_count[task])
    elif phase == PHASE_UNMASK:
        self._close_unmask(task, round, registry.group_count[task])
    else:
        self._enter(task, round, PHASE_ENDED, 0)
    return False


@view
@internal
def _complete(task: uint256, phase: uint256, round: uint256, court: SharesCourt, desk: DeliveryDesk) -> bool:
    """
    @dev Whether `phase` may close before its deadline. REGISTER: `max_dos` registered and the
         round-0 model is published. DRAW waits for a later block, never for its deadline;
         DELIVERY for its deadline or the model owner, a rule the desk's `settle` enforces.
         SHARE: every member committed. SETTLE: every committer settled and no complaint is open.
         SUBMIT: every committer submitted or was exposed. UNMASK closes early only inside
         `_finalize_group`, ROUND_DONE never.
    """
    if phase == PHASE_REGISTER:
        return registry._count(task) == self.task_config[task].max_dos and self._model_ready(task, 0, self.task_config[task].model_hash, desk)
    if phase == PHASE_DRAW or phase == PHASE_DELIVERY:
        return True
    if phase == PHASE_SHARE:
        return self.round_committed[task][round] == registry._count(task)
    if phase == PHASE_SETTLE:
        return staticcall court.round_settled(task, round) == self.round_committed[task][round] and staticcall court.round_open(task, round) == 0
    if phase == PHASE_SUBMIT:
        return self.round_submitted[task][round] + self.round_exposed[task][round] == self.round_committed[task][round]
    return False


@view
@internal
def _model_ready(task: uint256, round: uint256, model_hash: bytes32, desk: DeliveryDesk) -> bool:
    """
    @dev Whether a round may start on `model_hash`: its bytes were published with that digest,
         or the task is direct (its model's bytes are served off-chain, checked against the hash).
    """
    return self.task_config[task].data_path == DATA_PATH_DIRECT or staticcall desk.model_digest(task, round) == model_hash


@internal
def _enter(task: uint256, round: uint256, phase: uint256, duration: uint256):
    """
    @dev Move a task to `phase` of `round`, ending `duration` seconds from now.
    """
    self.task_phase[task] = phase
    self.current_round[task] = round
    end: uint256 = block.timestamp + duration
    self.deadline[task] = end
    log PhaseChanged(task=task, round=round, phase=phase, deadline=end)


@view
@internal
def _expect(task: uint256, round: uint256, phase: uint256):
    """
    @dev Revert unless `task` is in `phase` of `round` and the phase's deadline has not passed.
    """
    current: uint256 = self.task_phase[task]
    assert current != PHASE_NONE, "rounds: no such task"
    assert current == phase, "rounds: wrong phase"
    assert round == self.current_round[task], "rounds: wrong round"
    assert block.timestamp < self.deadline[task], "rounds: deadline passed"


@view
@internal
def _expect_next(task: uint256, round: uint256):
    """
    @dev Revert unless `task` is between rounds, `round` is the next one, and the model owner's
         window to open it has not passed.
    """
    current: uint256 = self.task_phase[task]
    assert current == PHASE_ROUND_DONE, "rounds: wrong phase"
    assert round == self.current_round[task] + 1, "rounds: wrong round"
    assert block.timestamp < self.deadline[task], "rounds: deadline passed"


@view
@internal
def _expect_owner(task: uint256, caller: address):
    assert self.task_phase[task] != PHASE_NONE, "rounds: no such task"
    assert caller == self.task_owner[task], "rounds: not the model owner"


@internal
def _cancel(task: uint256, members: uint256, model_published: bool):
    log TaskCancelled(task=task, members=members, model_published=model_published)
    self._enter(task, 0, PHASE_CANCELLED, 0)


@internal
def _open(task: uint256, round: uint256, model_hash: bytes32):
    """
    @dev Start the SHARE phase of `round`: every member of the task takes part in it.
    """
    self.round_model_hash[task][round] = model_hash
    self.rounds_opened[task] = round + 1
    self._enter(task, round, PHASE_SHARE, self.task_config[task].share_duration)


@internal
def _commit(task: uint256, round: uint256, do: address, group: uint256):
    assert self.do_status[task][round][do] == STATUS_NONE, "rounds: already committed"
    self.do_status[task][round][do] = STATUS_COMMITTED
    self.commits_made[task][do] += 1
    self.group_committed[task][round][group] += 1
    self.round_committed[task][round] += 1


@internal
def _exclude(task: uint256, round: uint256, do: address, group: uint256):
    """
    @dev Take back a commitment whose dealer left a complaint unanswered: the round treats it as
         never made, and a commitment missing from the count forfeits the bond.
    """
    self.do_status[task][round][do] = STATUS_NONE
    if self.exposed[task][round][do]:
        # @dev it answered another complaint: no longer a committer SUBMIT waits for or excuses
        self.round_exposed[task][round] -= 1
    self.commits_made[task][do] -= 1
    self.group_committed[task][round][group] -= 1
    self.round_committed[task][round] -= 1


@internal
def _expose(task: uint256, round: uint256, dealer: address):
    """
    @dev Bar a dealer whose complaint answer made shares public from submitting in `round`.
    """
    if not self.exposed[task][round][dealer]:
        self.exposed[task][round][dealer] = True
        self.round_exposed[task][round] += 1


@internal
def _submit_chunk(task: uint256, round: uint256, do: address, group: uint256, chunk_index: uint256, size: uint256, chunk_hash: bytes32, blobs: bool):
    """
    @dev Fold one chunk, of `size` words hashing to `chunk_hash`, into the data owner's running
         digest. The words themselves never reach this function: the entry point hashes and logs
         them straight from calldata (an internal argument would copy 128 KiB more memory).
         `blobs`: a chunk of blobs, `size` words of blob capacity; only a blob task takes one,
         and its update's last blob is not full, so the chunk counts as the words still missing.
    """
    self._expect_committed(task, round, do)
    progress: uint256 = self._progress[task][round][do]
    # @dev both halves stay far below 2**128: chunks <= words <= MAX_PARAMS
    chunks: uint256 = progress >> 128
    assert chunk_index == chunks, "rounds: wrong chunk index"
    assert size > 0, "rounds: empty chunk"
    received: uint256 = (progress % 2**128) + size
    total: uint256 = self._update_words(task)
    if blobs:
        assert self.task_config[task].data_path == DATA_PATH_BLOB, "rounds: not a blob task"
        received = min(received, total)
    assert received <= total, "rounds: too many words"
    digest: bytes32 = keccak256(concat(self.update_digest[task][round][do], chunk_hash))
    self.update_digest[task][round][do] = digest
    self._progress[task][round][do] = ((chunks + 1) << 128) | received
    if received == total:
        self._submitted(task, round, do, group, digest)


@internal
def _commit_update(task: uint256, round: uint256, do: address, group: uint256, digest: bytes32):
    """
    @dev A direct submission: the data owner committed to its update's digest (the desk checked
         the phase, the word count and that no chunk of it is on-chain) and counts as submitted.
    """
    self._expect_committed(task, round, do)
    self.update_digest[task][round][do] = digest
    self._submitted(task, round, do, group, digest)


@internal
def _submitted(task: uint256, round: uint256, do: address, group: uint256, digest: bytes32):
    self.do_status[task][round][do] = STATUS_SUBMITTED
    self.group_submitted[task][round][group] += 1
    self.round_submitted[task][round] += 1
    log UpdateSubmitted(task=task, round=round, do=do, digest=digest)


@internal
def _unsubmit(task: uint256, round: uint256, do: address, group: uint256):
    """
    @dev Take back a direct submission whose challenge went unanswered: the data owner is a
         committed non-submitter again, so UNMASK reveals its mask key and it is not paid.
    """
    self.do_status[task][round][do] = STATUS_COMMITTED
    self.group_submitted[task][round][group] -= 1
    self.round_submitted[task][round] -= 1


@view
@internal
def _expect_committed(task: uint256, round: uint256, do: address):
    status: uint256 = self.do_status[task][round][do]
    assert status != STATUS_NONE, "rounds: not committed"
    assert status == STATUS_COMMITTED, "rounds: already submitted"
    assert not self.exposed[task][round][do], "rounds: shares exposed"


@internal
def _close_submit(task: uint256, round: uint256, groups: uint256):
    """
    @dev End SUBMIT: a group with fewer than `t` submitters fails (privacy floor: the sum of
         fewer than `t` updates must never be revealed); the others wait for unmask messages.
    """
    threshold: uint256 = self.task_config[task].threshold
    pending: uint256 = 0
    for g: uint256 in range(groups, bound=registry.MAX_GROUPS):
        if self.group_submitted[task][round][g] < threshold:
            self._resolve_group(task, round, g, GROUP_FAILED)
        else:
            pending += 1
    self.round_pending[task][round] = pending
    if pending == 0:
        self._finish_round(task, round)
    else:
        self._enter(task, round, PHASE_UNMASK, self.task_config[task].unmask_duration)


@internal
def _close_unmask(task: uint256, round: uint256, groups: uint256):
    """
    @dev End UNMASK at its deadline: every group still below `t` unmask messages fails.
    """
    for g: uint256 in range(groups, bound=registry.MAX_GROUPS):
        # @dev groups below `t` submitters already failed when SUBMIT closed
        if self.group_result[task][round][g] == GROUP_PENDING:
            self._resolve_group(task, round, g, GROUP_FAILED)
    self.round_pending[task][round] = 0
    self._finish_round(task, round)


@internal
def _unmask(task: uint256, round: uint256, do: address, group: uint256) -> bool:
    """
    @dev Count an accepted unmask message.
    @return Whether it was the group's `t`-th, which finalizes the group.
    """
    status: uint256 = self.do_status[task][round][do]
    assert status != STATUS_UNMASKED, "rounds: already unmasked"
    assert status == STATUS_SUBMITTED, "rounds: not a submitter"
    assert self.group_result[task][round][group] == GROUP_PENDING, "rounds: group not pending"
    self.do_status[task][round][do] = STATUS_UNMASKED
    count: uint256 = self.unmask_count[task][round][group] + 1
    self.unmask_count[task][round][group] = count
    log Unmasked(task=task, round=round, do=do, group=group, count=count)
    return count == self.task_config[task].threshold


@internal
def _finalize_group(task: uint256, round: uint256, group: uint256):
    """
    @dev Mark a group finalized; when it was the last pending group the round is resolved.
    """
    self._resolve_group(task, round, group, GROUP_FINALIZED)
    pending: uint256 = self.round_pending[task][round] - 1
    self.round_pending[task][round] = pending
    if pending == 0:
        self._finish_round(task, round)


@internal
def _resolve_group(task: uint256, round: uint256, group: uint256, result: uint256):
    self.group_result[task][round][group] = result
    log GroupResolved(task=task, round=round, group=group, result=result, submitters=self.group_submitted[task][round][group])


@internal
def _finish_round(task: uint256, round: uint256):
    """
    @dev A resolved round ends the task if it was the last; otherwise the model owner has
         `register_duration` seconds to open the next one.
    """
    if round + 1 == self.task_config[task].rounds:
        self._enter(task, round, PHASE_ENDED, 0)
    else:
        self._enter(task, round, PHASE_ROUND_DONE, self.task_config[task].register_duration)
