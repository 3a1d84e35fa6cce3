"""Contract artifacts are compiled once per source version and then read from the user's cache
as JSON: a second process does not compile, and a changed source is compiled again."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.chain import artifacts, boa_backend
from actors.chain.artifacts import COURT_SOURCE, artifact_for


def test_a_compiled_artifact_is_read_back_from_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    artifacts._artifact.cache_clear()
    compiled = artifact_for(COURT_SOURCE)
    (cached,) = (tmp_path / "omnilytics" / "artifacts").glob("SharesCourt-*.json")

    def no_compiler(source: Path) -> None:
        raise AssertionError(f"{source} compiled again")

    artifacts._artifact.cache_clear()  # as a new process
    monkeypatch.setattr(boa_backend, "deployer_for", no_compiler)
    assert artifact_for(COURT_SOURCE) == compiled

    artifacts._artifact.cache_clear()
    monkeypatch.setattr(artifacts, "_sources_key", lambda: "changed")
    with pytest.raises(AssertionError, match="compiled again"):
        artifact_for(COURT_SOURCE)
    assert cached.exists()
