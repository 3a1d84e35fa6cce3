"""`omnilytics`: the command line of the market (typer)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from actors.entry import tasks_cli
from actors.entry.accounts import account_app
from actors.entry.deploy import deploy_command
from actors.entry.open_tasks import tasks_command
from protocol.constants import DATA_PATHS, MAX_CHUNK_WORDS

if TYPE_CHECKING:
    from actors.entry.scenario import Scenario

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


def _data_path(name: str | None, chain: str) -> int | None:
    """`--data-path` as the config's number (None: not given); blobs need a node."""
    from protocol.constants import DATA_PATH_BLOB, DATA_PATHS

    if name is None:
        return None
    if name not in DATA_PATHS:
        raise typer.BadParameter(f"--data-path is one of {', '.join(DATA_PATHS)}, not {name!r}")
    if DATA_PATHS[name] == DATA_PATH_BLOB and chain == "boa":
        raise typer.BadParameter(
            "--data-path blob needs a node (--chain anvil): the embedded titanoboa chain "
            "cannot carry blob transactions"
        )
    return DATA_PATHS[name]


RULE_HELP = (
    "how the model owner combines group aggregates: mean (no defence), median, trimmed_mean, "
    "multi_krum, or fltrust, recommended when data owners may poison (docs/robustness.md); "
    "parameters as in fltrust:norm=bounded,bound=2"
)


# a swarm's shape when no spec is given: more data owners and rounds than the demo's MNIST spec
_SWARM_DEFAULTS = {"dos": 20, "rounds": 2}


def _scenario(command: str, task: Path | None, **fields: object) -> Scenario:
    """A scenario from command-line values, refused with a message before anything runs: a run
    of the spec `task` (the MNIST CNN's, `examples/mnist-cnn.toml`, if none), whose terms are
    the defaults of the values not given."""
    from actors.entry.scenario import MNIST_SPEC, Scenario
    from protocol.errors import ConfigError
    from protocol.robust import rule_from_spec

    if task is None:
        task = MNIST_SPEC
        if command == "swarm":
            fields = {k: v for k, v in fields.items() if v is not None}
            fields = _SWARM_DEFAULTS | fields
    try:
        scenario = Scenario.for_spec(task, **fields)
    except (OSError, ConfigError) as error:  # SpecError is a ConfigError
        _fail(command, error if not isinstance(error, OSError) else f"{task}: {error}")
    if not 2 <= scenario.threshold <= scenario.group_size <= scenario.dos:
        raise typer.BadParameter("need 2 <= threshold <= group-size <= dos")
    if scenario.alpha is not None and not scenario.alpha > 0:
        raise typer.BadParameter("--alpha (Dirichlet concentration) must be positive")
    try:
        rule_from_spec(scenario.rule)
    except ConfigError as error:
        raise typer.BadParameter(f"--rule: {error}") from None
    try:
        scenario.spec()  # the spec that is run, with the values given as its terms
    except ConfigError as error:
        _fail(command, error)
    return scenario


def _fail(run: str, error: Exception | str) -> NoReturn:
    """A run that failed: one line naming what failed and why, no traceback; exit 1."""
    reason = " ".join(str(error).split())
    console.print(f"[red]{run} failed:[/red] {escape(reason)}", soft_wrap=True)
    raise typer.Exit(code=1) from None


@app.callback()
def _main() -> None:
    """OmniLytics: a blockchain data market for machine learning."""


TASK_HELP = (
    "run this task spec (TOML) on the data set the project ships for it; its terms are the "
    "defaults of the options above [default: examples/mnist-cnn.toml]"
)
DATA_DIR_HELP = (
    "where the data owners' files are written (one folder each) [default: a cache folder of "
    "this split, reused]"
)


@app.command()
def demo(
    dos: Annotated[int | None, typer.Option(help="data owners [default: 10]")] = None,
    rounds: Annotated[int | None, typer.Option(help="training rounds [default: 1]")] = None,
    group_size: Annotated[int | None, typer.Option(help="group size m [default: 5]")] = None,
    threshold: Annotated[
        int | None, typer.Option(help="Shamir threshold t per group [default: 3]")
    ] = None,
    chain: Annotated[
        str, typer.Option(help="boa (embedded), or anvil or hardhat (a local node)")
    ] = "boa",
    rule: Annotated[str | None, typer.Option(help=RULE_HELP + " [default: mean]")] = None,
    do_samples: Annotated[
        int | None, typer.Option(help="samples per data owner [default: 1000]")
    ] = None,
    alpha: Annotated[float | None, typer.Option(help="Dirichlet label skew (default IID)")] = None,
    seed: Annotated[int, typer.Option(help="seed of the data split and the models")] = 0,
    drop: Annotated[
        list[str] | None, typer.Option(help="a data owner vanishes: DO:ROUND:STEP")
    ] = None,
    report: Annotated[Path | None, typer.Option(help="write the run report as JSON here")] = None,
    plot: Annotated[Path, typer.Option(help="write accuracy and gas per round as PNG here")] = Path(
        "reports/demo.png"
    ),
    data_path: Annotated[
        str | None,
        typer.Option(
            help="masked updates as event (calldata) or blob (EIP-4844, anvil) [default: event]"
        ),
    ] = None,
    task: Annotated[Path | None, typer.Option(help=TASK_HELP)] = None,
    data_dir: Annotated[Path | None, typer.Option(help=DATA_DIR_HELP)] = None,
) -> None:
    """Run a whole market in one process: 1 model owner + N data owners, a run of a task spec
    (the MNIST CNN's unless --task names another) on the data set the project ships for it."""
    from actors.entry.run import RunError
    from actors.entry.run import demo as run_demo

    scenario = _scenario(
        "demo",
        task,
        data_dir=None if data_dir is None else str(data_dir),
        do_samples=do_samples,
        data_path=_data_path(data_path, chain),
        dos=dos,
        rounds=rounds,
        group_size=group_size,
        threshold=threshold,
        rule=rule,
        alpha=alpha,
        seed=seed,
        drops=_parse_drops(drop or []),
    )
    if chain == "boa":
        _data_path({v: k for k, v in DATA_PATHS.items()}[scenario.data_path], chain)
    try:
        result = run_demo(scenario, chain_kind=chain, report_path=report, plot_path=plot)
    except RunError as error:
        _fail("demo", error)
    if result.aggregate_exact is False:
        raise typer.Exit(code=1)


@app.command()
def swarm(
    dos: Annotated[int | None, typer.Option(help="data owner processes [default: 20]")] = None,
    rounds: Annotated[int | None, typer.Option(help="training rounds [default: 2]")] = None,
    group_size: Annotated[int | None, typer.Option(help="group size m [default: 5]")] = None,
    threshold: Annotated[
        int | None, typer.Option(help="Shamir threshold t per group [default: 3]")
    ] = None,
    chain: Annotated[str, typer.Option(help="anvil or hardhat (started here), or rpc")] = "anvil",
    rpc_url: Annotated[str | None, typer.Option(help="a running node instead")] = None,
    rule: Annotated[str | None, typer.Option(help=RULE_HELP + " [default: mean]")] = None,
    do_samples: Annotated[
        int | None, typer.Option(help="samples per data owner [default: 1000]")
    ] = None,
    alpha: Annotated[float | None, typer.Option(help="Dirichlet label skew (default IID)")] = None,
    seed: Annotated[int, typer.Option(help="seed of the data split and the models")] = 0,
    drop: Annotated[list[str] | None, typer.Option(help="drop a data owner: DO:ROUND:STEP")] = None,
    state_dir: Annotated[Path | None, typer.Option(help="keep the processes' state here")] = None,
    report: Annotated[Path | None, typer.Option(help="write the run report as JSON here")] = None,
    plot: Annotated[Path, typer.Option(help="write accuracy and gas per round as PNG here")] = Path(
        "reports/swarm.png"
    ),
    timeout: Annotated[float, typer.Option(help="give up after this many seconds")] = 1_800,
    data_path: Annotated[
        str | None,
        typer.Option(help="masked updates as event (calldata) or blob (EIP-4844) [default: event]"),
    ] = None,
    beacon_url: Annotated[
        str | None, typer.Option(help="read blobs from this beacon node (default: the node)")
    ] = None,
    task: Annotated[Path | None, typer.Option(help=TASK_HELP)] = None,
    data_dir: Annotated[Path | None, typer.Option(help=DATA_DIR_HELP)] = None,
) -> None:
    """Run the market with the model owner and each data owner in its own OS process: `task
    create` and `join` processes of a task spec (the MNIST CNN's unless --task names another),
    each reading its own folder."""
    from actors.entry.swarm import SwarmError, run_swarm

    scenario = _scenario(
        "swarm",
        task,
        data_dir=None if data_dir is None else str(data_dir),
        data_path=_data_path(data_path, chain),
        dos=dos,
        rounds=rounds,
        group_size=group_size,
        threshold=threshold,
        rule=rule,
        do_samples=do_samples,
        alpha=alpha,
        seed=seed,
        drops=_parse_drops(drop or []),
    )
    try:
        result = run_swarm(
            scenario,
            chain_kind=chain,
            rpc_url=rpc_url,
            state_dir=state_dir,
            report_path=report,
            plot_path=plot,
            timeout=timeout,
            console=console,
            beacon_url=beacon_url,
        )
    except SwarmError as error:
        _fail("swarm", error)
    if result.aggregate_exact is False:
        raise typer.Exit(code=1)


@app.command("mo")
def model_owner(
    rpc_url: Annotated[str, typer.Option(help="JSON-RPC URL of the node")],
    market: Annotated[str, typer.Option(help="address of the DataMarket contract")],
    scenario: Annotated[Path, typer.Option(help="scenario JSON (written by `swarm`)")],
    state_dir: Annotated[Path, typer.Option(help="this actor's state directory")],
    beacon_url: Annotated[
        str | None, typer.Option(help="read blobs from this beacon node (default: the node)")
    ] = None,
) -> None:
    """Run a model owner process (private key in $OMNILYTICS_PRIVATE_KEY); run again with the
    same state directory, it resumes its task."""
    from actors.entry.processes import load_scenario, run_model_owner
    from actors.roles.model_owner import ResumeError

    try:
        run_model_owner(rpc_url, market, load_scenario(scenario), state_dir, beacon_url=beacon_url)
    except ResumeError as error:
        typer.echo(f"cannot resume: {error}", err=True)
        raise typer.Exit(code=1) from None


@app.command("do")
def data_owner(
    rpc_url: Annotated[str, typer.Option(help="JSON-RPC URL of the node")],
    market: Annotated[str, typer.Option(help="address of the DataMarket contract")],
    task: Annotated[int, typer.Option(help="the task to join")],
    index: Annotated[int, typer.Option(help="which data shard of the scenario is ours")],
    scenario: Annotated[Path, typer.Option(help="scenario JSON (written by `swarm`)")],
    state_dir: Annotated[Path, typer.Option(help="this actor's state directory")],
    keep_plaintext: Annotated[bool, typer.Option(help="test mode: keep the plaintext")] = False,
    host: Annotated[
        str, typer.Option(help="address our peer channel listens on and registers")
    ] = "127.0.0.1",
    timings: Annotated[
        bool, typer.Option(help="write where the time went (protocol, chain, training)")
    ] = False,
    chunk_words: Annotated[
        int,
        typer.Option(
            min=1,
            max=MAX_CHUNK_WORDS,
            help="most words a submission transaction carries (a node whose transaction-size "
            "limit is 128 KiB, as geth's pool, takes up to 4,000)",
        ),
    ] = MAX_CHUNK_WORDS,
) -> None:
    """Run a data owner process (private key in $OMNILYTICS_PRIVATE_KEY); resumes from state."""
    from actors.entry.processes import load_scenario, run_data_owner
    from protocol.terms import HostileTerms

    try:
        run_data_owner(
            rpc_url,
            market,
            task,
            index,
            load_scenario(scenario),
            state_dir,
            keep_plaintext=keep_plaintext,
            host=host,
            timings=timings,
            chunk_words=chunk_words,
        )
    except HostileTerms as error:
        typer.echo(f"refusing task {task}: {error}", err=True)
        raise typer.Exit(code=1) from None


@app.command()
def status(
    rpc_url: Annotated[str | None, typer.Option(help="JSON-RPC URL of the node")] = None,
    market: Annotated[str | None, typer.Option(help="address of the DataMarket contract")] = None,
    network: Annotated[
        str | None, typer.Option(help="a network of omnilytics.toml instead of the two above")
    ] = None,
    task: Annotated[list[int] | None, typer.Option(help="only these tasks")] = None,
    watch: Annotated[float, typer.Option(help="refresh every N seconds (0: once)")] = 0.0,
    beacon_url: Annotated[
        str | None, typer.Option(help="read blobs from this beacon node (default: the node)")
    ] = None,
) -> None:
    """Every task of a market: phase, deadline, groups, who did what, payments (chain only)."""
    import time

    from rich.live import Live

    from actors.chain.base import ChainError
    from actors.chain.blob_sources import blob_source
    from actors.chain.market import Market
    from actors.chain.rpc_backend import RpcChain
    from actors.entry.status import read_market, render

    if network is not None:
        from actors.entry.home import one_line_errors
        from actors.entry.networks import connect, get_network, market_address, open_market

        with one_line_errors():
            net = get_network(network)
            view = open_market(connect(net), market_address(net), net)
    elif rpc_url is None or market is None:
        typer.echo("error: status needs --network NAME, or --rpc-url and --market", err=True)
        raise typer.Exit(code=1)
    try:
        if network is None:
            chain = RpcChain(rpc_url)
            view = Market(chain, market, blob_source=blob_source(chain, beacon_url))
        screen = render(read_market(view, task))
    except ChainError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(code=1) from None
    if not watch:
        console.print(screen)
        return
    with Live(screen, console=console, refresh_per_second=1) as live:
        while True:
            time.sleep(watch)
            live.update(render(read_market(view, task)))


# accounts, networks and deploy (DESIGN.md §10)
app.add_typer(account_app, name="account")
app.command("deploy")(deploy_command)
app.command("tasks")(tasks_command)
tasks_cli.register(app)  # `task create|show|model`, `join`: tasks from a spec


def main() -> None:
    app()


if __name__ == "__main__":
    main()
