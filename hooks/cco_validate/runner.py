"""Runs the checks of a level, prints one line per check and a summary, and sets the exit code."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import yaml

from . import full
from .answers import absolute_source
from .checks import QUICK
from .model import TROUBLESHOOTING, Project, Result, anchor

# How a check skipped for want of a tool says where to get it.
PIP_INSTALL = re.compile(r"`pip install ([a-z0-9 .-]+)`")
LEVELS = ("none", "quick", "full")
MARKS = {"passed": "✓", "failed": "✗", "skipped": "-"}


def line(result: Result, guide: str | None = None) -> str:
    """One check's line; a failure ends with its entry in the troubleshooting guide, if any."""
    if result.status == "skipped":
        return f"{MARKS['skipped']} {result.check}: skipped: {result.detail}"
    # One line each, so that the link ends the line (a YAML parser's message spans several).
    detail = re.sub(r"\s*\n\s*", " ", result.detail)
    text = f"{MARKS[result.status]} {result.check}: {detail}"
    if result.status == "failed" and guide:
        text += f" (see {guide}#{anchor(result.check)})"
    return text


def results_for(project: Project, level: str, strict: bool) -> Iterable[Result]:
    for check in QUICK:
        yield from check(project)
    if level == "full":
        yield from full.results(project, strict)


def keep_answers(project: Project) -> Path:
    """The answers, kept outside the project: a failed `copier copy` deletes the project it
    created, and with it every answer typed at the prompts."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    saved = cache / "cco-template" / "answers" / f"{project.root.name}-{stamp}.yml"
    saved.parent.mkdir(parents=True, exist_ok=True)
    answers = {
        name: value for name, value in project.answers.items() if not name.startswith("_") and name != "owned_files"
    }
    saved.write_text(yaml.safe_dump(answers, sort_keys=True, allow_unicode=True))
    return saved


def copy_again_command(project: Project, saved: Path, source: str | None, commit: str | None) -> str:
    reference = f" --vcs-ref {shlex.quote(commit)}" if commit else ""
    return (
        f"copier copy --trust --defaults --data-file {shlex.quote(str(saved))}{reference} "
        f"{shlex.quote(source or 'TEMPLATE')} {shlex.quote(str(project.root))}"
    )


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
    guide = project.relative(TROUBLESHOOTING) if (project.crate / TROUBLESHOOTING).is_file() else None
    wanted: dict[str, None] = {}  # the PyPI packages of the tools whose checks were skipped
    for result in results_for(project, level, strict):
        counts[result.status] += 1
        print(line(result, guide), flush=True)
        if result.status == "skipped":
            for packages in PIP_INSTALL.findall(result.detail):
                wanted.update(dict.fromkeys(packages.split()))
    elapsed = time.monotonic() - started
    print(
        f"validation ({level}): {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['skipped']} skipped in {elapsed:.1f} s"
    )
    if wanted:
        print(
            f"The checks skipped for want of a tool run once it is there: `pip install {' '.join(sorted(wanted))}` "
            "in the Python that runs Copier (with pipx: `pipx inject copier ...`)"
        )
    if counts["failed"]:
        again = rerun_command(root, level, source, commit)
        if updated:
            print(f"Fix what is marked ✗, then check again: {again}", file=sys.stderr)
        else:
            saved = keep_answers(project)
            print(
                f"Your answers are saved in {saved}; this renders the same repository again: "
                f"{copy_again_command(project, saved, source, commit)}\n"
                f"If Copier created {root} for this copy, it deletes it now (add --no-cleanup to keep it); "
                f"otherwise fix what is marked ✗, then check again: {again}",
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
            source=absolute_source(arguments.template or "", Path(__file__).resolve().parents[2]) or None,
            commit=arguments.commit or None,
        )
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
