"""Numbers shared with the market contract and between the protocol modules.

This module owns the constants of ``docs/interfaces.md`` §1 and §7 (secret kinds, phases, DO
statuses, group results) and the size limits both sides enforce. The values must stay equal to
the contract's; a differential test against ``contracts/DataMarket.vy`` keeps them honest.
"""

from typing import Final

# Secret kinds (§1): which of a dealer's two secrets a Shamir share belongs to.
KIND_SELF_SEED: Final = 0
KIND_MASK_KEY: Final = 1
SECRET_KINDS: Final = (KIND_SELF_SEED, KIND_MASK_KEY)

# Task phases, as returned by ``task_phase(task)`` (§7).
PHASE_NONE: Final = 0
PHASE_REGISTER: Final = 1
PHASE_SHARE: Final = 2
PHASE_SUBMIT: Final = 3
PHASE_UNMASK: Final = 4
PHASE_ROUND_DONE: Final = 5
PHASE_ENDED: Final = 6
PHASE_CANCELLED: Final = 7
# Between SHARE and SUBMIT: holders complain about bad or missing shares, dealers answer on-chain.
PHASE_SETTLE: Final = 8

# A DO's status in one round, as returned by ``do_status(task, round, do)`` (§7).
STATUS_NONE: Final = 0
STATUS_COMMITTED: Final = 1
STATUS_SUBMITTED: Final = 2
STATUS_UNMASKED: Final = 3

# A group's result in one round, as returned by ``group_result(task, round, group)`` (§7).
GROUP_PENDING: Final = 0
GROUP_FINALIZED: Final = 1
GROUP_FAILED: Final = 2

# How a task's masked updates reach the chain (the config's ``data_path``, §3 and §3b).
DATA_PATH_EVENT: Final = 0
DATA_PATH_BLOB: Final = 1
DATA_PATHS: Final = {"event": DATA_PATH_EVENT, "blob": DATA_PATH_BLOB}

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
# The name protocol.round uses for the same bound (the contract's own MAX_GROUP_SIZE, 32, bounds
# the configured m instead).
MAX_GROUP_SIZE: Final = MAX_GROUP
# Largest Shamir threshold: t <= m <= the contract's registry.MAX_GROUP_SIZE; a dealer commits
# 2 t Pedersen points per round (the contract's vss.MAX_POINTS).
MAX_THRESHOLD: Final = 32

# Widths of the on-chain types the protocol hashes or packs.
WORD_BITS: Final = 256
ADDRESS_BITS: Final = 160
LANE_BITS_CHOICES: Final = (16, 32)
