"""Benchmark: one data owner's client work per round, ours against Flower's SecAgg+ primitives.

Work measured (d = 100,000 parameters, 10 group peers by default), identical on both sides:
a fresh mask key pair and self-mask seed, Shamir shares of both secrets for the 11 holders,
quantization of the update, the self mask, and one key agreement plus one mask expansion per
peer. Ours: X25519 + HKDF-SHA256, AES-256-CTR masks keyed by 32-byte seeds (pairwise: HKDF
output; self mask: uniform in ``[1, r)``, ~253.6 bits), and Pedersen-verifiable Shamir over the
BN254 scalar field (``protocol.shamir.split_secret``: each secret's shares and blinds and its
``t`` commitment points ``a_j·G + b_j·H``). Flower (``flwr``): ECDH on P-384 + HKDF, NumPy
``RandomState`` masks (32-bit seeds, Mersenne Twister), pycryptodome Shamir on a PEM-encoded key.

``flwr`` would downgrade packages of the project's venv (rich, typer), so Flower's side runs in
its own venv, ``.venv-flower`` (created on first use: ``python -m venv`` + ``pip install flwr
numpy``), as a subprocess of this run; the two sides alternate repeat by repeat so that load on
the machine hits both alike. Prints a table and the ratio ours/Flower (median of the repeats) and
writes ``bench/results/mask.json``: one row in ``rows`` (``d``, ``peers``, ``threshold``,
``ours_seconds``, ``flower_seconds``, ``ratio``, ...), its fields also at the top level.

Run: ``python -m bench.mask [--d 100000] [--peers 10] [--repeats 9]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from protocol.encoding import QuantConfig, check_headroom, quantize
from protocol.masks import MaskKeyPair, mask_update, new_self_seed
from protocol.shamir import split_secret

ROOT = Path(__file__).resolve().parent.parent
FLOWER_VENV = ROOT / ".venv-flower"
FLOWER_SIDE = Path(__file__).resolve().parent / "flower_secaggplus_client.py"
RESULTS = Path(__file__).resolve().parent / "results" / "mask.json"
PHASES = ("keys_and_shares", "quantize", "masks", "total")
# 32-bit lanes at 2**-16 resolution; an update of norm <= 10 leaves room for 11 DOs in the ring.
QUANT = QuantConfig(lane_bits=32, scale_bits=16, clip_norm=10.0)
TASK, ROUND = 1, 0

console = Console()


def ours_client_round(
    update: np.ndarray,
    peers: dict[int, bytes],
    me: int,
    threshold: int,
    rng: np.random.Generator,
) -> dict[str, float]:
    """Our side of one client round; returns seconds per phase."""
    t0 = time.perf_counter()
    keys = MaskKeyPair.generate(os.urandom)
    self_seed = new_self_seed(os.urandom)
    holders = len(peers) + 1
    split_secret(self_seed, threshold, holders, os.urandom)
    split_secret(keys.secret, threshold, holders, os.urandom)
    t1 = time.perf_counter()
    quantized = quantize(update, QUANT, rng)
    t2 = time.perf_counter()
    masked = mask_update(
        quantized,
        self_seed=self_seed,
        my_keys=keys,
        my_addr=me,
        peers=peers,
        task=TASK,
        round=ROUND,
        lane_bits=QUANT.lane_bits,
    )
    t3 = time.perf_counter()
    assert masked.shape == update.shape
    return {"keys_and_shares": t1 - t0, "quantize": t2 - t1, "masks": t3 - t2, "total": t3 - t0}


def flower_python(
    requirements: Sequence[str] = ("flwr", "numpy"), check: str = "import flwr"
) -> Path:
    """The interpreter of ``.venv-flower``, created if missing; ``requirements`` are installed
    there unless the ``check`` snippet already runs (``bench.peer`` asks for more than us)."""
    python = FLOWER_VENV / "bin" / "python"
    ready = python.exists() and (
        subprocess.run([python, "-c", check], capture_output=True).returncode == 0
    )
    if not ready:
        console.print(f"installing {', '.join(requirements)} in {FLOWER_VENV.name} (kept apart)")
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", FLOWER_VENV], check=True)
        subprocess.run(
            [FLOWER_VENV / "bin" / "pip", "install", "--quiet", *requirements], check=True
        )
    return python


def flower_version(python: Path) -> str:
    out = subprocess.run(
        [python, "-c", "import flwr; print(flwr.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


class FlowerSide:
    """Flower's client round in a subprocess of ``.venv-flower``, driven line by line."""

    def __init__(self, python: Path, d: int, peers: int, threshold: int, seed: int) -> None:
        args = [str(python), str(FLOWER_SIDE), str(d), str(peers), str(threshold), str(seed)]
        self._proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def run(self) -> dict[str, float]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write("run\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"Flower side exited with {self._proc.wait()}")
        return json.loads(line)

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write("quit\n")
        self._proc.stdin.close()
        self._proc.wait(timeout=30)


def median_phases(runs: list[dict[str, float]]) -> dict[str, float]:
    return {p: statistics.median(r[p] for r in runs) for p in PHASES}


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, default=100_000, help="parameters per update")
    parser.add_argument("--peers", type=int, default=10, help="other members of the group")
    parser.add_argument("--threshold", type=int, default=6, help="Shamir threshold t")
    parser.add_argument("--repeats", type=int, default=9, help="timed runs per side")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    check_headroom(QUANT, args.peers + 1)

    python = flower_python()
    version = flower_version(python)
    flower = FlowerSide(python, args.d, args.peers, args.threshold, args.seed)

    update = np.random.default_rng(args.seed).normal(scale=0.01, size=args.d).astype(np.float32)
    rng = np.random.default_rng(args.seed + 1)
    peer_keys = {addr: MaskKeyPair.generate(os.urandom).public for addr in range(1, args.peers + 2)}
    me = args.peers // 2 + 1  # a middle address, so both signs of pairwise masks occur
    peer_keys.pop(me)

    ours_runs: list[dict[str, float]] = []
    flower_runs: list[dict[str, float]] = []
    try:
        # one untimed warm-up each (imports, OpenSSL and numpy first-call costs)
        ours_client_round(update, peer_keys, me, args.threshold, rng)
        flower.run()
        for _ in range(args.repeats):
            ours_runs.append(ours_client_round(update, peer_keys, me, args.threshold, rng))
            flower_runs.append(flower.run())
    finally:
        flower.close()

    ours, theirs = median_phases(ours_runs), median_phases(flower_runs)
    ratio = ours["total"] / theirs["total"]

    table = Table(
        title=f"one DO's round: d = {args.d:,}, {args.peers} peers, t = {args.threshold}, "
        f"median of {args.repeats}"
    )
    table.add_column("phase")
    table.add_column("ours (ms)", justify="right")
    table.add_column(f"Flower {version} (ms)", justify="right")
    table.add_column("ours / Flower", justify="right")
    for phase in PHASES:
        table.add_row(
            phase.replace("_", " "),
            f"{ours[phase] * 1e3:.2f}",
            f"{theirs[phase] * 1e3:.2f}",
            f"{ours[phase] / theirs[phase]:.2f}x",
            style="bold" if phase == "total" else None,
        )
    console.print(table)
    console.print(
        f"ratio ours/Flower = [bold]{ratio:.3f}[/bold] (target <= 0.5); masks: ours AES-256-CTR "
        "with 256-bit seeds, Flower's Mersenne Twister with 32-bit seeds"
    )

    row = {
        "d": args.d,
        "peers": args.peers,
        "threshold": args.threshold,
        "repeats": args.repeats,
        "ours_seconds": ours["total"],
        "flower_seconds": theirs["total"],
        "ratio": ratio,
        "flwr_version": version,
        "phases": {"ours": ours, "flower": theirs},
    }
    # the row's fields stay at the top level too, where older readers look for them
    result: dict[str, object] = {**row, "rows": [row]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(
        f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}"
    )
    return result


if __name__ == "__main__":
    main()
