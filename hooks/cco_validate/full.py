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

from .builds import (
    Build,
    check_binary,
    check_builds,
    check_lockfile,
    cores,
    count_units,
    estimate_seconds,
    git_hash,
    lockfile_written,
    minutes,
)
from .model import Project, Result, skipped
from .targets import buildable, check_cross_targets, host_target


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
    announce(project, build)
    with tempfile.TemporaryDirectory(prefix="cco-validate-") as keep_in:
        binary = yield from check_builds(project, build, Path(keep_in))
        if not had_lockfile and lockfile.is_file():
            yield lockfile_written(project)
        commit = git_hash(project.root)
        yield from check_binary(project, binary, commit)
        yield from check_cross_targets(project, build, binary is not None, strict, commit)


def announce(project: Project, build: Build) -> None:
    """One line before the builds: what they build, about how long that takes here (from
    cargo's unit count), and how to skip them."""
    cross = buildable(project)
    host_units = count_units(build, host_target())
    builds = "cargo build and cargo build --release"
    if cross:
        builds += f", then the release build of {' and '.join(cross)}"
    skip = "CCO_VALIDATE=quick, or the answer validation: quick, checks everything else in seconds"
    if host_units is None:
        print(f"validation builds {project.name}: {builds}; {skip}", flush=True)
        return
    release_units = [host_units, *[count_units(build, target) or host_units for target in cross]]
    seconds = estimate_seconds(host_units, release_units)
    print(
        f"validation builds {project.name}: {builds}, {host_units} units each; up to about {minutes(seconds)} "
        f"on this machine's {cores()} cores when nothing is compiled yet, less for what its target directory "
        f"holds; {skip}",
        flush=True,
    )
