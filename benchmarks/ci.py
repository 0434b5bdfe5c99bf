"""What a run of `bash .ci/run` cost, read from its log: the set-up, the fast tier, each slow
lane and the whole, and the slowest tests of both lanes together (pytest's `--durations`).
`python -m benchmarks --ci-log LOG ...` prints them as docs/BENCHMARKS.md keeps them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

CONTAINERS = "[containers] "
SUMMARY = re.compile(r"^=* ?(.*?) in ([\d.]+)s(?: \(.*\))? ?=*$")
DURATION = re.compile(r"^([\d.]+)s (setup|call|teardown)\s+(\S+)$")


@dataclass
class Lanes:
    log: str
    setup: float | None = None
    fast: str | None = None  # "220 passed in 88.0 s"
    serial: str | None = None
    containers: str | None = None
    total: float | None = None
    slowest: list[tuple[float, str, str]] = field(default_factory=list)  # seconds, phase, test


def read(log: Path) -> Lanes:
    lanes = Lanes(log.name)
    summaries: dict[str, list[str]] = {"": [], CONTAINERS: []}
    durations = {"": False, CONTAINERS: False}
    for raw in log.read_text(errors="replace").replace("\r", "\n").splitlines():
        prefix = CONTAINERS if raw.startswith(CONTAINERS) else ""
        line = raw.removeprefix(prefix).strip()
        if match := re.search(r"set-up done after (\d+) s", line):
            lanes.setup = float(match.group(1))
        if match := re.search(r"; (\d+) s in all$", line):
            lanes.total = float(match.group(1))
        if lanes.total is None and (match := re.fullmatch(r"real\s+(\d+)m([\d.]+)s", line)):
            lanes.total = 60 * float(match.group(1)) + float(match.group(2))  # bash's `time`
        if "slowest" in line and "durations" in line:
            durations[prefix] = True
            continue
        if durations[prefix] and (match := DURATION.match(line)):
            lanes.slowest.append((float(match.group(1)), match.group(2), match.group(3)))
            continue
        if (match := SUMMARY.match(line)) and re.search(r"\d+ (passed|failed|error)", match.group(1)):
            durations[prefix] = False
            counts = [part for part in match.group(1).split(", ") if re.search(r"passed|failed|skipped|error", part)]
            summaries[prefix].append(f"{', '.join(counts)} in {float(match.group(2)):.0f} s")
    serial = summaries[""]
    if serial:
        lanes.fast = serial[0]
        lanes.serial = serial[-1] if len(serial) > 1 else None
    lanes.containers = summaries[CONTAINERS][-1] if summaries[CONTAINERS] else None
    lanes.slowest.sort(reverse=True)
    return lanes


def markdown(runs: list[Lanes], slowest: int = 30) -> list[str]:
    lines = [
        "| run | set-up | fast tier | slow tests outside containers | slow tests in containers | in all |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for lanes in runs:
        setup = f"{lanes.setup:.0f} s" if lanes.setup is not None else "?"
        total = f"{lanes.total:.0f} s" if lanes.total is not None else "?"
        lines.append(
            f"| {lanes.log} | {setup} | {lanes.fast or '?'} | {lanes.serial or '?'} | {lanes.containers or '?'} | "
            f"{total} |"
        )
    for lanes in runs:
        lines += ["", f"The {slowest} slowest of {lanes.log} (both lanes):", ""]
        lines += [f"- {seconds:.0f} s {phase} `{test}`" for seconds, phase, test in lanes.slowest[:slowest]]
    return lines
