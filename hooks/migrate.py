#!/usr/bin/env python3
"""Migrations for changes a three-way merge cannot express, run by Copier during `copier update`.

    python hooks/migrate.py PROJECT rename-question OLD NEW
    python hooks/migrate.py PROJECT adopt-default QUESTION OLD_DEFAULT NEW_DEFAULT
    python hooks/migrate.py PROJECT move-file OLD_PATH NEW_PATH --stage before|after
        (paths from the repository root; {crate_dir} stands for the crate's folder)

Each runs in the real project: rename-question and adopt-default before Copier computes the
update (`_stage == 'before'`), move-file at both stages. Each is idempotent (a second run
finds nothing to do and says so) and prints one line. copier.yml
lists them under `_migrations` with the template version that needs them; see the authors'
guide in docs/UPDATING.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

ANSWERS_FILE = ".copier-answers.yml"


def load_answers(project: Path) -> tuple[str, dict[str, Any]]:
    text = (project / ANSWERS_FILE).read_text()
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    return header, yaml.safe_load(text) or {}


def save_answers(project: Path, header: str, answers: dict[str, Any]) -> None:
    (project / ANSWERS_FILE).write_text(header + yaml.safe_dump(answers, sort_keys=True, allow_unicode=True))


def parse_value(text: str) -> Any:
    """A value as YAML reads it, so '1.95' stays a string only where the answers file has one."""
    return yaml.safe_load(text)


def rename_question(project: Path, old: str, new: str) -> str:
    header, answers = load_answers(project)
    if old not in answers:
        return f"rename-question {old} -> {new}: nothing to do ({old} is not in {ANSWERS_FILE})"
    if new in answers:
        return f"rename-question {old} -> {new}: nothing to do ({new} is answered already)"
    answers[new] = answers.pop(old)
    save_answers(project, header, answers)
    return f"rename-question {old} -> {new}: the answer {answers[new]!r} now answers {new}"


def adopt_default(project: Path, question: str, old_default: str, new_default: str) -> str:
    header, answers = load_answers(project)
    old_value, new_value = parse_value(old_default), parse_value(new_default)
    current = answers.get(question)
    if current != old_value:
        return f"adopt-default {question}: kept {current!r} (not the old default {old_value!r})"
    answers[question] = new_value
    save_answers(project, header, answers)
    return f"adopt-default {question}: {old_value!r} -> {new_value!r} (the old default, so the new one is adopted)"


def git(project: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *arguments], cwd=project, capture_output=True, text=True, check=False)


def move_file(project: Path, old: str, new: str, stage: str) -> str:
    """Carries the owner's edits of OLD over to NEW, where the new template version keeps it.

    Copier alone would delete OLD (the template no longer has it) and render NEW afresh. So,
    before the update, the owner's OLD and the OLD the template last rendered (the base) are
    kept in the git directory; after it, `git merge-file` merges the owner's edits into the
    template's NEW, marking any conflict as Copier does.
    """
    stash = Path(git(project, "rev-parse", "--git-path", "cco-template/moved").stdout.strip() or ".git/x")
    stash = project / stash / new.replace("/", "__")
    ours, base = stash.with_suffix(".ours"), stash.with_suffix(".base")
    if stage == "before":
        if not (project / old).is_file():
            return f"move-file {old} -> {new}: nothing to do ({old} does not exist)"
        # The base: OLD as of the commit that last applied the template (it changed the answers file).
        applied = git(project, "log", "-1", "--format=%H", "--", ANSWERS_FILE).stdout.strip()
        rendered = git(project, "show", f"{applied}:{old}") if applied else None
        current = (project / old).read_text()
        if rendered is not None and rendered.returncode == 0 and rendered.stdout == current:
            return f"move-file {old} -> {new}: no edits of yours in {old}; the template's {new} replaces it"
        stash.parent.mkdir(parents=True, exist_ok=True)
        ours.write_text(current)
        base.write_text(rendered.stdout if rendered is not None and rendered.returncode == 0 else "")
        return f"move-file {old} -> {new}: your edits of {old} are kept, to merge into {new}"
    if not ours.is_file():
        return f"move-file {old} -> {new}: nothing to do (no edits of {old} to carry over)"
    theirs = project / new
    theirs.parent.mkdir(parents=True, exist_ok=True)
    if not theirs.exists():
        theirs.write_text("")
    merged = git(project, "merge-file", "-p", "-L", "before updating", "-L", "base", "-L", "after updating",
                 str(ours), str(base), str(theirs))  # fmt: skip
    theirs.write_text(merged.stdout)
    ours.unlink()
    base.unlink()
    (project / old).unlink(missing_ok=True)
    if merged.returncode > 0:
        return f"move-file {old} -> {new}: your edits merged into {new} with {merged.returncode} conflict(s) marked"
    return f"move-file {old} -> {new}: your edits of {old} merged into {new}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="migrate.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("project", type=Path)
    commands = parser.add_subparsers(dest="command", required=True)
    rename = commands.add_parser("rename-question")
    rename.add_argument("old")
    rename.add_argument("new")
    adopt = commands.add_parser("adopt-default")
    adopt.add_argument("question")
    adopt.add_argument("old_default")
    adopt.add_argument("new_default")
    move = commands.add_parser("move-file")
    move.add_argument("old")
    move.add_argument("new")
    move.add_argument("--stage", choices=("before", "after"), required=True, help="Copier's _stage")
    arguments = parser.parse_args(argv)
    project = arguments.project.resolve()
    if not (project / ANSWERS_FILE).is_file():
        print(f"error: {project / ANSWERS_FILE}: no Copier answers file", file=sys.stderr)
        return 2
    if arguments.command == "rename-question":
        message = rename_question(project, arguments.old, arguments.new)
    elif arguments.command == "adopt-default":
        message = adopt_default(project, arguments.question, arguments.old_default, arguments.new_default)
    else:
        # Before an update Copier renders migrations without the answers, so paths name the
        # crate's folder as {crate_dir}, taken here from the answers file.
        crate_dir = str(load_answers(project)[1].get("crate_dir", "."))
        old, new = (path.replace("{crate_dir}", crate_dir) for path in (arguments.old, arguments.new))
        message = move_file(project, os.path.normpath(old), os.path.normpath(new), arguments.stage)
    print(f"migration: {message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
