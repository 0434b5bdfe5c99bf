"""Runs the checks of a level, prints one line per check and a summary, and sets the exit code."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from .checks import (
    QUICK,
    Build,
    Project,
    Result,
    check_binary,
    check_builds,
    check_cross_targets,
    git_dir,
    git_hash,
    skipped,
)

LEVELS = ("none", "quick", "full")
MARKS = {"passed": "✓", "failed": "✗", "skipped": "-"}


def default_target_dir() -> Path:
    """One target directory for every validation on this machine, so dependencies compile once."""
    if configured := os.environ.get("CCO_VALIDATE_TARGET_DIR"):
        return Path(configured)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "cco-template" / "target"


def line(result: Result) -> str:
    if result.status == "skipped":
        return f"{MARKS['skipped']} {result.check}: skipped: {result.detail}"
    return f"{MARKS[result.status]} {result.check}: {result.detail}"


def results_for(project: Project, level: str, strict: bool) -> Iterable[Result]:
    for check in QUICK:
        yield from check(project)
    if level != "full":
        return
    if shutil.which("cargo") is None:
        yield skipped("cargo build", "cargo is not installed (https://rustup.rs); the builds were not checked")
        return
    # Build a scratch copy: the hooks never write into the project, not even Cargo.lock.
    with tempfile.TemporaryDirectory(prefix="cco-validate-") as scratch:
        copy = Path(scratch) / "project"
        shutil.copytree(project.root, copy, ignore=shutil.ignore_patterns(".git", "target"), symlinks=True)
        build = Build(
            scratch=copy / project.crate_dir,
            target_dir=default_target_dir(),
            git_hash=git_hash(project.root),
            git_dir=git_dir(project.root),
        )
        yield from check_builds(project, build)
        yield from check_binary(project, build)
        yield from check_cross_targets(project, build, strict)


def rerun_command(root: Path, level: str, source: str | None, commit: str | None) -> str:
    """The command that runs this validation again, one that still works after Copier exits:
    Copier deletes the clone of a git template it ran this script from."""
    script = Path(__file__).resolve().parents[1] / "validate.py"
    arguments = f"{shlex.quote(str(root))} --level {level}"
    if not script.is_relative_to(Path(tempfile.gettempdir()).resolve()):
        return f"python3 {shlex.quote(str(script))} {arguments}"
    if source and Path(source).is_absolute() and (Path(source) / "hooks" / "validate.py").is_file():
        return f"python3 {shlex.quote(str(Path(source) / 'hooks' / 'validate.py'))} {arguments}"
    if source:
        checkout = f" && git -C cco-template checkout -q {shlex.quote(commit)}" if commit else ""
        return (
            f"git clone -q {shlex.quote(source)} cco-template{checkout} && "
            f"python3 cco-template/hooks/validate.py {arguments}"
        )
    return f"python3 TEMPLATE/hooks/validate.py {arguments} (TEMPLATE: a checkout of this template)"


def validate(
    root: Path,
    level: str,
    strict: bool = False,
    updated: bool = False,
    source: str | None = None,
    commit: str | None = None,
) -> int:
    """Validates the project at `root`; returns the exit code (0 when nothing failed)."""
    root = root.resolve()
    if level == "none":
        print(f"validation of {root}: level none, nothing checked")
        return 0
    started = time.monotonic()
    print(f"validating {root} (level {level})")
    project = Project.load(root, updated=updated)
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for result in results_for(project, level, strict):
        counts[result.status] += 1
        print(line(result), flush=True)
    elapsed = time.monotonic() - started
    print(
        f"validation ({level}): {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['skipped']} skipped in {elapsed:.1f} s"
    )
    if counts["failed"]:
        print(
            f"Fix what is marked ✗, then check again: {rerun_command(root, level, source, commit)}",
            file=sys.stderr,
        )
    return 1 if counts["failed"] else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="validate.py",
        description="Check that a rendered CCO repository is complete, lints clean, builds, fits and crosses.",
    )
    parser.add_argument("path", type=Path, help="the rendered repository (holds .copier-answers.yml)")
    parser.add_argument(
        "--level",
        choices=LEVELS,
        default="quick",
        help="none: nothing; quick: structure and static checks (seconds); full: also the builds. "
        "CCO_VALIDATE overrides it.",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        default=os.environ.get("CCO_VALIDATE_STRICT") == "1",
        help="fail for a target that could only be resolved, not compiled (CCO_VALIDATE_STRICT=1)",
    )
    parser.add_argument(
        "--after",
        choices=("copy", "update"),
        default="copy",
        help="what Copier just did: after an update, a missing file is one you deleted and is not a failure",
    )
    parser.add_argument("--template", help="where the template came from (the answers' _src_path), for the re-run")
    parser.add_argument("--commit", help="the template's commit (the answers' _commit), for the re-run")
    arguments = parser.parse_args(argv)
    level = arguments.level
    if override := os.environ.get("CCO_VALIDATE"):
        if override not in LEVELS:
            print(f"error: CCO_VALIDATE={override!r} is not one of {', '.join(LEVELS)}", file=sys.stderr)
            return 2
        level = override
    try:
        return validate(
            arguments.path,
            level,
            arguments.strict,
            updated=arguments.after == "update",
            source=arguments.template or None,
            commit=arguments.commit or None,
        )
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
