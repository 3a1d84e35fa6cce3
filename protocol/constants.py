"""Numbers shared with the market contract and between the protocol modules.

This module owns the constants of ``docs/interfaces.md`` §1 and §7 (secret kinds, phases, DO
statuses, group results) and the size limits both sides enforce. The values must stay equal to
the contract's; ``tests/contracts/unitary/test_constants.py`` compares each with the constant of
the same meaning in ``contracts/``.
"""

from enum import IntEnum
from typing import Final

# Secret kinds (§1): which of a dealer's two secrets a Shamir share belongs to.
KIND_SELF_SEED: Final = 0
KIND_MASK_KEY: Final = 1
SECRET_KINDS: Final = (KIND_SELF_SEED, KIND_MASK_KEY)


class Phase(IntEnum):
    """A task's phase, as ``task_phase(task)`` returns it (§7), in the order a task goes through
    them. DRAW: registration closed, the groups wait for the hash of the closing block.
    DELIVERY: direct tasks only; the model owner challenges deliveries it lacks."""

    NONE = 0
    REGISTER = 1
    DRAW = 2
    SHARE = 3
    # holders complain about bad or missing shares, dealers answer on-chain
    SETTLE = 4
    SUBMIT = 5
    DELIVERY = 6
    UNMASK = 7
    ROUND_DONE = 8
    ENDED = 9
    CANCELLED = 10


class Status(IntEnum):
    """A DO's status in one round, as ``do_status(task, round, do)`` returns it (§7)."""

    NONE = 0
    COMMITTED = 1
    SUBMITTED = 2  # all chunks in
    UNMASKED = 3


class Challenge(IntEnum):
    """A direct delivery's challenge in one round, as the desk's
    ``challenge_state(task, round, do)`` returns it (§11)."""

    NONE = 0
    OPEN = 1
    ANSWERED = 2  # the words went on-chain and gave the committed digest
    MISSED = 3  # unanswered when DELIVERY closed: the data owner was excluded


class GroupResult(IntEnum):
    """A group's result in one round, as ``group_result(task, round, group)`` returns it (§7)."""

    PENDING = 0
    FINALIZED = 1
    FAILED = 2


# The same numbers under the names the contract gives them.
PHASE_NONE: Final = Phase.NONE
PHASE_REGISTER: Final = Phase.REGISTER
PHASE_DRAW: Final = Phase.DRAW
PHASE_SHARE: Final = Phase.SHARE
PHASE_SETTLE: Final = Phase.SETTLE
PHASE_SUBMIT: Final = Phase.SUBMIT
PHASE_DELIVERY: Final = Phase.DELIVERY
PHASE_UNMASK: Final = Phase.UNMASK
PHASE_ROUND_DONE: Final = Phase.ROUND_DONE
PHASE_ENDED: Final = Phase.ENDED
PHASE_CANCELLED: Final = Phase.CANCELLED
STATUS_NONE: Final = Status.NONE
STATUS_COMMITTED: Final = Status.COMMITTED
STATUS_SUBMITTED: Final = Status.SUBMITTED
STATUS_UNMASKED: Final = Status.UNMASKED
GROUP_PENDING: Final = GroupResult.PENDING
GROUP_FINALIZED: Final = GroupResult.FINALIZED
GROUP_FAILED: Final = GroupResult.FAILED

# How a task's masked updates reach the chain (the config's ``data_path``, §3, §3b and §3c).
DATA_PATH_EVENT: Final = 0
DATA_PATH_BLOB: Final = 1
DATA_PATH_DIRECT: Final = 2
DATA_PATHS: Final = {"event": DATA_PATH_EVENT, "blob": DATA_PATH_BLOB, "direct": DATA_PATH_DIRECT}

# Size limits (§3, §4, §7).
MAX_CHUNK_WORDS: Final = 6144
# Blobs (§3b): 4096 field elements of 31 payload bytes carry 3968 words; the contract reads at
# most MAX_CHUNK_BLOBS blob hashes of a transaction (nodes allow fewer, 6 under Osaka).
BLOB_WORDS: Final = 3968
MAX_CHUNK_BLOBS: Final = 16
MAX_MODEL_CHUNK: Final = 65536
# Longest endpoint a data owner registers, in UTF-8 bytes (the contract's registry.MAX_ENDPOINT).
MAX_ENDPOINT: Final = 128
MAX_PROOF: Final = 8
SECRET_BYTES: Final = 32

# Longest member list of one group (the contract's registry.MAX_GROUP: groups of the configured
# size m, with the remainder spread over them). A dealer commits 2 leaves per member: 128
# leaves, a tree of depth 7, within MAX_PROOF siblings.
MAX_GROUP: Final = 64
assert 2 * MAX_GROUP <= 2**MAX_PROOF
# Largest configured group size m (the contract's registry.MAX_GROUP_SIZE).
MAX_GROUP_SIZE: Final = 32
# Most data owners of one task and most rounds (the contract's registry.MAX_DOS, rounds.MAX_ROUNDS).
MAX_DOS: Final = 256
MAX_ROUNDS: Final = 1024
# Largest Shamir threshold: t <= m <= the contract's registry.MAX_GROUP_SIZE; a dealer commits
# 2 t Pedersen points per round (the contract's commitments.MAX_POINT_BYTES / 64).
MAX_THRESHOLD: Final = 32
# Shortest and longest phase duration a task may ask for (the contract's rounds.MIN_DURATION
# and MAX_DURATION, seconds).
MIN_DURATION: Final = 30
MAX_DURATION: Final = 365 * 86400
# Longest canonical task spec `create_task` publishes (the contract's rounds.MAX_SPEC_BYTES); the
# largest example's is 2,113 bytes (a table of 30 columns with their statistics).
MAX_SPEC_BYTES: Final = 16384

# Widths of the on-chain types the protocol hashes or packs.
WORD_BITS: Final = 256
ADDRESS_BITS: Final = 160
LANE_BITS_CHOICES: Final = (16, 32)
