"""What a round's machine decided, carried out on the chain: commitments, complaints and their
answers, update chunks (event or blob path) and unmask messages.

The round driver (`actors.roles.round_driver`) hands its machine's actions here in order. A
transaction the market refuses ends the batch, named and not fatal: the chain's next facts tell
the machine what it missed. The machine emits each posting once and it is persisted first, so
only a batch redone after a restart (`resumed`) may find its transactions on-chain already:
only then are they looked up first.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from actors.chain.aio import on_chain
from actors.chain.base import TransactionReverted
from actors.chain.codec import checksum
from protocol.blobs import blob_chunks
from protocol.chain_data import answered_delivery
from protocol.commitments import direct_digest
from protocol.constants import (
    DATA_PATH_BLOB,
    DATA_PATH_DIRECT,
    GROUP_PENDING,
    STATUS_COMMITTED,
    STATUS_SUBMITTED,
    STATUS_UNMASKED,
    Challenge,
)
from protocol.encoding import PackedWords, words_bytes
from protocol.messages import ShareDelivery
from protocol.round import (
    Action,
    PostAnswer,
    PostChunk,
    PostCommitment,
    PostSettle,
    PostUnmask,
    RoundMachine,
)

if TYPE_CHECKING:
    import trio

    from actors.roles.round_driver import DriverContext

log = logging.getLogger("omnilytics.do")


class RoundActions:
    """The chain side of one data owner's round."""

    def __init__(
        self,
        ctx: DriverContext,
        number: int,
        members: Sequence[str],
        machine: RoundMachine,
        report: trio.MemorySendChannel[Any] | None = None,
    ) -> None:
        self.ctx, self.number, self.members, self.machine = ctx, number, tuple(members), machine
        self.report = report  # the driver's inbox, for what a transport reports back
        self.answered: set[str] = set()  # holders whose complaints against us are settled
        # our status and our group's result as UNMASK opened (read with the submitters)
        self.before_unmask: tuple[int, int] | None = None

    async def _chain(self, fn: Any, *args: Any) -> Any:
        return await on_chain(self.ctx.market.chain, fn, *args)

    async def perform(self, actions: Sequence[Action], *, resumed: bool = False) -> None:
        """Carry out the machine's actions in order; a refused transaction ends the batch."""
        try:
            for action in actions:
                await self._perform_one(action, actions, resumed)
        except TransactionReverted as refused:
            log.error("%s round %d: %s", self.ctx.account, self.number, refused)
            self.ctx.observe("refused", round=self.number, reason=refused.reason)

    async def _perform_one(self, action: Action, batch: Sequence[Action], resumed: bool) -> None:
        ctx, market, number = self.ctx, self.ctx.market, self.number
        task, me = ctx.task, ctx.account
        if isinstance(action, PostCommitment):
            if not resumed or await self._chain(market.status, task, number, me) < STATUS_COMMITTED:
                await self._chain(
                    market.commit_shares,
                    task,
                    number,
                    action.mask_public,
                    action.shares_root,
                    action.points,
                    me,
                )
                ctx.observe("committed", round=number)
        elif isinstance(action, PostSettle):
            if not resumed or not await self._chain(market.settled, task, number, me):
                members = [int(m, 16) for m in self.members]
                accused = sum(1 << members.index(d) for d in action.accused)
                # each complaint carries a deposit: paid to a dealer that answers it, refunded
                # (`refund_complaints`) when the dealer does not
                deposit = len(action.accused) * ctx.config.reward_per_do
                await self._chain(market.settle, task, number, accused, me, deposit)
                ctx.observe("settled", round=number, accused=len(action.accused))
        elif isinstance(action, PostChunk):
            chunks = [a for a in batch if isinstance(a, PostChunk)]
            if action is chunks[0]:
                await self._post_update(chunks, resumed)
        elif isinstance(action, PostUnmask):
            await self._unmask(action, resumed)
        elif isinstance(action, PostAnswer):
            await self._post_answer(action)
        else:
            ctx.observe(type(action).__name__.lower(), round=number)

    async def _post_update(self, chunks: list[PostChunk], resumed: bool) -> None:
        """The masked update: the machine's chunks on the event path; on the blob path its words
        again, cut into transactions of full blobs (docs/interfaces.md §3b). Chunks already
        on-chain (before a restart) are skipped."""
        ctx, market, number = self.ctx, self.ctx.market, self.number
        if ctx.config.data_path == DATA_PATH_DIRECT:
            await self._commit_update(_whole(chunks), resumed)
            return
        done = (
            await self._chain(market.chunk_count, ctx.task, number, ctx.account) if resumed else 0
        )
        if ctx.config.data_path == DATA_PATH_BLOB:
            words = [w for chunk in chunks for w in chunk.words]
            posts = [(i, market.submit_blobs, c) for i, c in enumerate(blob_chunks(words))]
        else:
            posts = [(c.chunk_index, market.submit, c.words) for c in chunks]
        for index, submit, payload in posts:
            if index < done:
                continue
            ctx.check_drop(number, f"chunk{index}")
            await self._chain(submit, ctx.task, number, index, payload, ctx.account)
            ctx.observe("chunk", round=number, index=index)
        ctx.observe("submitted", round=number)

    async def _commit_update(self, words: PackedWords, resumed: bool) -> None:
        """A direct task: commit the update's digest and word count on-chain, then deliver the
        words to the model owner (until it accepts them or DELIVERY closes)."""
        ctx, market, number = self.ctx, self.ctx.market, self.number
        if not resumed or await self._chain(market.status, ctx.task, number, ctx.account) < (
            STATUS_SUBMITTED
        ):
            ctx.check_drop(number, "commit_update")
            digest = direct_digest(words)
            await self._chain(
                market.commit_update, ctx.task, number, digest, len(words), ctx.account
            )
            ctx.observe("submitted", round=number, words=len(words))
        ctx.check_drop(number, "delivery")
        if self.report is not None:
            ctx.direct.offer(number, words, self.report.clone())

    async def answer_challenge(self, state: int | None) -> None:
        """A direct task in DELIVERY: if the model owner challenged our delivery (`state`, the
        desk's challenge state as polled; None: read it), post our words on-chain against our
        commitment, from the chunk a restart left off at."""
        ctx, market, number = self.ctx, self.ctx.market, self.number
        args = (ctx.task, number, ctx.account)
        if state is None:
            state = await self._chain(market.challenge_state, *args)
        if state != Challenge.OPEN:
            return
        words = _whole(self.machine.chunks())
        chunks, _ = await self._chain(market.answer_progress, *args)
        ctx.observe("challenged", round=number, resumed_at=chunks)
        ctx.check_drop(number, "answer")
        try:
            await self._chain(
                functools.partial(market.answer_update, start_chunk=chunks),
                ctx.task,
                number,
                words,
                ctx.account,
            )
        except TransactionReverted as refused:
            log.error("%s round %d: answer refused: %s", ctx.account, number, refused)
            ctx.observe("refused", round=number, reason=refused.reason)
            return
        ctx.observe("answered_challenge", round=number, words=len(words))

    async def _unmask(self, action: PostUnmask, resumed: bool) -> None:
        ctx, market, number = self.ctx, self.ctx.market, self.number
        if resumed or self.before_unmask is None:
            status, result = await self._chain(
                market.views,
                [
                    ("do_status", (ctx.task, number, ctx.account)),
                    ("group_result", (ctx.task, number, ctx.group)),
                ],
            )
        else:  # read with the statuses as UNMASK opened, just before the machine chose these
            (status, result), self.before_unmask = self.before_unmask, None
        if status >= STATUS_UNMASKED or result != GROUP_PENDING:
            return
        reveals = [
            (checksum(r.dealer), r.kind, r.share, r.blind, r.proof, r.points)
            for r in action.reveals
        ]
        try:
            await self._chain(market.unmask, ctx.task, number, reveals, ctx.account)
        except TransactionReverted as error:
            # the group's t-th message may have landed just before ours: nothing is lost
            if await self._chain(market.group_result, ctx.task, number, ctx.group) == GROUP_PENDING:
                raise
            log.info("%s: unmask not needed any more (%s)", ctx.account, error.reason)
            return
        ctx.observe("unmasked", round=number)

    # -- complaints --------------------------------------------------------------------------

    async def open_complaints(self, polled: int | None) -> list[str]:
        """The holders whose complaints against us are open and not answered yet (`polled`: the
        court's count of them, read with the last poll)."""
        ctx, market, number = self.ctx, self.ctx.market, self.number
        against = polled
        if against is None:
            against = await self._chain(market.open_against, ctx.task, number, ctx.account)
        if not against:
            return []
        holders = []
        for dealer, holder in await self._chain(market.complaints, ctx.task, number):
            if dealer.lower() != ctx.account.lower() or holder in self.answered:
                continue
            if await self._chain(market.complaint_open, ctx.task, number, ctx.account, holder):
                holders.append(holder)
            else:
                self.answered.add(holder)
        return holders

    async def _post_answer(self, answer: PostAnswer) -> None:
        ctx, number, holder = self.ctx, self.number, checksum(answer.holder)
        if holder in self.answered:
            return
        try:
            await self._chain(
                ctx.market.answer,
                ctx.task,
                number,
                holder,
                (answer.seed_share, answer.seed_blind, answer.key_share, answer.key_blind),
                (answer.seed_proof, answer.key_proof),
                answer.points,
                ctx.account,
            )
        except TransactionReverted as refused:
            log.error("%s round %d: answer refused: %s", ctx.account, number, refused)
            ctx.observe("refused", round=number, reason=refused.reason)
            return
        self.answered.add(holder)
        ctx.observe("answered", round=number, holder=holder)

    async def answered_deliveries(self) -> list[tuple[int, ShareDelivery]]:
        """The shares our accused dealers published on-chain for us, as deliveries from them."""
        ctx, market, number, machine = self.ctx, self.ctx.market, self.number, self.machine
        settlement = machine.settlement()
        if settlement is None:
            return []
        owed = [d for d in settlement.accused if d not in machine.dealers_held]
        if not owed:
            return []
        answers = await self._chain(market.answers, ctx.task, number)
        mine = [
            a
            for a in answers
            if a["holder"].lower() == ctx.account.lower() and int(a["dealer"], 16) in owed
        ]
        if not mine:
            return []
        points = await self._chain(market.dealt_points, ctx.task, number)
        deliveries = []
        for a in mine:
            dealer = a["dealer"]
            delivery = answered_delivery(
                ctx.task,
                number,
                dealer=dealer,
                holder=ctx.account,
                seed_share=a["seed_share"],
                seed_blind=a["seed_blind"],
                key_share=a["key_share"],
                key_blind=a["key_blind"],
                seed_proof=a["seed_proof"],
                key_proof=a["key_proof"],
                mask_public=await self._chain(market.mask_pk, ctx.task, number, dealer),
                shares_root=await self._chain(market.shares_root, ctx.task, number, dealer),
                points=points[dealer],
            )
            ctx.observe("answer_received", round=number, dealer=dealer)
            deliveries.append((int(dealer, 16), delivery))
        return deliveries

    async def refund_complaints(self) -> None:
        """Take back the deposits of our complaints that no dealer answered."""
        ctx, market, number = self.ctx, self.ctx.market, self.number
        settlement = self.machine.settlement()
        for dealer in () if settlement is None else settlement.accused:
            dealer = checksum(dealer)
            still = await self._chain(market.complaint_open, ctx.task, number, dealer, ctx.account)
            if still and not await self._chain(
                market.refunded, ctx.task, number, dealer, ctx.account
            ):
                await self._chain(market.refund, ctx.task, number, dealer, ctx.account, ctx.account)


def _whole(chunks: Sequence[PostChunk]) -> PackedWords:
    """A masked update's words from its chunks, as one packed run."""
    return PackedWords(b"".join(words_bytes(chunk.words) for chunk in chunks))
