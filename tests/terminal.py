"""Running a command the way a person does at a terminal: on a pseudo-terminal, pressing
Enter at each prompt, and reading back what the screen showed."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
from pathlib import Path
from typing import Any


def drive_in_terminal(command: list[str], cwd: Path, env: dict[str, str], seconds: float = 120) -> tuple[int, str]:
    """Runs `command` on a pseudo-terminal and presses Enter at every prompt (the screen stays
    quiet for a moment), taking each default; returns the exit status and all it showed."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        command, cwd=cwd, env={**os.environ, **env}, stdin=terminal, stdout=terminal, stderr=terminal
    )
    os.close(terminal)
    shown = b""
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                os.write(controller, b"\r")
                continue
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the process closed the terminal
                break
            shown += chunk
    finally:
        if process.poll() is None:
            process.kill()
        status = process.wait()
        os.close(controller)
    return status, shown.decode(errors="replace")


def asked_questions(shown: str, copier_yml: dict[str, Any]) -> set[str]:
    """The questions whose help text the terminal showed."""
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\s+", "", shown)
    return {
        name
        for name, details in copier_yml.items()
        if isinstance(details, dict)
        and re.sub(r"\s+", "", str(details.get("help", "")))[:40] in screen
        and "help" in details
    }
