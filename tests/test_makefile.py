"""Every target of the rendered Makefile, executed: ✓ when it did its work, ✗ and a non-zero exit when not.

Slow: the targets compile Rust (the shared target directory keeps it to one build of each profile).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers import Project, free_port, run, wait_for_health

pytestmark = pytest.mark.slow


def make(
    project: Project, cargo_env: dict[str, str], *arguments: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return run(["make", *arguments], project.crate, env=cargo_env, check=check)


def test_default_goal_is_the_debug_build(built: Project, cargo_env: dict[str, str]) -> None:
    assert "✓ debug build: " in make(built, cargo_env).stdout


@pytest.fixture(scope="module")
def built(default_project: Project, cargo_env: dict[str, str]) -> Project:
    make(default_project, cargo_env, "build")
    return default_project


def test_test_target_runs_the_suite(built: Project, cargo_env: dict[str, str]) -> None:
    result = make(built, cargo_env, "test")
    assert "test result: ok" in result.stdout
    assert "✓ tests passed" in result.stdout


def test_lint_target_runs_clippy_with_warnings_as_errors(built: Project, cargo_env: dict[str, str]) -> None:
    assert "✓ clippy: no warnings" in make(built, cargo_env, "lint").stdout


def test_fmt_target_leaves_the_rendered_code_unchanged(built: Project, cargo_env: dict[str, str]) -> None:
    assert "✓ formatted" in make(built, cargo_env, "fmt").stdout
    assert run(["git", "status", "--porcelain", "--untracked-files=no"], built.root).stdout == ""


def test_release_is_stripped_and_check_size_measures_it(built: Project, cargo_env: dict[str, str]) -> None:
    release = make(built, cargo_env, "release")
    assert "✓ release build: " in release.stdout and "symbols stripped by the release profile" in release.stdout
    binary = Path(cargo_env["CARGO_TARGET_DIR"]) / "release" / "cco"
    symbols = run(["nm", str(binary)], built.root, check=False)
    assert "no symbols" in symbols.stderr

    size = make(built, cargo_env, "check-size")
    assert "within the 15 MB limit" in size.stdout
    measured = re.search(r"\((\d+) bytes\) stripped", size.stdout)
    assert measured is not None, size.stdout
    # The profile already stripped it: stripping again may only trim a few bytes of padding.
    assert binary.stat().st_size - 4096 <= int(measured.group(1)) <= binary.stat().st_size


def test_check_size_fails_above_the_limit(built: Project, cargo_env: dict[str, str]) -> None:
    result = make(built, cargo_env, "check-size", "SIZE_LIMIT_BYTES=1000", "SIZE_LIMIT_MB=0.001", check=False)
    assert result.returncode != 0
    assert "✗ cco (ELF) is " in result.stderr and "above the 0.001 MB limit" in result.stderr


def test_install_into_a_prefix_without_sudo(built: Project, cargo_env: dict[str, str], tmp_path: Path) -> None:
    result = make(built, cargo_env, "install", f"PREFIX={tmp_path}")
    installed = tmp_path / "bin" / "cco"
    assert f"✓ installed {installed}" in result.stdout
    assert os.access(installed, os.X_OK)
    assert run([str(installed), "--version"], tmp_path).stdout.startswith("cco 0.1.0 (")


def test_sudo_make_install_never_builds(built: Project, cargo_env: dict[str, str], tmp_path: Path) -> None:
    """Under sudo (SUDO_USER set, sudo's secure_path: no cargo) install copies what `make release`
    built, and says what to run when there is nothing to copy."""
    sudo = {"SUDO_USER": "someone", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    empty = {**cargo_env, **sudo, "CARGO_TARGET_DIR": str(tmp_path / "empty-target")}
    missing = make(built, empty, "install", f"PREFIX={tmp_path}", check=False)
    assert missing.returncode != 0
    assert "✗ no release binary at " in missing.stderr and "run 'make release' as yourself first" in missing.stderr
    assert not (tmp_path / "bin").exists()
    make(built, cargo_env, "release")
    installed = make(built, {**cargo_env, **sudo}, "install", f"PREFIX={tmp_path}")
    assert f"✓ installed {tmp_path}/bin/cco" in installed.stdout
    assert "release build" not in installed.stdout, "nothing was built"


def test_install_into_destdir_stages_the_install_directory(
    built: Project, cargo_env: dict[str, str], tmp_path: Path
) -> None:
    make(built, cargo_env, "install", f"DESTDIR={tmp_path}")
    assert (tmp_path / "usr/local/bin/cco").is_file()


def test_install_says_when_the_directory_is_not_writable(built: Project, cargo_env: dict[str, str]) -> None:
    result = make(built, cargo_env, "install", "BINDIR=/dev/null/bin", check=False)
    assert result.returncode != 0
    assert "✗ /dev/null/bin is not writable: run 'sudo make install'" in result.stderr


def test_clean_removes_the_target_directory(built: Project, tmp_path: Path) -> None:
    target = tmp_path / "target"
    (target / "debug").mkdir(parents=True)
    result = run(["make", "clean"], built.crate, env={"CARGO_TARGET_DIR": str(target)})
    assert "✓ removed " in result.stdout
    assert not target.exists()


def test_run_target_serves_until_terminated(built: Project, cargo_env: dict[str, str], tmp_path: Path) -> None:
    proxy, dashboard = free_port(), free_port()
    env = {
        **os.environ,
        **cargo_env,
        "CCO_HOME": str(tmp_path),
        "CCO_PROXY_PORT": str(proxy),
        "CCO_DASHBOARD_PORT": str(dashboard),
    }
    process = subprocess.Popen(
        ["make", "run"], cwd=built.crate, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert wait_for_health(dashboard, seconds=120)["service"] == "dashboard"
    finally:
        # `cargo run` hands over to the binary; SIGTERM it (make's child), as a service manager would.
        children = run(["pgrep", "-P", str(process.pid)], tmp_path, check=False).stdout.split()
        for child in children:
            os.kill(int(child), signal.SIGTERM)
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if process.poll() is None:
            process.kill()
    _, logs = process.communicate()
    assert children, "make run started nothing"
    assert process.returncode == 0, logs
