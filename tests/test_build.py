"""The rendered Rust tree on a real toolchain: it builds, runs, stops, and fails clearly.

Slow: these compile Rust. Dependencies compile once into the shared target directory
(conftest.cargo_env); each render then compiles only its own crate.
"""

from __future__ import annotations

import datetime
import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from helpers import (
    BROKEN_CONFIGS,
    GIT_IDENTITY,
    Project,
    break_config,
    cargo_build,
    clean_env,
    free_port,
    get_json,
    git_init,
    render,
    run,
    wait_for_health,
    workflow,
)

pytestmark = pytest.mark.slow

COLLECTED = datetime.datetime.now(datetime.UTC).date()


def build_days() -> set[str]:
    """The UTC days from collection to now: a build in this session stamps one of them
    (a session may cross midnight, as CI's did)."""
    today = datetime.datetime.now(datetime.UTC).date()
    days = (today - COLLECTED).days
    return {str(COLLECTED + datetime.timedelta(days=n)) for n in range(days + 1)}


def assert_version(version: str, commit: str) -> None:
    prefix, _, rest = version.partition(f"({commit} ")
    assert prefix == "cco 0.1.0 " and rest.endswith(")\n"), version
    assert rest[:-2] in build_days(), version


def test_version_shows_the_commit_and_the_build_date(default_project: Project, default_binary: Path) -> None:
    commit = run(["git", "rev-parse", "--short", "HEAD"], default_project.root).stdout.strip()
    version = run([str(default_binary), "--version"], default_project.root).stdout
    assert_version(version, commit)


def test_a_new_commit_is_embedded_by_the_next_build(copie: Any, cargo_env: dict[str, str], tmp_path: Path) -> None:
    """build.rs watches HEAD and the branch ref, so an incremental build picks up a commit."""
    project = render(copie)
    git_init(project.root)
    first = run([str(cargo_build(project, cargo_env, tmp_path / "first")), "--version"], tmp_path).stdout
    run(["git", "commit", "-q", "--allow-empty", "-m", "next"], project.root, env=GIT_IDENTITY)
    commit = run(["git", "rev-parse", "--short", "HEAD"], project.root).stdout.strip()
    second = run([str(cargo_build(project, cargo_env, tmp_path / "second")), "--version"], tmp_path).stdout
    assert commit not in first
    assert_version(second, commit)


def test_help_lists_every_command(default_binary: Path, tmp_path: Path) -> None:
    help_text = run([str(default_binary), "--help"], tmp_path).stdout
    for command in ["run", "health", "stats", "config"]:
        assert f"\n  {command} " in help_text


def test_run_serves_health_on_both_ports_counts_requests_and_stops_cleanly(
    default_binary: Path, tmp_path: Path
) -> None:
    proxy, dashboard, closed = free_port(), free_port(), free_port()
    env = clean_env(
        tmp_path / "home",
        CCO_PROXY_PORT=str(proxy),
        CCO_DASHBOARD_PORT=str(dashboard),
        CCO_UPSTREAM=f"http://127.0.0.1:{closed}",
    )
    server = subprocess.Popen(
        [str(default_binary), "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        for port, service in [(proxy, "proxy"), (dashboard, "dashboard")]:
            health = wait_for_health(port)
            assert health["status"] == "ok"
            assert health["service"] == service
            assert health["version"] == "0.1.0"
            assert health["build_date"] in build_days()
            assert len(health["git_hash"]) >= 7
        # Forwarded to an upstream that is not there (tests/test_proxy.py has one that is).
        assert get_json(proxy, "/v1/models")[0] == 502

        checked = subprocess.run([str(default_binary), "health"], env=env, capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stdout.count("healthy: ") == 2

        status, stats = get_json(dashboard, "/api/stats")
        assert status == 200 and stats["total"] >= 3
    finally:
        server.send_signal(signal.SIGTERM)
        _, logs = server.communicate(timeout=30)
    assert server.returncode == 0, logs
    assert "shutting down" in logs

    # The counts outlive the process, in CCO_HOME, as valid JSON.
    saved = json.loads((tmp_path / "home" / "stats.json").read_text())
    routes = {(entry["service"], entry["route"], entry["status"]) for entry in saved["requests"]}
    assert {("proxy", "/health", 200), ("dashboard", "/health", 200), ("proxy", "upstream", 502)} <= routes
    shown = run([str(default_binary), "stats"], tmp_path, env=env).stdout
    assert "requests recorded in" in shown and "/health" in shown


def test_run_stops_on_sigint_too(default_binary: Path, tmp_path: Path) -> None:
    proxy, dashboard = free_port(), free_port()
    env = clean_env(tmp_path, CCO_PROXY_PORT=str(proxy), CCO_DASHBOARD_PORT=str(dashboard))
    server = subprocess.Popen([str(default_binary), "run"], env=env, stderr=subprocess.PIPE, text=True)
    wait_for_health(proxy)
    server.send_signal(signal.SIGINT)
    _, logs = server.communicate(timeout=30)
    assert server.returncode == 0, logs


def test_health_exits_1_when_nothing_answers(default_binary: Path, tmp_path: Path) -> None:
    env = clean_env(tmp_path, CCO_PROXY_PORT=str(free_port()), CCO_DASHBOARD_PORT=str(free_port()))
    result = subprocess.run([str(default_binary), "health"], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert result.stdout.count("unhealthy: ") == 2
    assert "cannot connect" in result.stdout


def test_stats_says_plainly_when_nothing_is_recorded(default_binary: Path, tmp_path: Path) -> None:
    result = run([str(default_binary), "stats"], tmp_path, env=clean_env(tmp_path / "empty"))
    assert result.stdout.startswith("No requests recorded yet")


def test_a_corrupt_stats_file_is_reported_and_kept(default_binary: Path, tmp_path: Path) -> None:
    (tmp_path / "stats.json").write_text("{ half")
    result = subprocess.run(
        [str(default_binary), "stats"], env=clean_env(tmp_path), capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "is not a statistics file" in result.stderr
    assert (tmp_path / "stats.json").read_text() == "{ half"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CCO_PROXY_PORT", "abc"),
        ("CCO_DASHBOARD_PORT", "70000"),
        ("CCO_CACHE_SIZE", "-1"),
        ("CCO_BIND", "nowhere"),
    ],
)
def test_a_bad_setting_names_its_variable_and_exits_2(
    default_binary: Path, tmp_path: Path, variable: str, value: str
) -> None:
    env = clean_env(tmp_path, **{variable: value})
    result = subprocess.run([str(default_binary), "run"], env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith(f'error: {variable}: "{value}"')


def test_a_bad_setting_stops_only_the_commands_that_use_it(default_binary: Path, tmp_path: Path) -> None:
    """`stats` reads CCO_HOME and the dashboard port; `health --port` no setting at all."""
    env = clean_env(tmp_path, CCO_PROXY_PORT="abc", CCO_CACHE_SIZE="0")
    stats = run([str(default_binary), "stats"], tmp_path, env=env)
    assert stats.stdout.startswith("No requests recorded yet")
    port = str(free_port())
    health = subprocess.run(
        [str(default_binary), "health", "--port", port, "--timeout", "1"], env=env, capture_output=True, text=True
    )
    assert health.returncode == 1 and f"127.0.0.1:{port} unhealthy" in health.stdout
    for command in (["run"], ["config"], ["health"]):
        refused = subprocess.run([str(default_binary), *command], env=env, capture_output=True, text=True)
        assert refused.returncode == 2, command
        assert refused.stderr.startswith('error: CCO_PROXY_PORT: "abc"'), refused.stderr


def test_rust_log_filters_the_logs_and_a_bad_filter_exits_2(default_binary: Path, tmp_path: Path) -> None:
    proxy, dashboard = free_port(), free_port()
    ports = {"CCO_PROXY_PORT": str(proxy), "CCO_DASHBOARD_PORT": str(dashboard)}
    logs = {}
    for level in ("debug", ""):
        env = clean_env(tmp_path / f"home-{level or 'default'}", RUST_LOG=level, **ports)
        server = subprocess.Popen([str(default_binary), "run"], env=env, stderr=subprocess.PIPE, text=True)
        try:
            wait_for_health(proxy)
            get_json(dashboard, "/nowhere")
        finally:
            server.send_signal(signal.SIGTERM)
            logs[level] = server.communicate(timeout=30)[1]
    assert 'served service="dashboard" route="unmatched" status=404' in logs["debug"]
    assert "served" not in logs[""] and " INFO " in logs[""]

    env = clean_env(tmp_path, RUST_LOG="cco=loud")
    refused = subprocess.run([str(default_binary), "run"], env=env, capture_output=True, text=True)
    assert refused.returncode == 2
    assert refused.stderr.startswith('error: RUST_LOG: "cco=loud" is not a log filter (')


def test_config_says_where_each_setting_comes_from(default_binary: Path, tmp_path: Path) -> None:
    env = clean_env(tmp_path, CCO_DASHBOARD_PORT="4000", CCO_UPSTREAM_TIMEOUT="30", ANTHROPIC_API_KEY="sk-ant-x")
    shown = run([str(default_binary), "config"], tmp_path, env=env).stdout
    assert "proxy port       8888" in shown and "(config/orchestra-config.json)" in shown
    assert "dashboard port   4000" in shown and "(CCO_DASHBOARD_PORT)" in shown
    assert "upstream         https://api.anthropic.com/" in shown
    assert "upstream timeout 30 s" in shown and "(CCO_UPSTREAM_TIMEOUT)" in shown
    assert "api key          set" in shown and "sk-ant-x" not in shown
    assert "architect" in shown


def ci_test_commands(project: Project) -> list[str]:
    return [step["run"] for step in workflow(project)["jobs"]["test"]["steps"] if "run" in step]


def test_the_generated_ci_test_job_passes(default_project: Project, cargo_env: dict[str, str], tmp_path: Path) -> None:
    """Every cargo step of the rendered workflow's test job, run as the workflow runs it. The
    generated tests leave nothing in the temporary folder (TMPDIR, which std's temp_dir reads)."""
    commands = [command for command in ci_test_commands(default_project) if command.startswith("cargo ")]
    assert commands == [
        "cargo test --verbose",
        "cargo fmt -- --check",
        "cargo clippy --all-targets -- -D warnings",
    ]
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    for command in commands:
        run(["bash", "-c", command], default_project.crate, env={**cargo_env, "TMPDIR": str(temporary)})
    assert sorted(path.name for path in temporary.iterdir()) == [], "left behind by the generated tests"


def test_without_git_the_hash_is_unknown_until_the_first_commit(
    copie: Any, cargo_env: dict[str, str], tmp_path: Path
) -> None:
    """No git (a source tarball, a Docker context, a render validation built before `git init`):
    `unknown`, and SOURCE_DATE_EPOCH sets the date. The next build after the first commit,
    with nothing else changed, embeds that commit."""
    project = render(copie)
    epoch = {"SOURCE_DATE_EPOCH": "86400"}
    binary = cargo_build(project, cargo_env, tmp_path / "before", env=epoch)
    assert run([str(binary), "--version"], tmp_path).stdout == "cco 0.1.0 (unknown 1970-01-02)\n"
    git_init(project.root)
    commit = run(["git", "rev-parse", "--short", "HEAD"], project.root).stdout.strip()
    binary = cargo_build(project, cargo_env, tmp_path / "after", env=epoch)
    assert run([str(binary), "--version"], tmp_path).stdout == f"cco 0.1.0 ({commit} 1970-01-02)\n"


def test_a_bad_source_date_epoch_fails_the_build_naming_it(copie: Any, cargo_env: dict[str, str]) -> None:
    project = render(copie)
    result = run(["cargo", "build"], project.crate, env={**cargo_env, "SOURCE_DATE_EPOCH": "yesterday"}, check=False)
    assert result.returncode != 0
    assert 'SOURCE_DATE_EPOCH must be a Unix timestamp in seconds; got "yesterday"' in result.stderr


@pytest.fixture(scope="module")
def config_project(copie_session: Any) -> Project:
    return render(copie_session)


@pytest.mark.parametrize(("case", "change", "message"), BROKEN_CONFIGS, ids=[case for case, _, _ in BROKEN_CONFIGS])
def test_build_rs_refuses_a_broken_configuration_naming_file_and_problem(
    config_project: Project, cargo_env: dict[str, str], case: str, change: Any, message: str
) -> None:
    config_path = config_project.root / "config" / "orchestra-config.json"
    original = config_path.read_text()
    try:
        break_config(config_path, change)
        result = run(["cargo", "build"], config_project.crate, env=cargo_env, check=False)
    finally:
        config_path.write_text(original)
    assert result.returncode != 0
    problem = next(line for line in result.stderr.splitlines() if line.startswith("  error: "))
    assert problem.startswith(f"  error: {config_path.resolve()}: "), problem
    assert message in problem


def test_crate_at_the_root_with_edition_2024_and_another_name_builds_and_lints(
    copie: Any, cargo_env: dict[str, str], tmp_path: Path
) -> None:
    project = render(copie, crate_dir=".", edition="2024", crate_name="orchestra")
    git_init(project.root)
    binary = cargo_build(project, cargo_env, tmp_path)
    assert run([str(binary), "--version"], tmp_path).stdout.startswith("orchestra 0.1.0 (")
    run(["cargo", "clippy", "--all-targets", "--", "-D", "warnings"], project.crate, env=cargo_env)
