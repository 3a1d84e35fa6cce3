# pragma version ~=0.4.3
"""
@title OmniLytics delivery desk: public models, and the direct data path's commitments,
       challenges and answers
@notice Every task's model owner publishes each round's public model here (`publish_model`;
        the market starts a round only on the digest published here, except on a direct task,
        whose model's bytes are served off-chain and checked by data owners against the hash).
        On a direct task (`data_path = 2`) a data owner's masked update travels to the model
        owner over their authenticated channel, and the chain holds only its commitment: in
        SUBMIT the data owner commits `(digest, words)` here (`commit_update`) and counts as
        submitted. In DELIVERY the model owner may challenge a direct submitter whose words it
        lacks or that mismatch the digest, paying the task's challenge fee with the challenge;
        the challenged data owner answers by posting its words here, as event chunks (`answer`)
        or blobs (`answer_blobs`), folded into the same running digest the market's `submit` and
        `submit_blobs` keep. A complete answer must give the committed digest, and earns the
        fee. When DELIVERY closes the market asks the desk which challenges went unanswered
        (`settle`): those data owners are excluded like members that never submitted, and their
        fees go back to the model owner. DELIVERY closes at its deadline, or earlier once the
        model owner, with no challenge open, says it has every update (`close_delivery`).
        The model owner's channel key, endpoint and challenge fee are the task's delivery terms,
        set once in REGISTER (`set_terms`), so data owners read them before they register.
@dev A separate contract because the market is near the EIP-170 code-size limit, bound to one
     market at deploy as the shares court is (`bind`). Formats in docs/interfaces.md §3c, §7
     and §11.
     The desk holds the fees of open challenges and its own credits (withdrawn with `withdraw`):
     its balance per token is the credits plus the fees of open challenges.
"""

# @dev formats, limits and numbers only: the market owns these modules' state
from .modules import registry
from .modules import rounds

# @dev challenge fees: pulled, held and credited as the market does with escrow and bonds
from .modules import escrow
initializes: escrow

# @dev the public models' digests (and, published on-chain, their bytes)
from .modules import models
initializes: models

# @dev The market's views and callbacks this desk relies on.
interface DataMarket:
    def task_phase_of(task: uint256) -> (uint256, uint256, uint256): view
    def task_owner(task: uint256) -> address: view
    def task_config(task: uint256) -> rounds.TaskConfig: view
    def court_terms(task: uint256) -> rounds.CourtTerms: view
    def update_words(task: uint256) -> uint256: view
    def update_digest(task: uint256, round: uint256, do: address) -> bytes32: view
    def do_status(task: uint256, round: uint256, do: address) -> uint256: view
    def words_received(task: uint256, round: uint256, do: address) -> uint256: view
    def record_delivery(task: uint256, round: uint256, do: address, digest: bytes32): nonpayable

exports: (escrow.withdraw, escrow.credits, models.model_digest, models.model_chunks)

# @dev A challenge's state (`challenge_state`).
CHALLENGE_NONE: constant(uint256) = 0
CHALLENGE_OPEN: constant(uint256) = 1
CHALLENGE_ANSWERED: constant(uint256) = 2
CHALLENGE_MISSED: constant(uint256) = 3

# @dev The market this desk serves; set once, by the market's constructor.
market: public(DataMarket)
# @dev A direct task's challenge fee, in the task's token (non-zero once its terms are set).
challenge_fee: public(HashMap[uint256, uint256])
# @dev Static public key of the model owner's authenticated channel for a direct task.
owner_channel_key: public(HashMap[uint256, bytes32])
# @dev Where the model owner's channel listens (data owners deliver and fetch the model there).
owner_endpoint: public(HashMap[uint256, String[registry.MAX_ENDPOINT]])
# @dev State of the challenge against a data owner in a round (CHALLENGE_*).
challenge_state: public(HashMap[uint256, HashMap[uint256, HashMap[address, uint256]]])
# @dev Challenges of a round not answered yet.
round_open: public(HashMap[uint256, HashMap[uint256, uint256]])
# @dev Whether the model owner closed a round's DELIVERY early (no challenge open).
delivery_done: public(HashMap[uint256, HashMap[uint256, bool]])
# @dev Running digest of a challenged data owner's answer (docs/interfaces.md §3).
answer_digest: public(HashMap[uint256, HashMap[uint256, HashMap[address, bytes32]]])
# @dev Data owners challenged in a round, each once.
_challenged: HashMap[uint256, HashMap[uint256, DynArray[address, registry.MAX_DOS]]]
# @dev Chunks (high 128 bits) and words (low 128 bits) of an answer so far.
_progress: HashMap[uint256, HashMap[uint256, HashMap[address, uint256]]]

# @dev The model owner set a direct task's delivery terms.
event DeliveryTerms:
    task: indexed(uint256)
    channel_pk: bytes32
    endpoint: String[registry.MAX_ENDPOINT]
    fee: uint256

# @dev A data owner committed to its masked update, whose words it delivers off-chain.
event UpdateCommitted:
    task: indexed(uint256)
    round: indexed(uint256)
    do: indexed(address)
    digest: bytes32
    words: uint256

# @dev The model owner challenged a direct submitter, with the fee.
event Challenged:
    task: indexed(uint256)
    round: indexed(uint256)
    do: indexed(address)
    fee: uint256

# @dev A challenged data owner posted all its words and they gave the committed digest.
event ChallengeAnswered:
    task: indexed(uint256)
    round: indexed(uint256)
    do: indexed(address)

# @dev A challenge was left unanswered when DELIVERY closed: the data owner is excluded.
event ChallengeMissed:
    task: indexed(uint256)
    round: indexed(uint256)
    do: indexed(address)

# @dev The model owner closed DELIVERY early, with no challenge open.
event DeliveryClosed:
    task: indexed(uint256)
    round: indexed(uint256)


@external
def bind():
    """
    @notice Tie this desk to its market; the market calls it once, from its constructor.
    """
    assert self.market.address == empty(address), "delivery: already bound"
    self.market = DataMarket(msg.sender)


@external
def publish_model(task: uint256, round: uint256, data: Bytes[models.MAX_MODEL_CHUNK]):
    """
    @notice Publish the next chunk of a round's public model bytes (they live only in the
            `ModelChunk` event; their running digest is kept).
    @dev Round 0 during REGISTER; round r > 0 between rounds, while r - 1 is resolved and r is not
         yet open. The round starts only if this digest equals the model hash given for it (on a
         direct task the market takes the hash alone).
    @param task The task.
    @param round The round whose model this is.
    @param data The chunk, 1 to MAX_MODEL_CHUNK bytes.
    """
    self._expect_owner(task)
    if round == 0:
        self._expect_phase(task, 0, rounds.PHASE_REGISTER)
    else:
        self._expect_phase(task, round - 1, rounds.PHASE_ROUND_DONE)
    models._publish(task, round, data)


@external
def set_terms(task: uint256, channel_pk: bytes32, endpoint: String[registry.MAX_ENDPOINT], fee: uint256):
    """
    @notice Register the model owner's channel key and endpoint for a direct task, and the
            task's challenge fee; once, in REGISTER, before data owners rely on them.
    @param task The task (a direct one).
    @param channel_pk The static public key of the model owner's authenticated channel.
    @param endpoint Where the model owner's channel listens.
    @param fee What each challenge costs the model owner and pays an answering data owner, in
           the task's token.
    """
    self._expect_owner(task)
    self._expect_phase(task, 0, rounds.PHASE_REGISTER)
    assert (staticcall self.market.task_config(task)).data_path == rounds.DATA_PATH_DIRECT, "delivery: not a direct task"
    assert self.challenge_fee[task] == 0, "delivery: terms already set"
    assert channel_pk != empty(bytes32), "delivery: empty channel key"
    assert len(endpoint) > 0, "delivery: empty endpoint"
    assert fee > 0, "delivery: zero fee"
    self.challenge_fee[task] = fee
    self.owner_channel_key[task] = channel_pk
    self.owner_endpoint[task] = endpoint
    log DeliveryTerms(task=task, channel_pk=channel_pk, endpoint=endpoint, fee=fee)


@external
def commit_update(task: uint256, round: uint256, digest: bytes32, words: uint256):
    """
    @notice Commit to the caller's masked update of a direct task, whose words it delivers to
            the model owner off-chain; the caller counts as submitted at once.
    @dev `digest` is the running digest its answer would leave (docs/interfaces.md §3c); the
         market checks the caller's status (committed, not exposed) and stores it as the caller's
         `update_digest`.
    @param task The task (a direct one).
    @param round The current round.
    @param digest The update's digest.
    @param words The update's word count, `update_words(task)`.
    """
    self._expect_phase(task, round, rounds.PHASE_SUBMIT)
    assert self.challenge_fee[task] != 0, "delivery: no terms"
    market: DataMarket = self.market
    assert words == staticcall market.update_words(task), "delivery: wrong word count"
    assert digest != empty(bytes32), "delivery: empty digest"
    # @dev an update begun as on-chain chunks is finished there, never committed over
    assert staticcall market.words_received(task, round, msg.sender) == 0, "delivery: update begun on-chain"
    extcall market.record_delivery(task, round, msg.sender, digest)
    log UpdateCommitted(task=task, round=round, do=msg.sender, digest=digest, words=words)


@external
@payable
@nonreentrant
def challenge(task: uint256, round: uint256, do: address):
    """
    @notice Challenge a data owner's direct delivery (model owner, in DELIVERY), paying the
            task's challenge fee (ETH as `msg.value`, or a token approved to this desk): it goes
            to the data owner if it answers, back to the model owner if it does not.
    @param task The task.
    @param round The current round.
    @param do A data owner that committed its update directly this round.
    """
    self._expect_owner(task)
    self._expect_phase(task, round, rounds.PHASE_DELIVERY)
    market: DataMarket = self.market
    assert not self.delivery_done[task][round], "delivery: closed"
    assert staticcall market.do_status(task, round, do) == rounds.STATUS_SUBMITTED, "delivery: not a submitter"
    assert staticcall market.words_received(task, round, do) == 0, "delivery: update on-chain"
    assert self.challenge_state[task][round][do] == CHALLENGE_NONE, "delivery: already challenged"
    fee: uint256 = self.challenge_fee[task]
    self.challenge_state[task][round][do] = CHALLENGE_OPEN
    self._challenged[task][round].append(do)
    self.round_open[task][round] += 1
    escrow._pull((staticcall market.court_terms(task)).token, msg.sender, fee, msg.value, "delivery: wrong fee")
    log Challenged(task=task, round=round, do=do, fee=fee)


@external
def answer(task: uint256, round: uint256, chunk_index: uint256, words: DynArray[uint256, rounds.MAX_CHUNK_WORDS]):
    """
    @notice Answer a challenge with the next chunk of the caller's masked update, as the market's
            `submit` takes it; the last chunk must leave the committed digest. Chunk 0 starts
            the answer over.
    @param task The task.
    @param round The current round.
    @param chunk_index Chunks of the answer posted so far (0 restarts it).
    @param words The chunk's words, at least one.
    """
    self._expect_phase(task, round, rounds.PHASE_DELIVERY)
    chunk_hash: bytes32 = keccak256(abi_encode(words))
    self._answer_chunk(task, round, chunk_index, len(words), chunk_hash, False)
    log rounds.UpdateChunk(task=task, round=round, do=msg.sender, chunk_index=chunk_index, words=words)


@external
def answer_blobs(task: uint256, round: uint256, chunk_index: uint256):
    """
    @notice Answer a challenge with the next chunk of the caller's masked update as this
            transaction's blobs, as the market's `submit_blobs` takes them.
    @param task The task.
    @param round The current round.
    @param chunk_index Chunks of the answer posted so far (0 restarts it).
    """
    self._expect_phase(task, round, rounds.PHASE_DELIVERY)
    hashes: DynArray[bytes32, rounds.MAX_CHUNK_BLOBS] = []
    for i: uint256 in range(rounds.MAX_CHUNK_BLOBS):
        blob_hash: bytes32 = blobhash(i)
        if blob_hash == empty(bytes32):
            break
        hashes.append(blob_hash)
    # @dev at most MAX_CHUNK_BLOBS * BLOB_WORDS words: no overflow
    size: uint256 = unsafe_mul(len(hashes), rounds.BLOB_WORDS)
    self._answer_chunk(task, round, chunk_index, size, keccak256(abi_encode(hashes)), True)
    log rounds.UpdateBlobs(task=task, round=round, do=msg.sender, chunk_index=chunk_index, blob_hashes=hashes)


@external
def close_delivery(task: uint256, round: uint256):
    """
    @notice Let DELIVERY close before its deadline (model owner, with no challenge open): the
            model owner has every update it needs. Anyone may then `advance` the task.
    @param task The task.
    @param round The current round.
    """
    self._expect_owner(task)
    self._expect_phase(task, round, rounds.PHASE_DELIVERY)
    assert self.round_open[task][round] == 0, "delivery: challenges open"
    self.delivery_done[task][round] = True
    log DeliveryClosed(task=task, round=round)


@external
def settle(task: uint256, round: uint256):
    """
    @notice Close a round's DELIVERY (the market only, from `advance`): allowed from its
            deadline on, or once the model owner closed it. Every challenge still open is
            missed: its fee goes back to the model owner and the market excludes its data
            owner (`record_delivery` with a zero digest).
    @param task The task.
    @param round The current round.
    """
    market: DataMarket = self.market
    assert msg.sender == market.address, "delivery: not the market"
    phase: uint256 = 0
    current: uint256 = 0
    deadline: uint256 = 0
    phase, current, deadline = staticcall market.task_phase_of(task)
    assert block.timestamp >= deadline or self.delivery_done[task][round], "rounds: phase not over"
    if self.round_open[task][round] == 0:
        return
    token: address = (staticcall market.court_terms(task)).token
    owner: address = staticcall market.task_owner(task)
    fee: uint256 = self.challenge_fee[task]
    for do: address in self._challenged[task][round]:
        if self.challenge_state[task][round][do] != CHALLENGE_OPEN:
            continue
        self.challenge_state[task][round][do] = CHALLENGE_MISSED
        self._credit(task, token, owner, fee)
        log ChallengeMissed(task=task, round=round, do=do)
        extcall market.record_delivery(task, round, do, empty(bytes32))
    self.round_open[task][round] = 0


@view
@external
def challenged(task: uint256, round: uint256) -> DynArray[address, registry.MAX_DOS]:
    """
    @notice Every data owner challenged in a round (answered or not), each once.
    """
    return self._challenged[task][round]


@view
@external
def answer_chunks(task: uint256, round: uint256, do: address) -> uint256:
    """
    @notice Chunks of `do`'s answer posted so far.
    """
    return self._progress[task][round][do] >> 128


@view
@external
def answer_words(task: uint256, round: uint256, do: address) -> uint256:
    """
    @notice Words of `do`'s answer posted so far.
    """
    return self._progress[task][round][do] % 2**128


@view
@internal
def _expect_owner(task: uint256):
    owner: address = staticcall self.market.task_owner(task)
    assert owner != empty(address), "delivery: no such task"
    assert msg.sender == owner, "delivery: not the model owner"


@view
@internal
def _expect_phase(task: uint256, round: uint256, expected: uint256):
    """
    @dev Revert unless `task` is in phase `expected` of `round` before its deadline.
    """
    phase: uint256 = 0
    current: uint256 = 0
    deadline: uint256 = 0
    phase, current, deadline = staticcall self.market.task_phase_of(task)
    assert phase == expected, "delivery: wrong phase"
    assert round == current, "delivery: wrong round"
    assert block.timestamp < deadline, "delivery: deadline passed"


@internal
def _answer_chunk(task: uint256, round: uint256, chunk_index: uint256, size: uint256, chunk_hash: bytes32, blobs: bool):
    """
    @dev Fold one chunk of an answer into its running digest, as `rounds._submit_chunk` folds a
         submission's; on the last word, check the digest and pay the fee. Chunk 0 restarts.
    """
    assert self.challenge_state[task][round][msg.sender] == CHALLENGE_OPEN, "delivery: no open challenge"
    assert size > 0, "delivery: empty chunk"
    progress: uint256 = self._progress[task][round][msg.sender]
    prev: bytes32 = self.answer_digest[task][round][msg.sender]
    if chunk_index == 0:
        progress = 0
        prev = empty(bytes32)
    # @dev both halves stay far below 2**128: chunks <= words <= MAX_PARAMS
    chunks: uint256 = progress >> 128
    assert chunk_index == chunks, "delivery: wrong chunk index"
    received: uint256 = (progress % 2**128) + size
    market: DataMarket = self.market
    total: uint256 = staticcall market.update_words(task)
    if blobs:
        received = min(received, total)
    assert received <= total, "delivery: too many words"
    digest: bytes32 = keccak256(concat(prev, chunk_hash))
    self.answer_digest[task][round][msg.sender] = digest
    self._progress[task][round][msg.sender] = ((chunks + 1) << 128) | received
    if received < total:
        return
    assert digest == staticcall market.update_digest(task, round, msg.sender), "delivery: digest mismatch"
    self.challenge_state[task][round][msg.sender] = CHALLENGE_ANSWERED
    self.round_open[task][round] -= 1
    self._credit(task, (staticcall market.court_terms(task)).token, msg.sender, self.challenge_fee[task])
    log ChallengeAnswered(task=task, round=round, do=msg.sender)


@internal
def _credit(task: uint256, token: address, to: address, amount: uint256):
    escrow.credits[token][to] += amount
    log escrow.Credited(task=task, token=token, account=to, amount=amount)
