"""The learning probe: DESIGN §7 on real MNIST, without any cryptography.

``python -m actors.measure.probe`` runs, per seed: the model owner trains alone on its few
samples; then each round it publishes its body with the auxiliary head, the data owners train in
turn in this one process, the MO applies the sample-weighted mean of their updates (plain FedAvg:
what the secure sum reveals) and fine-tunes its private head from the aggregated auxiliary head.
It prints the MO's accuracy alone and after every round, the public model's own accuracy, and the
wall time of each step, so the demo's learning budget can be checked before any chain is involved.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from actors.learning.data import (
    Mnist,
    dirichlet_partition,
    iid_partition,
    load_mnist,
    split_model_owner,
)
from actors.learning.model import (
    new_body,
    new_head,
    public_model_for,
    public_model_from_vector,
    public_vector,
)
from actors.learning.train import (
    DO_SCHEDULE,
    FINETUNE_SCHEDULE,
    MO_ALONE_SCHEDULE,
    Schedule,
    apply_update,
    evaluate,
    fedavg,
    finetune_head,
    train_local,
    train_model,
    use_threads,
)

# The MO's own sample count. DESIGN §7 quotes 60 samples for ~62% alone; this CNN with this
# schedule reaches ~80% on 60 balanced samples, so far fewer start it near 62%. Measured alone,
# over the demo's scenario split (`actors.entry.scenario.split_data`), seeds 0-4, 10,000 test
# images:
# 25 samples 59.6% (53-67%), 26 samples 63.5% (58-70%), 27 samples 63.9%, 30 samples 68.6%.
# With 26 the demo (seed 0) starts at 60.1%; so few samples make a noisy start.
MO_SAMPLES = 26


@dataclass(frozen=True, slots=True)
class ProbeConfig:
    """One probe run: the market's shape, the data split and the training schedules."""

    seed: int = 0
    mo_samples: int = MO_SAMPLES
    dos: int = 10
    do_samples: int = 1_000
    rounds: int = 1
    alpha: float | None = None  # None: IID; else Dirichlet(alpha) label skew among DOs
    do_schedule: Schedule = DO_SCHEDULE
    mo_schedule: Schedule = MO_ALONE_SCHEDULE
    finetune_schedule: Schedule = FINETUNE_SCHEDULE
    test_limit: int | None = None  # evaluate on the first N test images (None: all 10,000)


@dataclass(slots=True)
class ProbeResult:
    """Accuracies in [0, 1] and wall times in seconds of one probe run."""

    seed: int
    alone: float
    alone_seconds: float
    mo_after: list[float] = field(default_factory=list)  # MO private model, per round
    public_after: list[float] = field(default_factory=list)  # body + auxiliary head, per round
    round_seconds: list[float] = field(default_factory=list)


def run_probe(config: ProbeConfig, mnist: Mnist) -> ProbeResult:
    """Run the probe once; deterministic for a given config (and torch thread count)."""
    # Independent streams for the data split, the MO's model and the DOs' training, so that
    # changing the split (IID or Dirichlet) leaves the MO's starting model unchanged.
    data_rng, model_rng, train_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(3)
    )
    mo_indices, pool = split_model_owner(mnist.train_labels, config.mo_samples, data_rng)
    sizes = [config.do_samples] * config.dos
    if config.alpha is None:
        parts = iid_partition(pool, sizes, data_rng)
    else:
        parts = dirichlet_partition(mnist.train_labels, pool, sizes, config.alpha, data_rng)
    mo_data = mnist.train(mo_indices)
    do_data = [mnist.train(part) for part in parts]
    test = mnist.test(config.test_limit)
    body_seed, head_seed, aux_seed, mo_seed = (int(s) for s in model_rng.integers(2**31, size=4))

    started = time.perf_counter()
    body, head = new_body(body_seed), new_head(head_seed)
    train_model(body, head, mo_data, seed=mo_seed, schedule=config.mo_schedule)
    result = ProbeResult(config.seed, evaluate(body, head, test), time.perf_counter() - started)

    public = public_model_for(body, aux_seed)
    for _ in range(config.rounds):
        started = time.perf_counter()
        updates = [
            train_local(
                public, data, seed=int(train_rng.integers(2**31)), schedule=config.do_schedule
            )
            for data in do_data
        ]
        aggregate = fedavg(updates, [len(data) for data in do_data])
        public = public_model_from_vector(public, apply_update(public_vector(public), aggregate))
        head = finetune_head(
            public.body, public.aux, mo_data, seed=mo_seed, schedule=config.finetune_schedule
        )
        result.mo_after.append(evaluate(public.body, head, test))
        result.round_seconds.append(time.perf_counter() - started)
        result.public_after.append(evaluate(public.body, public.aux, test))
    return result


def _format(result: ProbeResult) -> str:
    rounds = "  ".join(
        f"r{r + 1} {mo:6.2%} (public {pub:6.2%}, {sec:4.1f}s)"
        for r, (mo, pub, sec) in enumerate(
            zip(result.mo_after, result.public_after, result.round_seconds, strict=True)
        )
    )
    return (
        f"seed {result.seed}: MO alone {result.alone:6.2%} ({result.alone_seconds:.1f}s)  {rounds}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dos", type=int, default=10)
    parser.add_argument("--do-samples", type=int, default=1_000)
    parser.add_argument("--mo-samples", type=int, default=MO_SAMPLES)
    parser.add_argument("--alpha", type=float, default=None, help="Dirichlet label skew")
    parser.add_argument("--epochs", type=int, default=DO_SCHEDULE.epochs)
    parser.add_argument("--lr", type=float, default=DO_SCHEDULE.lr)
    parser.add_argument("--batch-size", type=int, default=DO_SCHEDULE.batch_size)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    use_threads(args.threads)
    started = time.perf_counter()
    mnist = load_mnist()
    print(f"MNIST loaded in {time.perf_counter() - started:.1f}s")
    schedule = Schedule(args.epochs, args.lr, args.batch_size)
    print(
        f"{args.dos} DOs x {args.do_samples} samples, MO {args.mo_samples} samples, "
        f"{'IID' if args.alpha is None else f'Dirichlet({args.alpha})'}, DO {schedule}, "
        f"MO alone {MO_ALONE_SCHEDULE}, fine-tune {FINETUNE_SCHEDULE}, {args.threads} threads"
    )
    for seed in args.seeds:
        config = ProbeConfig(
            seed=seed,
            mo_samples=args.mo_samples,
            dos=args.dos,
            do_samples=args.do_samples,
            rounds=args.rounds,
            alpha=args.alpha,
            do_schedule=schedule,
        )
        print(_format(run_probe(config, mnist)), flush=True)
    print(f"total wall time {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
