"""The delivery desk as the actors use it: the direct data path's calls, views and readers.

A mixin of `actors.chain.market.Market` (which holds the chain, the desk's address and the
receipts): the model owner's delivery terms (channel key, endpoint, challenge fee), a data
owner's commitment to its masked update, challenges and their answers (event chunks or blobs,
against the committed digest), the early close of DELIVERY, and the answered updates read back
from the desk's `UpdateChunk` / `UpdateBlobs` events (docs/interfaces.md §3c, §11).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actors.chain.base import calldata_words, post_chunks
from protocol import chain_data
from protocol.blobs import MAX_BLOBS_PER_TX, blob_chunks, words_to_blobs
from protocol.chain_data import BlobChunk, Submission
from protocol.commitments import split_chunks
from protocol.constants import MAX_CHUNK_WORDS, MAX_ENDPOINT, Challenge
from protocol.errors import ConfigError

if TYPE_CHECKING:
    from actors.chain.base import Chain, Event, Receipt

_ETH = "0x0000000000000000000000000000000000000000"


@dataclass(frozen=True, slots=True)
class DeliveryTerms:
    """A direct task's delivery terms: the model owner's channel key and endpoint, and what a
    challenge costs (a zero fee: not set yet)."""

    channel_key: bytes
    endpoint: str
    fee: int


class DeliveryClient:
    """The desk's entry points and views; the host class provides `chain`, `desk`, `_send`,
    `config`, `update_digest` and `_blob_chunk`."""

    chain: Chain
    desk: str

    def _desk_view(self, function: str, *args: Any) -> Any:
        return self.chain.call(self.desk, function, args)

    # model owner

    def set_delivery_terms(
        self, task: int, channel_pk: bytes, endpoint: str, fee: int, sender: str
    ) -> Receipt:
        """Register our channel key and endpoint for a direct task, and its challenge fee (in
        REGISTER, once)."""
        size = len(endpoint.encode())
        if size > MAX_ENDPOINT:
            raise ConfigError(f"endpoint is {size} bytes; the desk takes at most {MAX_ENDPOINT}")
        args = [task, channel_pk, endpoint, fee]
        return self._send("set_terms", args, sender, to=self.desk)

    def challenge(self, task: int, round: int, do: str, sender: str) -> Receipt:
        """Challenge `do`'s delivery, paying the task's fee (as ETH for an ETH task; a token
        task's fee must be approved to the desk)."""
        fee = self.challenge_fee(task)
        value = fee if self.config(task).token == _ETH else 0
        return self._send("challenge", [task, round, do], sender, value, to=self.desk)

    def close_delivery(self, task: int, round: int, sender: str) -> Receipt:
        """Let DELIVERY close now (no challenge open); `advance` then moves the task on."""
        return self._send("close_delivery", [task, round], sender, to=self.desk)

    # data owner

    def commit_update(
        self, task: int, round: int, digest: bytes, words: int, sender: str
    ) -> Receipt:
        """Commit to our masked update (`protocol.commitments.direct_digest` of its words, or
        `protocol.blobs.blob_update_digest` to answer with blobs) and its word count."""
        return self._send("commit_update", [task, round, digest, words], sender, to=self.desk)

    def answer_chunk(
        self, task: int, round: int, chunk_index: int, words: Sequence[int], sender: str
    ) -> Receipt:
        """One chunk of an answer (the desk's `answer`; `Market.answer` is the court's)."""
        args = [task, round, chunk_index, calldata_words(words)]
        return self._send("answer", args, sender, to=self.desk)

    def answer_update(
        self,
        task: int,
        round: int,
        words: Sequence[int],
        sender: str,
        *,
        chunk_words: int = MAX_CHUNK_WORDS,
        start_chunk: int = 0,
    ) -> list[Receipt]:
        """Answer a challenge with the whole update in event chunks, cut as `direct_digest`
        cuts them (from chunk `start_chunk` on: 0 starts over)."""
        chunks = split_chunks(words, chunk_words)
        return post_chunks(self.answer_chunk, task, round, chunks, sender, start_chunk)

    def answer_blobs(
        self, task: int, round: int, chunk_index: int, words: Sequence[int], sender: str
    ) -> Receipt:
        blobs = words_to_blobs(words)
        args = [task, round, chunk_index]
        return self._send("answer_blobs", args, sender, blobs=blobs, to=self.desk)

    def answer_blob_update(
        self,
        task: int,
        round: int,
        words: Sequence[int],
        sender: str,
        *,
        blobs_per_tx: int = MAX_BLOBS_PER_TX,
        start_chunk: int = 0,
    ) -> list[Receipt]:
        """Answer a challenge with the whole update as blobs, `blobs_per_tx` a transaction."""
        chunks = blob_chunks(words, blobs_per_tx)
        return post_chunks(self.answer_blobs, task, round, chunks, sender, start_chunk)

    def withdraw_desk(self, sender: str, token: str = _ETH) -> Receipt:
        """Withdraw what the desk credited: challenge fees earned, or returned to the owner."""
        return self._send("withdraw", [token], sender, to=self.desk)

    # views

    def delivery_terms(self, task: int) -> DeliveryTerms:
        calls = [(name, (task,)) for name in ("owner_channel_key", "owner_endpoint")]
        key, endpoint, fee = self.chain.call_many(self.desk, [*calls, ("challenge_fee", (task,))])
        return DeliveryTerms(key, endpoint, fee)

    def challenge_fee(self, task: int) -> int:
        return self._desk_view("challenge_fee", task)

    def challenge_state(self, task: int, round: int, do: str) -> Challenge:
        return Challenge(self._desk_view("challenge_state", task, round, do))

    def challenged(self, task: int, round: int) -> tuple[str, ...]:
        return self._desk_view("challenged", task, round)

    def open_challenges(self, task: int, round: int) -> int:
        return self._desk_view("round_open", task, round)

    def delivery_done(self, task: int, round: int) -> bool:
        return self._desk_view("delivery_done", task, round)

    def answer_progress(self, task: int, round: int, do: str) -> tuple[int, int]:
        """Chunks and words of `do`'s answer so far (a restarted answer resumes from here)."""
        calls = [(name, (task, round, do)) for name in ("answer_chunks", "answer_words")]
        return tuple(self.chain.call_many(self.desk, calls))

    def answer_digest(self, task: int, round: int, do: str) -> bytes:
        return self._desk_view("answer_digest", task, round, do)

    def desk_credits(self, account: str, token: str = _ETH) -> int:
        return self._desk_view("credits", token, account)

    # event readers

    def committed_updates(self, task: int, round: int) -> dict[str, tuple[bytes, int]]:
        """Each direct commitment of a round: data owner -> (digest, words)."""
        where = {"task": task, "round": round}
        events = self.chain.events(self.desk, "UpdateCommitted", filters=where)
        return {e.args["do"]: (e.args["digest"], e.args["words"]) for e in events}

    def answered_updates(self, task: int, round: int) -> dict[int, Submission]:
        """The updates of a round's answered challenges, from the desk's chunks (the last
        attempt of each: a chunk 0 starts over), checked like `submissions` against the
        committed `update_digest`."""
        where = {"task": task, "round": round}
        events = [
            *self.chain.events(self.desk, "UpdateChunk", filters=where),
            *self.chain.events(self.desk, "UpdateBlobs", filters=where),
        ]
        attempts: dict[str, list[Event]] = defaultdict(list)
        for event in sorted(events, key=lambda e: (e.block, e.log_index)):
            if event.args["chunk_index"] == 0:
                attempts[event.args["do"]] = []
            attempts[event.args["do"]].append(event)
        out = {}
        for do, chunks in attempts.items():
            if self.challenge_state(task, round, do) != Challenge.ANSWERED:
                continue
            read = [
                (
                    e.args["chunk_index"],
                    self._blob_chunk(e) if e.name == "UpdateBlobs" else e.args["words"],
                )
                for e in chunks
            ]
            digest = self.update_digest(task, round, do)
            out[chain_data.address(do)] = chain_data.submission(do, read, digest)
        return out

    if TYPE_CHECKING:

        def _send(self, *args: Any, **kwargs: Any) -> Receipt: ...
        def config(self, task: int) -> Any: ...
        def update_digest(self, task: int, round: int, do: str) -> bytes: ...
        def _blob_chunk(self, event: Event) -> BlobChunk: ...
