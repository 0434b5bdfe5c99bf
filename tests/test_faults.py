"""`cco run` under clients and faults that misbehave, on 127.0.0.1 only: silent and half-sent
requests, a flood of idle sockets, signals in a row, an unusable or shared CCO_HOME, a killed
write, and readers that close the pipe. Every loop here is bounded in count and time.

Slow: it needs the compiled binary (conftest.default_binary).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from helpers import clean_env, free_port, run, wait_for_health

pytestmark = pytest.mark.slow

HEADER_READ_TIMEOUT = 10  # seconds, server.rs
SHUTDOWN_DEADLINE = 5  # seconds, server.rs
MAX_CONNECTIONS = 256  # per service, server.rs


@contextmanager
def serving(binary: Path, home: Path) -> Iterator[tuple[subprocess.Popen[str], int, int, dict[str, str]]]:
    proxy, dashboard = free_port(), free_port()
    env = clean_env(home, CCO_PROXY_PORT=str(proxy), CCO_DASHBOARD_PORT=str(dashboard))
    process = subprocess.Popen([str(binary), "run"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_health(proxy)
        wait_for_health(dashboard)
        yield process, proxy, dashboard, env
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def requests(port: int, count: int) -> None:
    for _ in range(count):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
            assert response.status == 200


def saved_total(home: Path) -> int:
    return sum(entry["count"] for entry in json.loads((home / "stats.json").read_text())["requests"])


def test_a_half_sent_request_cannot_hold_up_the_shutdown(default_binary: Path, tmp_path: Path) -> None:
    with serving(default_binary, tmp_path / "home") as (process, proxy, _, _):
        requests(proxy, 3)
        stalled = socket.create_connection(("127.0.0.1", proxy))
        stalled.sendall(b"GET /health HTTP/1.1\r\nHo")
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        _, logs = process.communicate(timeout=SHUTDOWN_DEADLINE + 10)
        took = time.monotonic() - started
        stalled.close()
    assert process.returncode == 0, logs
    assert took < SHUTDOWN_DEADLINE + 3, f"the shutdown took {took:.1f} s"
    assert "SIGTERM: saving the counts and shutting down" in logs
    assert saved_total(tmp_path / "home") >= 3


def test_counts_are_saved_at_the_signal_so_a_kill_after_it_loses_none(default_binary: Path, tmp_path: Path) -> None:
    """docker stop: SIGTERM, then SIGKILL while connections are still closing."""
    home = tmp_path / "home"
    with serving(default_binary, home) as (process, proxy, _, _):
        requests(proxy, 25)
        stalled = socket.create_connection(("127.0.0.1", proxy))
        stalled.sendall(b"GET /health HTTP/1.1\r\n")  # keeps the shutdown waiting for its deadline
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + SHUTDOWN_DEADLINE
        while time.monotonic() < deadline and not ((home / "stats.json").exists() and saved_total(home) >= 25):
            time.sleep(0.1)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        stalled.close()
    assert saved_total(home) >= 25, "every count before the signal survives the kill"


def test_sighup_saves_and_exits(default_binary: Path, tmp_path: Path) -> None:
    with serving(default_binary, tmp_path / "home") as (process, proxy, _, _):
        requests(proxy, 2)
        process.send_signal(signal.SIGHUP)
        _, logs = process.communicate(timeout=SHUTDOWN_DEADLINE + 10)
    assert process.returncode == 0, logs
    assert "SIGHUP: saving the counts and shutting down" in logs
    assert saved_total(tmp_path / "home") >= 2


def test_idle_sockets_are_limited_and_closed(default_binary: Path, tmp_path: Path) -> None:
    """More idle connections than the limit: the excess is closed at once, the rest after the
    header timeout, and the other service answers throughout."""
    with serving(default_binary, tmp_path / "home") as (process, proxy, dashboard, _):
        idle = [socket.create_connection(("127.0.0.1", proxy), timeout=5) for _ in range(MAX_CONNECTIONS + 44)]
        try:
            requests(dashboard, 1)
            started = time.monotonic()
            while True:
                try:
                    requests(proxy, 1)
                    break
                except OSError:
                    assert time.monotonic() - started < HEADER_READ_TIMEOUT + 5, "the proxy never answered again"
                    time.sleep(0.5)
            closed = 0
            for connection in idle:
                connection.settimeout(0.05)
                try:
                    closed += connection.recv(1) == b""
                except OSError:
                    closed += 1
            assert closed >= MAX_CONNECTIONS + 40, f"only {closed} idle sockets were closed"
        finally:
            for connection in idle:
                connection.close()
        assert process.poll() is None


def test_an_unusable_cco_home_is_an_error_at_start(default_binary: Path) -> None:
    env = clean_env(Path("/dev/null/home"), CCO_PROXY_PORT=str(free_port()), CCO_DASHBOARD_PORT=str(free_port()))
    result = subprocess.run([str(default_binary), "run"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "error: CCO_HOME=/dev/null/home cannot be created" in result.stderr


def test_a_second_run_on_the_same_home_is_refused_and_stale_files_go(default_binary: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "stats.json.4242.tmp").write_text("{ half written")
    with serving(default_binary, home) as (process, _, _, _):
        assert not (home / "stats.json.4242.tmp").exists(), "a killed write's temporary file is removed"
        second = clean_env(home, CCO_PROXY_PORT=str(free_port()), CCO_DASHBOARD_PORT=str(free_port()))
        refused = subprocess.run([str(default_binary), "run"], env=second, capture_output=True, text=True, timeout=30)
        assert refused.returncode == 1
        assert f"another `run` (process {process.pid}) is using CCO_HOME={home}" in refused.stderr


def test_stats_right_after_requests_shows_them(default_binary: Path, tmp_path: Path) -> None:
    with serving(default_binary, tmp_path / "home") as (_, proxy, dashboard, env):
        requests(proxy, 4)
        shown = run([str(default_binary), "stats"], tmp_path, env=env).stdout
    assert f"requests recorded by the instance running on port {dashboard}" in shown
    # Four, and the one that found the server ready, whether or not they are on disk yet.
    assert "proxy      /health                     200          5" in shown


@pytest.mark.parametrize("command", ["stats", "config", "health"])
def test_a_closed_pipe_ends_a_command_quietly(default_binary: Path, tmp_path: Path, command: str) -> None:
    env = clean_env(tmp_path, CCO_PROXY_PORT=str(free_port()), CCO_DASHBOARD_PORT=str(free_port()))
    result = subprocess.run(
        ["bash", "-c", f'"{default_binary}" {command} | true; echo "status ${{PIPESTATUS[0]}}"'],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    expected = "status 1" if command == "health" else "status 0"  # nothing answers health here
    assert result.stdout.strip().endswith(expected), result.stdout + result.stderr
    assert "panicked" not in result.stderr and "Broken pipe" not in result.stderr
