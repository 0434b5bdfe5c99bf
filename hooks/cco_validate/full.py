"""The full level, in order: the lockfile (an existing one must already hold what Cargo.toml
needs), the debug and release builds, the checks of the release binary, then each target.
A full-level check is added here, where the binary it reads is at hand.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .builds import Build, check_binary, check_builds, check_lockfile, git_hash, lockfile_written
from .model import Project, Result, skipped
from .targets import check_cross_targets


def shared_target_dir() -> Path | None:
    """CCO_VALIDATE_TARGET_DIR, when set: one target directory for many renders (CI, the tests),
    so dependencies compile once. Unset, cargo chooses, as it does for the owner's own builds."""
    configured = os.environ.get("CCO_VALIDATE_TARGET_DIR")
    return Path(configured) if configured else None


def results(project: Project, strict: bool) -> Iterable[Result]:
    if shutil.which("cargo") is None:
        yield skipped("cargo build", "cargo is not installed (https://rustup.rs); the builds were not checked")
        return
    build = Build(crate=project.crate, target_dir=shared_target_dir())
    lockfile = project.crate / "Cargo.lock"
    had_lockfile = lockfile.is_file()
    if had_lockfile:
        result = check_lockfile(project, build)
        yield result
        if result.status != "passed":
            yield skipped("cargo build", "the builds need a usable Cargo.lock first (validation never rewrites it)")
            return
        build.locked = True
    with tempfile.TemporaryDirectory(prefix="cco-validate-") as keep_in:
        binary = yield from check_builds(project, build, Path(keep_in))
        if not had_lockfile and lockfile.is_file():
            yield lockfile_written(project)
        commit = git_hash(project.root)
        yield from check_binary(project, binary, commit)
        yield from check_cross_targets(project, build, binary is not None, strict, commit)
