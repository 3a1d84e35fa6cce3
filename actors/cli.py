"""`omnilytics`: the command line of the market (typer)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    help="OmniLytics: a blockchain data market for machine learning.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console()


def _parse_drops(drops: list[str]) -> tuple[tuple[int, int, str], ...]:
    parsed = []
    for text in drops:
        try:
            who, round_, step = text.split(":")
            parsed.append((int(who), int(round_), step))
        except ValueError:
            raise typer.BadParameter(f"{text!r}: use DO:ROUND:STEP, e.g. 3:0:submit") from None
        if step not in ("share", "submit", "unmask"):
            raise typer.BadParameter(f"{text!r}: STEP is share, submit or unmask")
    return tuple(parsed)


@app.callback()
def _main() -> None:
    """OmniLytics: a blockchain data market for machine learning."""


@app.command()
def demo(
    dos: Annotated[int, typer.Option(help="data owners")] = 10,
    rounds: Annotated[int, typer.Option(help="training rounds")] = 1,
    group_size: Annotated[int, typer.Option(help="group size m")] = 5,
    threshold: Annotated[int, typer.Option(help="Shamir threshold t per group")] = 3,
    chain: Annotated[str, typer.Option(help="boa (embedded) or anvil (local node)")] = "boa",
    rule: Annotated[
        str, typer.Option(help="robust rule: mean, median, trimmed_mean, ...")
    ] = "mean",
    alpha: Annotated[float | None, typer.Option(help="Dirichlet label skew (default IID)")] = None,
    seed: Annotated[int, typer.Option(help="seed of the data split and the models")] = 0,
    drop: Annotated[
        list[str] | None, typer.Option(help="a data owner vanishes: DO:ROUND:STEP")
    ] = None,
    report: Annotated[Path | None, typer.Option(help="write the run report as JSON here")] = None,
    plot: Annotated[
        Path | None, typer.Option(help="write accuracy and gas per round as PNG")
    ] = None,
) -> None:
    """Run a whole market in one process: 1 model owner + N data owners on real MNIST."""
    from actors.run import Scenario
    from actors.run import demo as run_demo

    scenario = Scenario(
        dos=dos,
        rounds=rounds,
        group_size=group_size,
        threshold=threshold,
        rule=rule,
        alpha=alpha,
        seed=seed,
        drops=_parse_drops(drop or []),
    )
    if not 2 <= threshold <= group_size <= dos:
        raise typer.BadParameter("need 2 <= threshold <= group-size <= dos")
    result = run_demo(scenario, chain_kind=chain, report_path=report, plot_path=plot)
    if result.aggregate_exact is False:
        raise typer.Exit(code=1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
