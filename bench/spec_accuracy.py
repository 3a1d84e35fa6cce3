"""Each example spec's accuracy after its last round against its central ceiling, IID and skewed.

Every run is `omnilytics demo --task examples/NAME.toml` at the spec's own size (its data owners,
rounds and sample cap; the model owner's samples and test set of `scenario.HARNESS_SIZES`) on the
embedded chain: files written from the data set the project ships, read back through the spec's
adapter, updates clipped, quantized, masked and posted, aggregates recovered from chain events.
A row records the model owner alone, after each round, and the ceiling: the same network trained
centrally on the union of the data owners' data with the same recipe (`recipe.train_central`),
on the same test data. The gap (ceiling minus last round, in points) is measured in the same run,
with IID data owners and with Dirichlet(alpha = 0.5) label skew.

    python -m bench.spec_accuracy [--examples mnist-cnn ...] [--alphas iid 0.5] [--seed 0]

writes ``bench/results/spec_accuracy.json`` and prints the table the README quotes.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from actors.entry.run import demo
from actors.entry.scenario import Scenario
from actors.learning.examples import EXAMPLES

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "spec_accuracy.json"
# the acceptance: with IID data, within this many points of the central ceiling
ACCEPTED_GAP = 3.0


def run_example(name: str, alpha: float | None, seed: int) -> dict[str, object]:
    scenario = Scenario.for_spec(ROOT / "examples" / f"{name}.toml", alpha=alpha, seed=seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as state:
        report = demo(
            scenario,
            plot_path=None,
            state_dir=Path(state),
            console=Console(file=io.StringIO()),
        )
    reward = scenario.plan().reward_per_do * scenario.rounds
    last, central = report.accuracy_after[-1], report.accuracy_central
    return {
        "example": name,
        "alpha": alpha,
        "seed": seed,
        "dos": scenario.dos,
        "samples_per_do": scenario.do_samples,
        "mo_samples": scenario.mo_samples,
        "test_samples": scenario.test_limit,
        "rounds": scenario.rounds,
        "accuracy_alone": report.accuracy_before[0],
        "accuracy_after": report.accuracy_after,
        "accuracy_central": central,
        "gap_points": round(100 * (central - last), 2),
        "aggregate_exact": report.aggregate_exact,
        "all_paid": all(paid == reward for paid in report.withdrawn_wei.values()),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def table(rows: Sequence[dict]) -> Table:
    out = Table(title="example specs: model owner vs the central ceiling (embedded chain)")
    for column in ("example", "data", "alone", "after each round", "central", "gap", "exact"):
        out.add_column(column, justify="left" if column in ("example", "data") else "right")
    for row in rows:
        data = "IID" if row["alpha"] is None else f"Dir({row['alpha']:g})"
        rounds = " -> ".join(f"{a:.1%}" for a in row["accuracy_after"])
        out.add_row(
            row["example"],
            data,
            f"{row['accuracy_alone']:.1%}",
            rounds,
            f"{row['accuracy_central']:.1%}",
            f"{row['gap_points']:+.1f}",
            "yes" if row["aggregate_exact"] and row["all_paid"] else "NO",
        )
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", nargs="+", choices=EXAMPLES, default=list(EXAMPLES))
    parser.add_argument("--alphas", nargs="+", default=["iid", "0.5"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rows = []
    for name in args.examples:
        for text in args.alphas:
            alpha = None if text == "iid" else float(text)
            rows.append(run_example(name, alpha, args.seed))
            print(json.dumps(rows[-1]), flush=True)
    iid = [r for r in rows if r["alpha"] is None]
    verdict = {
        "accepted_gap_points": ACCEPTED_GAP,
        "iid_within": all(r["gap_points"] <= ACCEPTED_GAP for r in iid),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, **verdict}, indent=2) + "\n")
    console = Console()
    console.print(table(rows))
    console.print(
        f"IID: every example within {ACCEPTED_GAP:g} points of its ceiling: "
        f"{'yes' if verdict['iid_within'] else 'NO'} · written to {args.out}"
    )


if __name__ == "__main__":
    main()
