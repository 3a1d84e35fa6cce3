"""The round machine's persisted record: its whole memory, and the snapshot schema (msgpack;
``RoundMachine.snapshot`` and ``restore``). It holds the round's secrets: store it privately."""

from __future__ import annotations

from typing import Final

import msgspec

from protocol.constants import (
    MAX_CHUNK_WORDS,
)
from protocol.encoding import QuantConfig
from protocol.errors import (
    CommitmentError,
    KeyAgreementError,
    RemoteProtocolError,
)
from protocol.messages import ShareDelivery, address_int
from protocol.round_messages import (
    State,
)

SNAPSHOT_VERSION: Final = 4  # 3: Pedersen blinds in deliveries; 4: settle wait, exposed


# ---------------------------------------------------------------------------------------------
# The persisted record: the machine's whole memory, and the snapshot schema.
# msgpack carries at most 64-bit integers, so addresses are stored as 20 big-endian bytes.


class Commitment(msgspec.Struct, frozen=True):
    member: bytes
    mask_public: bytes
    shares_root: bytes
    points_digest: bytes


class PeerError(msgspec.Struct, frozen=True):
    peer: bytes
    kind: str
    message: str


class Revealed(msgspec.Struct, frozen=True):
    dealer: bytes
    kind: int


class Record(msgspec.Struct, kw_only=True):
    version: int = SNAPSHOT_VERSION
    state: State = State.REGISTERED
    failure: str | None = None
    # RoundOpened
    opened: bool = False
    task: int = 0
    round: int = 0
    members: list[bytes] = []
    threshold: int = 0
    me: bytes = b""
    model_hash: bytes = b""
    lane_bits: int = 0
    scale_bits: int = 0
    clip_norm: float = 0.0
    d: int = 0
    chunk_words: int = MAX_CHUNK_WORDS
    # set when the submit phase opened
    submit_deadline: int | None = None
    # our secrets and what we dealt (one delivery per member, ours included)
    self_seed: bytes | None = None
    mask_secret: bytes | None = None
    dealt: list[ShareDelivery] = []
    # what we hold: at most one delivery per dealer, each consistent with its own proofs and,
    # once the commitments are known, with the dealer's on-chain root and key
    held: list[ShareDelivery] = []
    committed: list[Commitment] | None = None
    # SETTLE: whether we filed our complaints, and against whom; while we wait for late
    # deliveries, the commitments SETTLE found and the chain time we wait until
    settled: bool = False
    accused: list[bytes] = []
    settle_due: list[Commitment] | None = None
    settle_cutoff: int | None = None
    # our shares were made public to answer complaints: out of the round, answering on
    exposed: bool = False
    update: bytes | None = None  # quantized ring vector, little-endian lanes
    update_apart: bool = False  # a snapshot that left the update out (`snapshot(update=False)`)
    submitted: bool = False  # the masked update went out (only then may `chunks()` redo it)
    revealed: list[Revealed] = []
    peer_errors: list[PeerError] = []

    def copy(self) -> Record:
        # A deep copy through the snapshot codec: handlers mutate the copy freely, and the
        # codec is exercised on every event, not only when an actor persists.
        return decode_record(msgspec.msgpack.encode(self))

    @property
    def quant(self) -> QuantConfig:
        return QuantConfig(self.lane_bits, self.scale_bits, self.clip_norm)

    @property
    def member_ints(self) -> tuple[int, ...]:
        return tuple(address_int(m) for m in self.members)

    @property
    def me_int(self) -> int:
        return address_int(self.me)

    def commitments(self) -> dict[int, Commitment]:
        return {address_int(c.member): c for c in self.committed or ()}

    def held_from(self, dealer: int) -> ShareDelivery | None:
        return next((h for h in self.held if address_int(h.dealer) == dealer), None)


_record_decoder = msgspec.msgpack.Decoder(Record)


def decode_record(data: bytes) -> Record:
    return _record_decoder.decode(data)


PEER_ERROR_TYPES: Final[dict[str, type[RemoteProtocolError]]] = {
    "CommitmentError": CommitmentError,
    "KeyAgreementError": KeyAgreementError,
    "RemoteProtocolError": RemoteProtocolError,
}
