"""The proxy's cost and what its cache buys, on 127.0.0.1 only, every loop bounded in count:
a cache hit's latency through `cco run` beside the same call straight to the stand-in
upstream (tests/upstream.py, a Python server: what it costs bounds the pass-through figures),
cache-hit throughput at 50 connections, and pass-through throughput beside the stand-in's own.

Throughput is measured with ApacheBench (`ab`, Debian's apache2-utils), a C client: a Python
client at 50 connections would measure itself. Without it those rows say why they are missing.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from benchmarks import load

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import upstream  # the tests' stand-in Messages API

Rows = list[tuple[str, str, str]]
KEY = "sk-ant-benchmark"
LATENCY_CALLS = 1000
CONNECTIONS = 50
HIT_REQUESTS = 20000
PASS_REQUESTS = 2000
BODY = {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hello"}]}
HEADERS = {"content-type": "application/json", "anthropic-version": "2023-06-01"}


def latencies(port: int, headers: Mapping[str, str]) -> list[float]:
    """LATENCY_CALLS Messages calls, one after another on one kept-alive connection, in ms."""
    body = json.dumps(BODY)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    measured = []
    for _ in range(LATENCY_CALLS):
        started = time.perf_counter()
        connection.request("POST", "/v1/messages", body, dict(headers))
        response = connection.getresponse()
        response.read()
        measured.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            raise SystemExit(f"the proxy benchmark's call answered {response.status}")
    connection.close()
    return sorted(measured)


def percentile(ordered: list[float], share: float) -> float:
    return ordered[max(0, int(len(ordered) * share) - 1)]


def apache_bench(port: int, requests: int, headers: Mapping[str, str], work: Path) -> float | str:
    """Requests per second at CONNECTIONS kept-alive connections, or why it was not measured."""
    ab = shutil.which("ab")
    if ab is None:
        return "not measured: ab is not installed (apt-get install apache2-utils)"
    body = work / "body.json"
    body.write_text(json.dumps(BODY))
    command = [ab, "-q", "-k", "-c", str(CONNECTIONS), "-n", str(requests), "-p", str(body), "-T", "application/json"]
    for name, value in headers.items():
        if name != "content-type":
            command += ["-H", f"{name}: {value}"]
    result = subprocess.run(
        [*command, f"http://127.0.0.1:{port}/v1/messages"], capture_output=True, text=True, check=False
    )
    failed = re.search(r"^Failed requests:\s+(\d+)", result.stdout, re.MULTILINE)
    non_2xx = re.search(r"^Non-2xx responses:\s+(\d+)", result.stdout, re.MULTILINE)
    rate = re.search(r"^Requests per second:\s+([\d.]+)", result.stdout, re.MULTILINE)
    if result.returncode != 0 or rate is None or (failed and int(failed.group(1))) or non_2xx:
        said = [line.strip() for line in (result.stdout + result.stderr).splitlines() if line.strip()]
        return f"not measured: ab failed: {said[-1] if said else f'exit {result.returncode}'}"
    return float(rate.group(1))


def per_second(rate: float | str) -> str:
    return f"{rate:.0f} requests/s" if isinstance(rate, float) else rate


def measure(binary: Path, work: Path) -> Rows:
    """Rows (what, command, figure) for the proxy of `binary` (a release build)."""
    server, _ = upstream.serve(KEY)
    home = work / "proxy-home"
    process, proxy, _ = load.start(binary, home, {"CCO_UPSTREAM": server.url, "ANTHROPIC_API_KEY": KEY})
    rows: Rows = []
    try:
        direct = latencies(server.server_address[1], {**HEADERS, "x-api-key": KEY})
        latencies(proxy, HEADERS)  # the first call fills the cache
        hits = latencies(proxy, HEADERS)
        rows.append(
            (
                "cache hit through the proxy, beside the call straight to the upstream",
                f"{LATENCY_CALLS} POST /v1/messages one after another on one kept-alive connection, each way",
                f"hit p50 {statistics.median(hits):.2f} ms, p99 {percentile(hits, 0.99):.2f} ms; direct p50 "
                f"{statistics.median(direct):.2f} ms, p99 {percentile(direct, 0.99):.2f} ms; hit/direct "
                f"{statistics.median(hits) / statistics.median(direct):.2f}x at p50, "
                f"{percentile(hits, 0.99) / percentile(direct, 0.99):.2f}x at p99",
            )
        )
        hit_rate = apache_bench(proxy, HIT_REQUESTS, HEADERS, work)
        rows.append(
            (
                "cache-hit throughput",
                f"ab -k -c {CONNECTIONS} -n {HIT_REQUESTS}, one cached POST /v1/messages",
                per_second(hit_rate),
            )
        )
        bypass = {**HEADERS, "cache-control": "no-store"}
        through = apache_bench(proxy, PASS_REQUESTS, bypass, work)
        straight = apache_bench(server.server_address[1], PASS_REQUESTS, {**HEADERS, "x-api-key": KEY}, work)
        ratio = (
            f"; {through / straight:.2f}x the stand-in's own"
            if isinstance(through, float) and isinstance(straight, float)
            else ""
        )
        rows.append(
            (
                "pass-through throughput",
                f"ab -k -c {CONNECTIONS} -n {PASS_REQUESTS} with Cache-Control: no-store, and straight to the stand-in",
                f"through the proxy {per_second(through)}; straight {per_second(straight)}{ratio}",
            )
        )
    finally:
        load.stop(process)
        server.shutdown()
    rows.append(
        (
            "release binary with the proxy (rustls, ring, the cache)",
            f"{binary.name}, the specification's profile",
            f"{binary.stat().st_size / 1e6:.2f} MB; the skeleton before the proxy: 2.20 MB (run of 2026-12-01)",
        )
    )
    return rows
