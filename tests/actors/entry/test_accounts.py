"""`omnilytics account`: encrypted keystores made, imported, listed and unlocked; every bad
keystore, password or key is one line and exit 1."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from eth_account import Account

from actors.entry.accounts import KEY_ENV, signing_key, unlock
from tests.actors.entry.conftest import (
    DEV_ADDRESS,
    DEV_KEY,
    assert_one_line_error,
    import_dev_account,
    run,
)


def test_new_import_list_round_trip(home: Path, password_file: Path, tmp_path: Path) -> None:
    created = run("account", "new", "alice", "--password-file", str(password_file))
    assert created.exit_code == 0, created.output
    alice = created.stdout.strip()
    assert import_dev_account(password_file, tmp_path) == DEV_ADDRESS

    listed = json.loads(run("account", "list", "--json").stdout)
    assert [(a["name"], a["address"]) for a in listed] == [("alice", alice), ("dev", DEV_ADDRESS)]
    keystore = home / "keystores" / "dev.json"
    assert stat.S_IMODE(keystore.stat().st_mode) == 0o600
    stored = json.loads(keystore.read_text())
    assert stored["version"] == 3 and stored["crypto"]["kdf"] == "scrypt"
    assert DEV_KEY[2:] not in keystore.read_text()

    password = password_file.read_text().strip()
    assert unlock("dev", password).hex() == DEV_KEY[2:]
    assert Account.from_key(unlock("alice", password)).address == alice
    checked = run("account", "check", "alice", "--password-file", str(password_file))
    assert checked.exit_code == 0 and checked.stdout.strip() == alice


def test_a_prompted_password_and_key_work_too(home: Path) -> None:
    secret = "a prompted password"
    result = run("account", "import", "dev", input=f"{DEV_KEY}\n{secret}\n{secret}\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith(DEV_ADDRESS)
    assert DEV_KEY not in result.output
    assert unlock("dev", secret).hex() == DEV_KEY[2:]


def test_an_account_is_never_overwritten(home: Path, password_file: Path, tmp_path: Path) -> None:
    import_dev_account(password_file, tmp_path)
    before = (home / "keystores" / "dev.json").read_bytes()
    result = run("account", "new", "dev", "--password-file", str(password_file))
    assert_one_line_error(result, "account 'dev' exists")
    assert (home / "keystores" / "dev.json").read_bytes() == before


def test_a_wrong_password_is_one_line(home: Path, password_file: Path, tmp_path: Path) -> None:
    import_dev_account(password_file, tmp_path)
    wrong = tmp_path / "wrong"
    wrong.write_text("not the password\n")
    result = run("account", "check", "dev", "--password-file", str(wrong))
    assert_one_line_error(result, "wrong password for account 'dev'")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("{not json", "JSONDecodeError"),
        ("[1, 2]", "not a JSON object"),
        ('{"version": 3, "address": "00"}', "not a v3 keystore"),
        ('{"version": 3, "crypto": {"cipher": "aes-128-ctr"}}', "no ciphertext, kdf"),
    ],
)
def test_a_corrupt_keystore_is_one_line(
    home: Path, password_file: Path, content: str, reason: str
) -> None:
    (home / "keystores").mkdir(parents=True)
    (home / "keystores" / "broken.json").write_text(content)
    result = run("account", "check", "broken", "--password-file", str(password_file))
    assert_one_line_error(result, "keystore", "broken.json is corrupt", reason)
    listed = json.loads(run("account", "list", "--json").stdout)
    assert listed[0]["address"] is None and reason in listed[0]["problem"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["account", "check", "ghost"], "no account 'ghost'"),
        (["account", "new", "../evil"], "account name '../evil'"),
        (["account", "check", "dev", "--password-file", "/no/such/file"], "No such file"),
    ],
)
def test_bad_names_and_files_are_one_line(
    home: Path, password_file: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    import_dev_account(password_file, tmp_path)
    result = run(*args, input="pw\npw\n")
    assert_one_line_error(result, message)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("0x1234", "64 hex digits (32 bytes), got 4 characters"),
        ("zz" * 32, "got 64 characters with non-hex ones"),
        ("00" * 32, "not a valid secp256k1 key"),
    ],
)
def test_a_bad_private_key_is_refused_without_echoing_it(
    home: Path, password_file: Path, tmp_path: Path, key: str, message: str
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(key)
    result = run(
        "account", "import", "x", "--key-file", str(key_file), "--password-file", str(password_file)
    )
    assert_one_line_error(result, message)
    assert key not in result.output


def test_the_raw_key_from_the_environment_is_said_to_be_unsafe(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(KEY_ENV, DEV_KEY)
    assert signing_key(None, None) == DEV_KEY
    assert "unsafe for real funds" in capsys.readouterr().err
