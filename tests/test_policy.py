"""The generated dependency policy (deny.toml) under cargo-deny, the version the CI's audit
job installs: the default render meets it offline, against the dated RustSec snapshot; a
crate from an unknown source, under a denied license, banned, or with an advisory in the
snapshot fails it, and the failure names the crate.

cargo-deny fetches RustSec's database with git from github.com, unreachable here: git's
`url.insteadOf` (in the environment, as act's stand-in GitHub does) sends it to the snapshot,
so the fetch is cargo-deny's own. It runs in a CARGO_HOME of its own (the registry shared
with the session's builds) so that the snapshot never replaces a developer's own database.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

from helpers import GIT_IDENTITY, Project, run
from test_release import advisory_bundle, find_tool

pytestmark = pytest.mark.slow

ADVISORY_DB = "https://github.com/RustSec/advisory-db"  # deny.toml's db-urls


@pytest.fixture(scope="module")
def deny_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """cargo-deny's environment: its own CARGO_HOME, and the snapshot where it fetches RustSec's
    database from."""
    bundle = advisory_bundle()
    if bundle is None or not bundle.is_file():
        pytest.skip("the RustSec snapshot (../shared/rustsec/advisory-db.bundle) is not here")
    home = tmp_path_factory.mktemp("cargo-home")
    shared = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    for name in ("registry", "git", "config.toml"):
        if (shared / name).exists():
            (home / name).symlink_to(shared / name)
    warnings.warn("cargo-deny checks advisories against the dated RustSec snapshot, not today's", stacklevel=1)
    return {
        **os.environ,
        "CARGO_HOME": str(home),
        "CARGO_TERM_COLOR": "never",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"url.{bundle}.insteadOf",
        "GIT_CONFIG_VALUE_0": ADVISORY_DB,
    }


def deny(project: Path, env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    command = [find_tool("cargo-deny"), "deny", *arguments]
    # Diagnostics go to stderr and the summary to stdout: one stream, in order.
    return subprocess.run(
        command, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600,
        check=False,
    )  # fmt: skip


@pytest.fixture
def crate(default_project: Project, tmp_path: Path) -> Path:
    """A copy of the default render's crate, to add dependencies to."""
    copy = tmp_path / "project"
    shutil.copytree(default_project.root, copy, ignore=shutil.ignore_patterns("target"))
    return copy / "cco"


def test_the_default_render_meets_its_policy_offline(crate: Path, deny_env: dict[str, str]) -> None:
    """Fetched once (from the snapshot), then checked with no network at all: `--offline`
    makes cargo metadata and the database use what is on disk."""
    fetched = deny(crate, deny_env, "fetch", "db")
    assert fetched.returncode == 0, fetched.stdout
    run(["cargo", "fetch"], crate, env=deny_env)
    # Any fetch of the database would now fail, here or on a machine that reaches GitHub.
    unreachable = {"GIT_CONFIG_KEY_0": "url.https://unreachable.invalid/advisory-db.insteadOf"}
    result = deny(crate, {**deny_env, **unreachable}, "--offline", "check")
    assert result.returncode == 0, result.stdout
    assert "advisories ok, bans ok, licenses ok, sources ok" in result.stdout


def add_dependency(crate: Path, line: str) -> None:
    manifest = crate / "Cargo.toml"
    manifest.write_text(manifest.read_text().replace("[dependencies]\n", f"[dependencies]\n{line}\n", 1))


def local_crate(folder: Path, name: str, license: str) -> Path:
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "lib.rs").write_text("")
    manifest = f'[package]\nname = "{name}"\nversion = "0.1.0"\nedition = "2021"\nlicense = "{license}"\n'
    (folder / "Cargo.toml").write_text(manifest)
    return folder


def test_a_git_dependency_fails_the_sources_check_naming_the_crate(
    crate: Path, deny_env: dict[str, str], tmp_path: Path
) -> None:
    extra = local_crate(tmp_path / "extra", "extra", "MIT")
    run(["git", "init", "-q", "-b", "main"], extra)
    run(["git", "add", "-A"], extra)
    run(["git", "commit", "-q", "-m", "extra"], extra, env=GIT_IDENTITY)
    add_dependency(crate, f'extra = {{ git = "{extra.as_uri()}" }}')
    result = deny(crate, deny_env, "check", "sources")
    assert result.returncode != 0
    assert "error[source-not-allowed]: detected 'git' source not explicitly allowed" in result.stdout
    assert f"extra 0.1.0 git+{extra.as_uri()}" in result.stdout and "extra v0.1.0" in result.stdout
    assert "sources FAILED" in result.stdout


def test_a_copyleft_license_fails_the_licenses_check_naming_the_crate(
    crate: Path, deny_env: dict[str, str], tmp_path: Path
) -> None:
    local_crate(tmp_path / "gpl-only", "gpl-only", "GPL-3.0-only")
    add_dependency(crate, f'gpl-only = {{ path = "{tmp_path / "gpl-only"}" }}')
    result = deny(crate, deny_env, "check", "licenses")
    assert result.returncode != 0
    assert "error[rejected]: failed to satisfy license requirements" in result.stdout
    assert 'license = "GPL-3.0-only"' in result.stdout and "gpl-only v0.1.0" in result.stdout
    assert "licenses FAILED" in result.stdout


def test_openssl_is_banned_naming_the_crate_and_the_reason(crate: Path, deny_env: dict[str, str]) -> None:
    add_dependency(crate, 'openssl-sys = "0.9"')
    result = deny(crate, deny_env, "check", "bans")
    assert result.returncode != 0
    assert "error[banned]: crate 'openssl-sys = " in result.stdout
    assert "use rustls" in result.stdout and "bans FAILED" in result.stdout


def test_an_advisory_in_the_snapshot_fails_the_advisories_check_naming_the_crate(
    crate: Path, deny_env: dict[str, str]
) -> None:
    """smallvec 0.6.12 (not yanked) has RUSTSEC-2021-0003, a heap overflow fixed in 0.6.14."""
    add_dependency(crate, 'smallvec-old = { package = "smallvec", version = "=0.6.12" }')
    result = deny(crate, deny_env, "check", "advisories")
    assert result.returncode != 0
    assert "error[vulnerability]: Buffer overflow in SmallVec::insert_many" in result.stdout
    assert "RUSTSEC-2021-0003" in result.stdout and "smallvec v0.6.12" in result.stdout
    assert "advisories FAILED" in result.stdout
