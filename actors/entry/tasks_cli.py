"""`omnilytics task create|show|model` and `omnilytics join`: tasks from a spec, no scenario.

A model owner creates a task from its spec (TOML) and its own labelled data; anyone reads a task's
spec, terms and phase from chain data; the model owner writes its current model (public part,
private head and spec, as safetensors) at any round; a data owner joins with its own files;
anyone withdraws what the market and its court owe it. The commands that sign find their node,
market and key one way (actors.entry.signer: `--network` and `--account`, or `--rpc-url`,
`--market` and $OMNILYTICS_PRIVATE_KEY). Results go to stdout, progress and refusals to stderr;
a refusal is one line and exit code 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from actors.entry.signer import (
    AccountName,
    MarketAddress,
    MaxFee,
    NetworkName,
    PasswordFile,
    PriorityFee,
    RpcUrl,
    Yes,
)
from protocol.constants import MAX_CHUNK_WORDS

task_app = typer.Typer(
    help="A task from a spec: create it (model owner), show it, export its model.",
    no_args_is_help=True,
)


def _refuse(what: str, error: BaseException | str) -> NoReturn:
    reason = " ".join(str(error).split())
    typer.echo(f"error: {what}: {reason}", err=True)
    raise typer.Exit(code=1) from None


def _refusals() -> tuple[type[BaseException], ...]:
    from actors.chain.base import ChainError
    from actors.entry.home import CliError
    from actors.entry.spec_tasks import TaskRefused
    from actors.roles.join import JoinRefused
    from actors.roles.model_owner import ResumeError
    from protocol.errors import ConfigError, RemoteProtocolError

    # HostileTerms is a ConfigError; a bad account or network a CliError
    refusals = (TaskRefused, JoinRefused, ResumeError, ConfigError, RemoteProtocolError)
    return (*refusals, ChainError, CliError)


_INTERRUPTED = "interrupted; run it again with the same --state-dir to resume"


@contextmanager
def _refused_as(what: str) -> Iterator[None]:
    """Any refusal, a prompt with no answer or Ctrl-C: one line on stderr and exit 1."""
    import click

    try:
        yield
    except _refusals() as error:
        _refuse(what, error)
    except (click.exceptions.Abort, typer.Abort):
        _refuse(what, "no answer to the prompt (aborted)")
    except KeyboardInterrupt:
        _refuse(what, _INTERRUPTED)
    except BaseExceptionGroup as group:  # out of a trio nursery: Ctrl-C there, or a real error
        _, rest = group.split(KeyboardInterrupt)
        if rest is not None:
            raise
        _refuse(what, _INTERRUPTED)


@task_app.command("create")
def create(
    spec: Annotated[Path, typer.Argument(help="the task spec (TOML)")],
    validation: Annotated[
        Path, typer.Option(help="your own labelled data: the FLTrust reference and accuracy")
    ],
    network: NetworkName = None,
    account: AccountName = None,
    password_file: PasswordFile = None,
    rpc_url: RpcUrl = None,
    market: MarketAddress = None,
    state_dir: Annotated[Path, typer.Option(help="this model owner's state")] = Path(
        ".omnilytics/model-owner"
    ),
    test: Annotated[
        Path | None, typer.Option(help="held-out labelled data for accuracy (default: validation)")
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the model's initialisation")] = 0,
    beacon_url: Annotated[
        str | None,
        typer.Option(help="read blobs from this beacon node (default: the network's, the node)"),
    ] = None,
    yes: Yes = False,
    max_fee: MaxFee = None,
    priority_fee: PriorityFee = None,
) -> None:
    """Create a task from SPEC, print its id, and drive it to its end (run again with the same
    state directory: it resumes its task)."""
    from actors.entry.progress import ether
    from actors.entry.signer import open_signer
    from actors.entry.spec_tasks import check_task_owner, run_task_owner

    def announce(task: int) -> None:
        typer.echo(task)

    with _refused_as("task create refused"):
        checked, learner = check_task_owner(spec, validation, test, seed)
        signer = open_signer(
            network,
            account,
            password_file,
            rpc_url=rpc_url,
            max_fee=max_fee,
            priority_fee=priority_fee,
        )
        view = signer.market(market)
        terms = checked.market
        escrow = terms.reward_wei * terms.rounds * terms.max_dos
        signer.confirm(f"create a task escrowing {ether(escrow)}", yes)
        result = run_task_owner(
            signer, view, checked, learner, state_dir, beacon_url=beacon_url, announce=announce
        )
    refunded = int(result.get("refunded_wei") or 0)
    typer.echo(f"task {result['task']} over: {ether(refunded)} of the escrow refunded", err=True)


@task_app.command("show")
def show(
    task: Annotated[int, typer.Argument(help="the task id")],
    network: NetworkName = None,
    rpc_url: RpcUrl = None,
    market: MarketAddress = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """A task's spec summary, terms and phase, from chain data alone."""
    from actors.entry.signer import open_reader
    from actors.entry.spec_tasks import describe_task

    with _refused_as("task show"):
        facts = describe_task(open_reader(network, rpc_url).market(market), task)
    if as_json:
        typer.echo(json.dumps(facts, indent=2))
        return
    typer.echo(render_task(facts))


def render_task(facts: dict) -> str:
    """`task show`'s text: what the task trains, on what data, for what terms, where it is."""
    model, data, training, terms = facts["model"], facts["data"], facts["training"], facts["terms"]
    target = f"{data['classes']} classes" if data["classes"] else "a regression target"
    durations = ", ".join(f"{k} {v} s" for k, v in terms["durations_s"].items())
    return "\n".join(
        [
            f"task {facts['task']} of {facts['owner']} (spec {facts['spec_hash'][:18]}…)",
            f"model: {len(model['layers'])} layers ({' '.join(model['layers'])}), public "
            f"{model['public_params']:,} parameters (body {model['body_params']:,}), private "
            f"head from layer {model['private_from']} ({model['head_params']:,}), "
            f"{model['flops_per_sample']:,} FLOPs per sample",
            f"data: {data['kind']} {data['shape']}, label {data['label']!r}, {target}, "
            f"{data['min_samples']:,} to {data['max_samples']:,} samples per data owner",
            f"training: {training['loss']}, {training['optimizer']} lr {training['lr']}, "
            f"{training['epochs']} epochs of batches of {training['batch_size']}",
            f"terms: {terms['rounds']} rounds, {terms['min_dos']}-{terms['max_dos']} data owners "
            f"in groups of {terms['group_size']} (threshold {terms['threshold']}), "
            f"{terms['reward_per_do_wei'] / 1e18:g} ETH per data owner per round, bond "
            f"{terms['bond_wei'] / 1e18:g} ETH, rule {terms['rule']}, {durations}",
            f"phase: {facts['phase']} of round {facts['round']}, deadline {facts['deadline']}, "
            f"{facts['registered']} registered",
        ]
    )


@task_app.command("model")
def model(
    task: Annotated[int, typer.Argument(help="the task id")],
    out: Annotated[Path, typer.Option(help="write the model here (safetensors)")],
    state_dir: Annotated[Path, typer.Option(help="the model owner's state")] = Path(
        ".omnilytics/model-owner"
    ),
) -> None:
    """Write the model owner's current model (public part, private head and spec) as safetensors:
    `actors.learning.spec_model.load_exported` or `safetensors.torch.load_file` reads it."""
    from actors.entry.spec_tasks import exported_model

    with _refused_as("task model"):
        saved = exported_model(state_dir, task)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(saved.model)
    typer.echo(f"{out}: task {task}'s model after {saved.rounds} rounds", err=True)


def _parse_drop(text: str | None) -> tuple[int, str] | None:
    if text is None:
        return None
    round_, _, step = text.partition(":")
    if not round_.isdigit() or step not in ("share", "submit", "unmask"):
        raise typer.BadParameter(f"{text!r}: use ROUND:STEP with STEP share, submit or unmask")
    return int(round_), step


def join(
    task: Annotated[int, typer.Argument(help="the task to join")],
    data: Annotated[Path, typer.Option(help="your data: a folder, a table or an .npz")],
    network: NetworkName = None,
    account: AccountName = None,
    password_file: PasswordFile = None,
    rpc_url: RpcUrl = None,
    market: MarketAddress = None,
    state_dir: Annotated[Path | None, typer.Option(help="this data owner's state")] = None,
    host: Annotated[
        str, typer.Option(help="address our peer channel listens on and registers")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65_535, help="the port it listens on (0: any free one)")
    ] = 0,
    seed: Annotated[int | None, typer.Option(help="seed of the batch order")] = None,
    yes: Yes = False,
    max_fee: MaxFee = None,
    priority_fee: PriorityFee = None,
    chunk_words: Annotated[
        int, typer.Option(min=1, max=MAX_CHUNK_WORDS, help="most words a submission carries")
    ] = MAX_CHUNK_WORDS,
    keep_plaintext: Annotated[bool, typer.Option(hidden=True)] = False,
    drop: Annotated[str | None, typer.Option(hidden=True, help="vanish at ROUND:STEP")] = None,
    timings: Annotated[bool, typer.Option(hidden=True)] = False,
) -> None:
    """Join TASK as a data owner with your own data: the task's spec is read from the chain and
    your files are checked against it before any bond is staked; take part in every round,
    withdraw at the end and print what you earned (run again with the same state directory:
    it resumes)."""
    from actors.entry.progress import ether
    from actors.entry.signer import open_signer
    from actors.entry.spec_tasks import check_join, run_join

    drop_at = _parse_drop(drop)
    with _refused_as("refusing to join"):
        signer = open_signer(
            network,
            account,
            password_file,
            rpc_url=rpc_url,
            max_fee=max_fee,
            priority_fee=priority_fee,
        )
        view = signer.market(market)
        learner = check_join(view, task, signer.account, data, seed)
        bond = view.config(task).bond
        signer.confirm(f"join task {task}, staking a bond of {ether(bond)}", yes)
        result = run_join(
            signer,
            view,
            task,
            learner,
            state_dir or Path(f".omnilytics/data-owner-{task}"),
            host=host,
            port=port,
            keep_plaintext=keep_plaintext,
            drop_at=drop_at,
            chunk_words=chunk_words,
            timings=timings,
            seed=seed,
        )
    withdrawn = int(result["withdrawn_wei"])
    typer.echo(
        f"task {task}: withdrew {ether(withdrawn)}: the bond of {ether(bond)} back and "
        f"{ether(withdrawn - bond)} earned"
    )


def withdraw(
    network: NetworkName = None,
    account: AccountName = None,
    password_file: PasswordFile = None,
    rpc_url: RpcUrl = None,
    market: MarketAddress = None,
    task: Annotated[
        int | None, typer.Option(help="first take back your bond from this task (once over)")
    ] = None,
    yes: Yes = False,
    max_fee: MaxFee = None,
    priority_fee: PriorityFee = None,
) -> None:
    """Withdraw what the market and its court owe you (rewards, refunds, deposits, with --task
    your bond); print the amount."""
    from actors.entry.progress import ether
    from actors.entry.signer import open_signer
    from actors.entry.spec_tasks import withdraw_all

    with _refused_as("withdraw"):
        signer = open_signer(
            network,
            account,
            password_file,
            rpc_url=rpc_url,
            max_fee=max_fee,
            priority_fee=priority_fee,
        )
        view = signer.market(market)
        signer.confirm(f"withdraw to {signer.account}", yes)
        total = withdraw_all(view, signer.account, task)
    typer.echo(f"withdrew {ether(total)} to {signer.account}")


def register(app: typer.Typer) -> None:
    """Add `task`, `join` and `withdraw` to the main command line."""
    app.add_typer(task_app, name="task")
    app.command("join")(join)
    app.command("withdraw")(withdraw)
