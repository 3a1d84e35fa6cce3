"""Fixtures of the user-facing CLI tests: a per-user directory of its own, a password file,
and the check that an error is one line, named, exit 1 and no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from actors.entry.accounts import KEY_ENV
from actors.entry.cli import app
from actors.entry.home import HOME_ENV

# anvil's and hardhat's first dev account (the public "test test ... junk" mnemonic): funded
DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
DEV_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh per-user directory, a project directory as the working one, no raw key."""
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "home"))
    monkeypatch.delenv(KEY_ENV, raising=False)
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    return tmp_path / "home"


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text("correct horse battery staple\n")
    return path


def run(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def assert_one_line_error(result: Result, *fragments: str) -> None:
    """Exit 1, and the last line on stderr (after any progress) is the one error line naming
    the problem: no traceback."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if "error: " in line]
    assert errors == lines[-1:], result.stderr  # (a prompt may precede it on its line)
    for fragment in fragments:
        assert fragment in errors[0]
    assert "Traceback" not in result.output


def import_dev_account(password_file: Path, tmp_path: Path, name: str = "dev") -> str:
    """Import the funded dev key as account NAME; its address."""
    key_file = tmp_path / f"{name}.key"
    key_file.write_text(DEV_KEY + "\n")
    password = ("--password-file", str(password_file))
    result = run("account", "import", name, "--key-file", str(key_file), *password)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()
