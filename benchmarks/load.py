"""Load and faults for `cco run`, on 127.0.0.1 only, every loop bounded in count and time:
requests at a fixed concurrency (errors, p50 and p99 latency), a flood of idle sockets (how
many the server holds, and whether the other service answers meanwhile), and kills (counts
lost to a SIGKILL after the save interval, and after a SIGTERM)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import threading
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

CONCURRENCY = 8
REQUESTS_PER_CLIENT = 500
IDLE_SOCKETS = 1000
KILLS = 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(
    binary: Path, home: Path, settings: Mapping[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], int, int]:
    proxy, dashboard = free_port(), free_port()
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith("CCO_")},
        "CCO_HOME": str(home),
        "CCO_PROXY_PORT": str(proxy),
        "CCO_DASHBOARD_PORT": str(dashboard),
        **(settings or {}),
    }
    process = subprocess.Popen([str(binary), "run"], env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{dashboard}/health", timeout=1):
                return process, proxy, dashboard
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise SystemExit("cco run never answered /health") from None
            time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)


def saved(home: Path) -> int:
    path = home / "stats.json"
    return sum(entry["count"] for entry in json.loads(path.read_text())["requests"]) if path.exists() else 0


def load(port: int) -> tuple[list[float], int]:
    """CONCURRENCY clients, each on one kept-alive connection, REQUESTS_PER_CLIENT requests."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine = []
        for _ in range(REQUESTS_PER_CLIENT):
            started = time.perf_counter()
            try:
                connection.request("GET", "/health")
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            mine.append(time.perf_counter() - started)
            if not ok:
                with lock:
                    errors[0] += 1
        connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return latencies, errors[0]


def idle_flood(proxy: int, dashboard: int) -> tuple[int, bool, float]:
    """IDLE_SOCKETS silent connections to the proxy: how many stayed open a second later, whether
    the dashboard answered meanwhile, and how long until the proxy answered again."""
    sockets = []
    try:
        for _ in range(IDLE_SOCKETS):
            try:
                sockets.append(socket.create_connection(("127.0.0.1", proxy), timeout=2))
            except OSError:
                break
        time.sleep(1)
        held = 0
        for connection in sockets:
            connection.settimeout(0.01)
            try:
                held += connection.recv(1) != b""
            except TimeoutError:
                held += 1
            except OSError:
                pass
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{dashboard}/health", timeout=2) as response:
                answered = response.status == 200
        except OSError:
            answered = False
        started = time.monotonic()
        while time.monotonic() - started < 30:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{proxy}/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.2)
        return held, answered, time.monotonic() - started
    finally:
        for connection in sockets:
            connection.close()


def measure(binary: Path, work: Path) -> list[tuple[str, str, str]]:
    """Rows of (what, how, figure) for docs/BENCHMARKS.md."""
    rows = []
    home = work / "load-home"
    process, proxy, dashboard = start(binary, home)
    try:
        latencies, errors = load(proxy)
        ordered = sorted(latencies)
        p50 = statistics.median(ordered) * 1000
        p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
        rows.append(
            (
                "cco run under load",
                f"{CONCURRENCY} kept-alive clients x {REQUESTS_PER_CLIENT} GET /health, 127.0.0.1",
                f"{len(latencies)} requests, {errors} errors, p50 {p50:.2f} ms, p99 {p99:.2f} ms",
            )
        )
        held, answered, recovered = idle_flood(proxy, dashboard)
        rows.append(
            (
                "cco run, idle sockets",
                f"{IDLE_SOCKETS} silent connections to the proxy",
                f"{held} held open (limit 256), dashboard {'answered' if answered else 'did not answer'} meanwhile, "
                f"proxy answering again after {recovered:.1f} s",
            )
        )
    finally:
        stop(process)

    lost = []
    for _ in range(KILLS):
        before = saved(home)
        process, proxy, _ = start(binary, home)
        for _ in range(100):
            with urllib.request.urlopen(f"http://127.0.0.1:{proxy}/health", timeout=5):
                pass
        time.sleep(2.5)  # one save interval
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        lost.append(before + 101 - saved(home))  # 100, and the request that found it ready
    rows.append(
        (
            "cco run, SIGKILL",
            f"{KILLS} times: 100 requests, one save interval, SIGKILL, counts compared",
            f"{KILLS} kills survived (each restart resumed the file), counts lost: {', '.join(map(str, lost))}",
        )
    )
    return rows
