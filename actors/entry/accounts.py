"""Accounts: private keys kept as encrypted JSON keystores, and `omnilytics account`.

A keystore is eth-account's v3 JSON (scrypt), the format geth and Foundry read, one file per
account in `keystores/` of the per-user directory (actors.entry.home), named `NAME.json` and
readable by its owner only. A password comes from a prompt or from `--password-file`, never
from a flag. The raw key in `$OMNILYTICS_PRIVATE_KEY` still works, for CI, with a warning that
it is unsafe for real funds.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from actors.entry.home import CliError, one_line_errors, user_home, warn

KEY_ENV = "OMNILYTICS_PRIVATE_KEY"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_HEX = re.compile(r"[0-9a-fA-F]{64}")


class AccountError(CliError):
    """A missing, corrupt or locked keystore, or a bad key or name."""


@dataclass(frozen=True, slots=True)
class KeystoreEntry:
    """One keystore as `account list` shows it (its address is stored in clear)."""

    name: str
    path: Path
    address: str | None
    problem: str | None = None


def keystore_dir() -> Path:
    return user_home() / "keystores"


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise AccountError(
            f"account name {name!r}: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def keystore_path(name: str) -> Path:
    return keystore_dir() / f"{check_name(name)}.json"


def parse_private_key(text: str) -> bytes:
    """32 bytes from 64 hex digits (with or without 0x); the key itself is never echoed."""
    digits = text.strip().removeprefix("0x").removeprefix("0X")
    if not _HEX.fullmatch(digits):
        raise AccountError(
            f"private key: must be 64 hex digits (32 bytes), got {len(digits)} characters"
            + ("" if all(c in "0123456789abcdefABCDEF" for c in digits) else " with non-hex ones")
        )
    key = bytes.fromhex(digits)
    from eth_keys.exceptions import ValidationError

    try:
        from eth_account import Account

        Account.from_key(key)
    except (ValueError, ValidationError):
        raise AccountError(
            "private key: not a valid secp256k1 key (zero or above the order)"
        ) from None
    return key


def read_text(option: str, path: Path) -> str:
    """A small text file named on the command line, or a one-line error naming it."""
    try:
        return path.read_text()
    except OSError as error:
        raise AccountError(f"{option} {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise AccountError(f"{option} {path}: not UTF-8 text") from None


def read_password(password_file: Path | None, prompt: str, *, confirm: bool = False) -> str:
    """The password: the first line of `password_file`, else asked for (hidden)."""
    if password_file is not None:
        text = read_text("--password-file", password_file)
        password = text.splitlines()[0] if text else ""
    else:
        password = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    if not password:
        where = f"--password-file {password_file}" if password_file else "the prompt"
        raise AccountError(f"the password from {where} is empty")
    return password


def create(name: str, key: bytes, password: str) -> tuple[str, Path]:
    """Encrypt `key` into a new keystore NAME; never replaces one. Its address and path."""
    from eth_account import Account

    path = keystore_path(name)
    keystore = Account.encrypt(key, password, kdf="scrypt")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise AccountError(f"account {name!r} exists ({path}); choose another name") from None
    with os.fdopen(descriptor, "w") as file:
        json.dump(keystore, file)
    return Account.from_key(key).address, path


def _read_keystore(name: str, path: Path) -> dict[str, Any]:
    """A keystore's JSON, checked for the v3 fields decryption needs."""
    try:
        keystore = json.loads(path.read_text())
    except FileNotFoundError:
        raise AccountError(
            f"no account {name!r} (no {path}); `omnilytics account list` shows yours"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AccountError(f"keystore {path} is corrupt: {error.__class__.__name__}") from None
    if not isinstance(keystore, dict):
        raise AccountError(f"keystore {path} is corrupt: not a JSON object")
    crypto = keystore.get("crypto") or keystore.get("Crypto")
    if not isinstance(crypto, dict) or keystore.get("version") != 3:
        raise AccountError(f"keystore {path} is corrupt: not a v3 keystore")
    missing = {"cipher", "ciphertext", "kdf", "kdfparams", "mac"} - crypto.keys()
    if missing:
        raise AccountError(f"keystore {path} is corrupt: no {', '.join(sorted(missing))}")
    return keystore


def require(name: str) -> None:
    """Refuse a missing or corrupt keystore before anyone is asked for its password."""
    _read_keystore(name, keystore_path(name))


def list_accounts() -> list[KeystoreEntry]:
    """Every keystore in the per-user directory, by name; a corrupt one says why."""
    entries = []
    for path in sorted(keystore_dir().glob("*.json")):
        name = path.stem
        try:
            address = _read_keystore(name, path).get("address")
        except AccountError as error:
            entries.append(KeystoreEntry(name, path, None, str(error)))
            continue
        if isinstance(address, str) and re.fullmatch(r"(0x)?[0-9a-fA-F]{40}", address):
            from eth_utils import to_checksum_address

            entries.append(KeystoreEntry(name, path, to_checksum_address(address)))
        else:
            entries.append(KeystoreEntry(name, path, None, "no address recorded"))
    return entries


def unlock(name: str, password: str) -> bytes:
    """The private key of keystore NAME."""
    from eth_account import Account

    path = keystore_path(name)
    keystore = _read_keystore(name, path)
    try:
        return bytes(Account.decrypt(keystore, password))
    except ValueError as error:
        if "MAC mismatch" in str(error):
            raise AccountError(f"wrong password for account {name!r}") from None
        raise AccountError(f"keystore {path} is corrupt: {error}") from None
    except (KeyError, TypeError) as error:
        raise AccountError(f"keystore {path} is corrupt: {error.__class__.__name__}") from None


def signing_key(account: str | None, password_file: Path | None) -> str:
    """The hex private key a command signs with: account NAME's keystore (password from the
    file or a prompt), else `$OMNILYTICS_PRIVATE_KEY` with a warning."""
    if account is not None:
        require(account)
        password = read_password(password_file, f"password for account {account}")
        return "0x" + unlock(account, password).hex()
    raw = os.environ.get(KEY_ENV)
    if not raw:
        raise AccountError(
            "no account: pass --account NAME (`omnilytics account new` or `import` makes one)"
        )
    warn(f"signing with the raw key in ${KEY_ENV}: unsafe for real funds; use --account NAME")
    return "0x" + parse_private_key(raw).hex()


# `omnilytics account ...`

account_app = typer.Typer(
    help="Accounts: encrypted keystores (v3 JSON, scrypt) in the per-user directory.",
    no_args_is_help=True,
)

PasswordFile = Annotated[
    Path | None,
    typer.Option(help="read the password from this file's first line (default: a prompt)"),
]


@account_app.command("new")
def account_new(
    name: Annotated[str, typer.Argument(help="the account's name (--account NAME)")],
    password_file: PasswordFile = None,
) -> None:
    """Create a key and store it encrypted; print its address."""
    with one_line_errors():
        check_name(name)
        if keystore_path(name).exists():
            raise AccountError(f"account {name!r} exists ({keystore_path(name)})")
        password = read_password(password_file, "new password", confirm=True)
        address, path = create(name, os.urandom(32), password)
    typer.echo(address)
    warn(f"account {name} saved in {path}: keep the password, it cannot be recovered")


@account_app.command("import")
def account_import(
    name: Annotated[str, typer.Argument(help="the account's name (--account NAME)")],
    key_file: Annotated[
        Path | None,
        typer.Option(help="read the private key (hex) from this file (default: a hidden prompt)"),
    ] = None,
    password_file: PasswordFile = None,
) -> None:
    """Store an existing private key encrypted; print its address."""
    with one_line_errors():
        check_name(name)
        if keystore_path(name).exists():
            raise AccountError(f"account {name!r} exists ({keystore_path(name)})")
        if key_file is not None:
            text = read_text("--key-file", key_file)
        else:
            text = typer.prompt("private key (hex)", hide_input=True)
        key = parse_private_key(text)
        password = read_password(password_file, "new password", confirm=True)
        address, _ = create(name, key, password)
    typer.echo(address)


@account_app.command("check")
def account_check(
    name: Annotated[str, typer.Argument(help="the account's name")],
    password_file: PasswordFile = None,
) -> None:
    """Unlock an account with its password (to check it); print its address."""
    from eth_account import Account

    with one_line_errors():
        require(name)
        key = unlock(name, read_password(password_file, f"password for account {name}"))
    typer.echo(Account.from_key(key).address)


@account_app.command("list")
def account_list(
    as_json: Annotated[bool, typer.Option("--json", help="JSON for scripts")] = False,
) -> None:
    """Every account: name and address (no password needed)."""
    entries = list_accounts()
    if as_json:
        rows = [{"name": e.name, "address": e.address, "problem": e.problem} for e in entries]
        typer.echo(json.dumps(rows))
        return
    if not entries:
        typer.echo(f"no accounts in {keystore_dir()} (`omnilytics account new NAME`)", err=True)
    for entry in entries:
        typer.echo(f"{entry.name}\t{entry.address or entry.problem}")
