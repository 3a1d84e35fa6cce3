"""The README's benchmark tables, as markdown, from bench/results/*.json (`just bench` writes them).

Prints what the JSON holds, nothing else: rerun after a benchmark and paste the output into the
README's "Benchmarks" section. A results file that is missing leaves its table out.

    python -m bench.table [--results bench/results]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from pathlib import Path

from bench.gas import RESULTS

PATH_NAMES = {
    "event": "event (ours)",
    "blob": "blob (EIP-4844)",
    "packed_storage": "packed storage accumulation",
    "naive": "one slot per parameter",
}


def _load(results: Path, name: str) -> dict | None:
    path = results / name
    return json.loads(path.read_text()) if path.exists() else None


def _table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def gas_paths(doc: dict) -> list[str]:
    """Gas per parameter per data owner by path, d and lane width, beside the floor."""
    rows = doc["rows"]
    ds = sorted({r["d"] for r in rows})
    order = [p for p in PATH_NAMES if any(r["path"] == p for r in rows)]
    order += sorted({r["path"] for r in rows} - set(order))
    blob = any(r.get("blob_gas_per_param") is not None for r in rows)
    out = []
    for path in order:
        for bits in sorted({r["lane_bits"] for r in rows if r["path"] == path}):
            cells = []
            for d in ds:
                row = next(
                    (r for r in rows if (r["path"], r["lane_bits"], r["d"]) == (path, bits, d)),
                    None,
                )
                if row is None:
                    cells.append("—")
                    continue
                cell = f"{row['gas_per_param']:,.1f} ({row['ratio']:,.3f}x)"
                if blob and row.get("blob_gas_per_param") is not None:
                    cell += f" + {row['blob_gas_per_param']:,.1f} blob gas"
                cells.append(cell)
            out.append([PATH_NAMES.get(path, path), str(bits), *cells])
    lines = [
        "Gas per parameter per data owner from anvil receipts (execution gas; in brackets the "
        "ratio to the EIP-7623 calldata floor of the same words, 160 gas at 32-bit lanes, 80 at "
        "16) — `just bench-paths`:",
        "",
    ]
    return lines + _table(["path", "lane bits", *(f"d = {d:,}" for d in ds)], out)


def rounds(doc: dict) -> list[str]:
    """Whole-round gas by number of data owners."""
    price = doc.get("gas_price_gwei", 20)
    out = [
        [
            str(r["dos"]),
            f"{r['d']:,}",
            f"{r['total_gas'] / 1e6:,.1f} M",
            f"{r['gas_per_do'] / 1e6:,.2f} M",
            f"{r['total_to_floor']:.3f}x",
            f"{r['eth_at_gas_price']:.3f}",
            str(r["transactions"]),
        ]
        for r in doc["rows"]
    ]
    lines = [
        f"One whole round on anvil (groups of {doc.get('group_size', 5)}, the demo's model, "
        f"32-bit lanes; x floor = total gas over the calldata floor of every masked update) — "
        "`just bench-rounds`:",
        "",
    ]
    header = ["DOs", "d", "total gas", "per DO", "x floor", f"ETH at {price:g} gwei", "tx"]
    return lines + _table(header, out)


def chain_time(doc: dict) -> list[str]:
    """Chain processing time beside the paper, and the client overhead."""
    row = doc["rows"][0]
    out = [
        [
            "chain processing time of a round (10 DOs, MNIST CNN, requests serialized)",
            f"{row['chain_seconds'] * 1e3:,.0f} ms",
            f"**{row['chain_to_paper']:.2f}x** the paper's {row['paper_seconds'] * 1e3:.0f} ms",
        ]
    ]
    if row.get("protocol_overhead") is not None:
        client = doc.get("client") or {}
        seconds = client.get("median_seconds", {})
        detail = ""
        if seconds:
            detail = (
                f" ({seconds['protocol']:.2f} s of protocol per {seconds['training']:.2f} s "
                "of training)"
            )
        out.append(
            [
                "a data owner's protocol time / its local training time (demo on anvil, median)",
                f"**{row['protocol_overhead']:.3f}**{detail}",
                f"target {row.get('overhead_target', 0.1):.2f}; with phase polls "
                f"{row['protocol_overhead_with_phase_polls']:.3f}",
            ]
        )
    return ["Time — `just bench-chain-time`:", "", *_table(["what", "measured", "ratio"], out)]


def scale(doc: dict) -> list[str]:
    """Growth with N, m and d, and the largest d one block carries."""
    names = {"dos": "N (data owners)", "group_size": "m (group size)", "d": "d (parameters)"}
    out = [
        [
            names.get(swept, swept),
            f"{g['from']:,} → {g['to']:,} (x{g['variable']:g})",
            f"x{g['total_gas']:.2f}",
            f"x{g['gas_per_do']:.2f}",
            f"x{g['other_gas_per_do']:.2f}",
            f"x{g['chain_seconds']:.2f}",
        ]
        for swept, g in doc["growth"].items()
    ]
    lines = [
        "Scale, one round on anvil per point (synthetic updates, 32-bit lanes; chain time sums "
        "send-to-receipt times, requests serialized) — `just bench-scale`, plot in "
        "`bench/results/scale.png`:",
        "",
    ]
    lines += _table(
        ["grows", "from → to", "total gas", "gas per DO", "per DO besides submit", "chain time"],
        out,
    )
    cap = doc.get("block_capacity")
    if cap:
        fits = cap["check_fits"]
        lines += [
            "",
            f"Largest update one {cap['block_gas_limit'] / 1e6:g}M-gas block carries on the event "
            f"path: **d = {cap['max_params']:,}** at 32-bit lanes ({cap['max_words']:,} words in "
            f"{fits['chunks']} transactions; {cap['max_params_16_bit_lanes']:,} at 16-bit). "
            f"Binds: {cap['binds']} ({cap['contract_chunk_words']:,} words); the node's "
            f"transaction size limit ({cap['node_tx_bytes_limit'] / 2**20:g} MiB) is above what "
            f"a block's gas buys ({cap['tx_bytes_the_block_gas_buys']:,} B). Checked on anvil: "
            f"that update mined in {fits['blocks']} block, one word more in "
            f"{cap['check_one_word_more']['blocks']}"
            + ("." if cap["checked"] else " — **check failed**."),
        ]
    return lines


def render(results: Path) -> str:
    sections = []
    for name, fn in (
        ("gas_paths.json", gas_paths),
        ("rounds.json", rounds),
        ("chain_time.json", chain_time),
        ("scale.json", scale),
    ):
        doc = _load(results, name)
        if doc is not None:
            sections.append("\n".join(fn(doc)))
    return "\n\n".join(sections) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    print(render(args.results), end="")


if __name__ == "__main__":
    main()
