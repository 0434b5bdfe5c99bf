"""What a build prints while it runs, so that validation is never silent for long: on a
terminal, cargo's own progress bar (redrawn every second with the time elapsed, erased when
the build ends); without one (CI, a pipe, a log), a line every HEARTBEAT seconds naming the
build, the units cargo has done of its total and the time elapsed. Cargo writes its bar to a
pipe too when told to (`term.progress.when = "always"` with a width): segments that end in a
carriage return, between the lines that end in a newline. What cargo prints besides is
returned, as subprocess.run would capture it, for the checks to read.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

# Seconds between two lines without a terminal: well inside the promise of one every 30 s.
HEARTBEAT = 20.0
# Seconds between two redraws of the bar on a terminal.
REDRAW = 1.0
# Cargo's bar: "    Building [=====>      ] 120/245: ring, tokio" (the crates after the colon).
BAR = re.compile(r"^\s*Building \[[ =>]*\] (\d+)/(\d+)(?::\s*(.*))?$")


class Output(Protocol):
    """Where the progress goes: stdout, or what a test reads it from."""

    def write(self, text: str, /) -> int: ...
    def flush(self) -> None: ...
    def isatty(self) -> bool: ...


def elapsed(seconds: float) -> str:
    """45 s, 3 min 05 s, 1 h 02 min: how long a person reads it."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


class Cargo:
    """cargo's stderr as it comes: the latest progress segment, and the other lines."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.progress = ""  # the bar, or "Downloading 12 crates" while it fetches
        self.last_line = ""  # the latest line that is not a progress segment
        self.lines: list[str] = []
        self.pending = ""

    def feed(self, text: str) -> None:
        with self.lock:
            text = self.pending + text
            parts = re.split(r"(\r|\n)", text)
            self.pending = parts.pop()  # what follows the last separator: not complete yet
            for segment, separator in zip(parts[0::2], parts[1::2], strict=True):
                if separator == "\r":
                    if segment.strip():
                        self.progress = segment.strip()
                else:
                    self.lines.append(segment.rstrip())
                    if segment.strip():
                        self.last_line = segment.strip()

    def finish(self) -> str:
        with self.lock:
            if self.pending:
                self.lines.append(self.pending.rstrip())
            return "\n".join(self.lines) + ("\n" if self.lines else "")

    def status(self) -> tuple[str, str]:
        with self.lock:
            return self.progress, self.last_line


def units(progress: str) -> str | None:
    """'120 of 245 units' from cargo's bar, with what it is building (None: no bar yet)."""
    match = BAR.match(progress)
    if match is None:
        return None
    done, total, building = match.groups()
    text = f"{done} of {total} units"
    return f"{text}, building {building.strip()}" if building and building.strip() else text


def run_watched(
    arguments: Sequence[str],
    cwd: Path,
    env: dict[str, str],
    name: str,
    out: Output | None = None,
    heartbeat: float = HEARTBEAT,
) -> subprocess.CompletedProcess[str]:
    """Runs cargo as subprocess.run(capture_output=True, text=True) would, showing its progress
    on `out` (stdout) meanwhile: the bar on a terminal, a line each `heartbeat` seconds else."""
    out = out or sys.stdout
    terminal = out.isatty()
    columns = shutil.get_terminal_size().columns if terminal else 0
    env = {
        **env,
        "CARGO_TERM_PROGRESS_WHEN": "always",
        # On a terminal, room for the clock after the bar; in a pipe, only the counts are read.
        "CARGO_TERM_PROGRESS_WIDTH": str(max(columns - len(name) - 16, 40) if terminal else 100),
    }
    started = time.monotonic()
    process = subprocess.Popen(
        list(arguments), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    cargo = Cargo()
    captured: list[bytes] = []

    def read_stderr(stream: int) -> None:
        while chunk := os.read(stream, 65536):
            cargo.feed(chunk.decode(errors="replace"))

    def read_stdout(stream: int) -> None:
        while chunk := os.read(stream, 65536):
            captured.append(chunk)

    readers = [
        threading.Thread(target=read_stderr, args=(process.stderr.fileno(),), daemon=True),
        threading.Thread(target=read_stdout, args=(process.stdout.fileno(),), daemon=True),
    ]
    for reader in readers:
        reader.start()
    shown = False
    while True:
        try:
            process.wait(timeout=REDRAW if terminal else heartbeat)
            break
        except subprocess.TimeoutExpired:
            pass
        progress, last_line = cargo.status()
        clock = elapsed(time.monotonic() - started)
        if terminal:
            text = f"{name}: {progress or last_line or 'starting'}  {clock}"
            out.write("\r\x1b[K" + text[: max(columns - 1, 1)])
            shown = True
        else:
            counted = units(progress)
            doing = counted or (progress or last_line or "starting").rstrip()
            out.write(f"  … {name}: {doing}, {clock} so far\n")
        out.flush()
    for reader in readers:
        reader.join()
    process.stdout.close()
    process.stderr.close()
    if shown:
        out.write("\r\x1b[K")
        out.flush()
    return subprocess.CompletedProcess(
        list(arguments), process.returncode, b"".join(captured).decode(errors="replace"), cargo.finish()
    )
