"""The per-user directory and the one-line error every command of a user's CLI ends with.

The directory holds keystores, the user's `omnilytics.toml` and its deployments:
`$OMNILYTICS_HOME` if set (tests, or several identities on one machine), else
`$XDG_CONFIG_HOME/omnilytics` (`~/.config/omnilytics`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import typer

HOME_ENV = "OMNILYTICS_HOME"


class CliError(Exception):
    """Bad input or a refused action: the command prints this one line and exits 1."""


def user_home() -> Path:
    """The per-user directory (not created here)."""
    explicit = os.environ.get(HOME_ENV)
    if explicit:
        return Path(explicit).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config) / "omnilytics"


def warn(message: str) -> None:
    """A warning on stderr (results go to stdout)."""
    print(f"warning: {message}", file=sys.stderr)


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Turn a CliError, or a prompt that got no answer, into one line on stderr and exit 1."""
    try:
        yield
    except CliError as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        raise typer.Exit(1) from None
    except (click.exceptions.Abort, typer.Abort):
        print("error: no answer to the prompt (aborted)", file=sys.stderr)
        raise typer.Exit(1) from None
