"""What validation shows while it builds (hooks/cco_validate/progress.py): one line before the
builds with what they build, about how long, and how to skip them; then cargo's own bar on a
terminal, or a line at least every 30 s through a pipe; never silent for longer.

The fast tests run the watcher on a stand-in for cargo that writes what cargo 1.95 writes to
a pipe under `term.progress.when = "always"` (seen here: the bar as segments padded to the
width and ended by a carriage return, between the lines ended by a newline) and nothing of
its bar otherwise. The slow ones measure the longest silence of real full validations: the
session's all-target one through a pipe, and a `copier copy` on a pseudo-terminal.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cco_validate import builds, progress
from helpers import Renders, Validated, copy_template

# Cargo's progress in a pipe, as it wrote it for a two-crate build here (width 80).
STAND_IN = r"""
import os, sys, time
def bar(text):
    if os.environ.get("CARGO_TERM_PROGRESS_WHEN") == "always":
        width = int(os.environ["CARGO_TERM_PROGRESS_WIDTH"])
        sys.stderr.write(text.ljust(width) + "\r")
    sys.stderr.flush()
sys.stderr.write("   Compiling itoa v1.0.19\n")
bar("    Building [========>                    ] 3/10: itoa, ryu")
time.sleep(float(sys.argv[1]))
bar("    Building [=========================>   ] 9/10: cco(bin)")
time.sleep(float(sys.argv[2]))
sys.stderr.write("error: " + sys.argv[3] + "\n" if len(sys.argv) > 3 else "    Finished `release` profile\n")
print("stdout stays apart")
sys.exit(101 if len(sys.argv) > 3 else 0)
"""


def stand_in(tmp_path: Path, *arguments: str) -> list[str]:
    script = tmp_path / "cargo.py"
    script.write_text(STAND_IN)
    return [sys.executable, str(script), *arguments]


class Pipe:
    """A text stream that is not a terminal and keeps each line with when it came."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.lines: list[tuple[float, str]] = []

    def write(self, text: str) -> int:
        for line in text.splitlines():
            self.lines.append((time.monotonic() - self.started, line))
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def test_through_a_pipe_a_line_names_the_build_its_units_and_the_time(tmp_path: Path) -> None:
    out = Pipe()
    result = progress.run_watched(
        stand_in(tmp_path, "2.6", "1.3"), tmp_path, dict(os.environ), "cargo build --release", out, heartbeat=1.0
    )
    assert result.returncode == 0
    shown = [line for _, line in out.lines]
    assert "  … cargo build --release: 3 of 10 units, building itoa, ryu, 1 s so far" in shown
    assert "  … cargo build --release: 9 of 10 units, building cco(bin), 3 s so far" in shown
    # What a check reads is cargo's lines without its bar, as subprocess.run would capture them.
    assert result.stderr == "   Compiling itoa v1.0.19\n    Finished `release` profile\n"
    assert result.stdout == "stdout stays apart\n"
    gaps = [later - earlier for (earlier, _), (later, _) in zip([(0.0, ""), *out.lines], out.lines, strict=False)]
    assert max(gaps) < 2.0


def test_a_failing_build_keeps_its_error_and_status(tmp_path: Path) -> None:
    result = progress.run_watched(
        stand_in(tmp_path, "0", "0", "could not compile `cco`"), tmp_path, dict(os.environ), "cargo build", Pipe()
    )
    assert result.returncode == 101
    assert builds.cargo_error(result) == "error: could not compile `cco`"


def test_on_a_terminal_cargos_bar_is_drawn_with_the_time_then_erased(tmp_path: Path) -> None:
    controller, terminal = pty.openpty()
    out = os.fdopen(terminal, "w")
    shown = b""
    try:
        result = progress.run_watched(stand_in(tmp_path, "2.4", "0"), tmp_path, dict(os.environ), "cargo build", out)
        while select.select([controller], [], [], 0.2)[0]:
            shown += os.read(controller, 65536)
    finally:
        out.close()
        os.close(controller)
    assert result.returncode == 0
    screen = shown.decode()
    assert re.search(r"\r\x1b\[Kcargo build: Building \[=+> *\] 3/10: itoa, ryu  [12] s", screen), screen
    assert screen.endswith("\r\x1b[K"), "the bar is erased before the check's own line"
    assert "Compiling" not in screen, "cargo's lines are read, not echoed"


@pytest.mark.parametrize(("seconds", "shown"), [(12, "12 s"), (65, "1 min 05 s"), (3725, "1 h 02 min")])
def test_the_time_reads_as_a_person_says_it(seconds: float, shown: str) -> None:
    assert progress.elapsed(seconds) == shown


def test_the_estimate_grows_with_the_units_and_shrinks_with_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(builds, "cores", lambda: 2)
    two_cores = builds.estimate_seconds(140, [140, 140])
    assert two_cores < builds.estimate_seconds(280, [280, 280])
    monkeypatch.setattr(builds, "cores", lambda: 8)
    assert builds.estimate_seconds(140, [140, 140]) < two_cores


ANNOUNCED = re.compile(
    r"^validation builds cco: cargo build and cargo build --release"
    r"(?:, then the release build of (\S+(?: and \S+)*))?, "
    r"(\d+) units each; up to about (\d+) min on this machine's \d+ cores when nothing is compiled yet, less for "
    r"what its target directory holds; CCO_VALIDATE=quick, or the answer validation: quick, checks everything else "
    r"in seconds$",
    re.MULTILINE,
)


# A line through a pipe: the build (or cargo's resolution), what it does, and the time.
HEARTBEAT_LINE = re.compile(
    r"  … (cargo build(?: --release)?|target \S+|cargo tree --target \S+|cargo metadata \(the dependencies\)): "
    r".+, (\d+ s|\d+ min \d\d s) so far"
)


@pytest.mark.slow  # reads the session's all-target validation (tests/conftest.py)
def test_full_validation_through_a_pipe_announces_the_builds_and_is_never_silent(fully_validated: Validated) -> None:
    output = fully_validated.result.stdout
    announced = ANNOUNCED.search(output)
    assert announced is not None, output
    assert 100 <= int(announced.group(2)) <= 400, "the default crate's graph has about 140 units"
    assert announced.start() < output.index("✓ cargo build: built"), "announced before the builds"
    assert fully_validated.longest_silence <= 30, fully_validated.result.stdout
    # Each line it adds names the build, its units or what cargo does, and the time.
    for line in output.splitlines():
        if line.startswith("  … "):
            assert HEARTBEAT_LINE.fullmatch(line), line


@pytest.mark.slow  # a real build of the crate on a pseudo-terminal
def test_copier_copy_at_a_terminal_shows_cargos_bar_and_is_never_silent(
    tmp_path: Path, cargo_env: dict[str, str]
) -> None:
    """`copier copy` with full validation, typed at a terminal (the host target only: the
    cross targets' builds show the same way, through the same function)."""
    template = copy_template(tmp_path / "template")
    command = [sys.executable, "-m", "copier", "copy", "--trust", "--defaults", "--vcs-ref", "HEAD",
               "--data", "build_targets=[x86_64-unknown-linux-gnu]", str(template), "my-cco"]  # fmt: skip
    controller, terminal = pty.openpty()
    env = {
        **os.environ,
        "CCO_VALIDATE": "full",
        "CCO_VALIDATE_TARGET_DIR": cargo_env["CARGO_TARGET_DIR"],
        "TERM": "xterm",
        "COLUMNS": "160",
    }
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdin=terminal, stdout=terminal, stderr=terminal)
    os.close(terminal)
    shown, last, longest = b"", time.monotonic(), 0.0
    try:
        while True:
            ready = select.select([controller], [], [], 1.0)[0]
            if ready:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                now = time.monotonic()
                longest, last = max(longest, now - last), now
                shown += chunk
            elif process.poll() is not None:
                break
    finally:
        status = process.wait(timeout=3600)
        os.close(controller)
    screen = shown.decode(errors="replace")
    assert status == 0, screen
    assert re.search(r"cargo build --release: Building \[[ =>]+\] \d+/\d+", screen), screen
    assert "✓ cargo build --release: built" in screen
    assert longest <= 30, f"silent for {longest:.0f} s"


def test_the_unit_count_is_cargos_within_a_fifth(renders: Renders, cargo_env: dict[str, str], tmp_path: Path) -> None:
    """Resolution only (no build): the count from `cargo metadata` beside cargo's own total of
    the default render, 142 units for a debug build with cargo 1.95 (read off its bar here)."""
    project = renders.copy(tmp_path / "repository")
    build = builds.Build(crate=project.crate, target_dir=Path(cargo_env["CARGO_TARGET_DIR"]))
    counted = builds.count_units(build, "x86_64-unknown-linux-gnu")
    if counted is None:
        pytest.skip("cargo could not resolve the dependencies here (offline, and not in cargo's cache)")
    assert 142 * 0.8 <= counted <= 142 * 1.2
