"""What a model owner asks of the market: the plan that becomes a task's on-chain `TaskConfig`
(its terms, sizes and data path), written by hand or read from a task spec."""

from __future__ import annotations

from dataclasses import dataclass

from actors.chain.market import ETH
from protocol.constants import DATA_PATH_EVENT
from protocol.encoding import QuantConfig
from protocol.spec import TaskSpec, canonical_bytes


@dataclass(frozen=True, slots=True)
class TaskPlan:
    """What the model owner asks for; becomes the on-chain `TaskConfig`."""

    max_dos: int
    min_dos: int
    group_size: int
    threshold: int
    rounds: int = 1
    reward_per_do: int = 10**16
    bond: int = 0
    token: str = ETH
    lane_bits: int = 32
    scale_bits: int = 16
    clip_norm: float = 4.0
    sample_cap: int = 2_000
    register_duration: int = 600
    share_duration: int = 120
    submit_duration: int = 300
    unmask_duration: int = 120
    rule: str = "mean"
    data_path: int = DATA_PATH_EVENT  # DATA_PATH_BLOB: updates as EIP-4844 blobs (needs a node)
    # DATA_PATH_DIRECT: what the model owner pays a data owner it challenges (0: a quarter of
    # the reward per data owner)
    challenge_fee: int = 0
    spec: bytes = b""  # the task spec's canonical bytes, published by create_task (none: b"")

    @property
    def quant(self) -> QuantConfig:
        return QuantConfig(self.lane_bits, self.scale_bits, self.clip_norm)

    @property
    def fee(self) -> int:
        """The challenge fee of a direct task."""
        return self.challenge_fee or max(1, self.reward_per_do // 4)

    @classmethod
    def from_spec(cls, spec: TaskSpec) -> TaskPlan:
        """The task a spec describes: its market terms, its sample cap (the most samples a data
        owner counts for, `data.max_samples`) and its canonical bytes to publish."""
        m = spec.market
        return cls(
            max_dos=m.max_dos,
            min_dos=m.min_dos,
            group_size=m.group_size,
            threshold=m.threshold,
            rounds=m.rounds,
            reward_per_do=m.reward_wei,
            bond=m.bond_wei,
            lane_bits=m.lane_bits,
            scale_bits=m.scale_bits,
            clip_norm=m.clip_norm,
            sample_cap=spec.data.max_samples,
            register_duration=m.register_duration,
            share_duration=m.share_duration,
            submit_duration=m.submit_duration,
            unmask_duration=m.unmask_duration,
            rule=m.rule,
            data_path=m.data_path_id,
            challenge_fee=m.challenge_fee_wei,
            spec=canonical_bytes(spec),
        )
