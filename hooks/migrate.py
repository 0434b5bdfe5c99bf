#!/usr/bin/env python3
"""Migrations for changes a three-way merge cannot express, run by Copier during `copier update`.

    python hooks/migrate.py PROJECT rename-question OLD NEW
    python hooks/migrate.py PROJECT adopt-default QUESTION OLD_DEFAULT NEW_DEFAULT
    python hooks/migrate.py PROJECT move-file OLD_PATH NEW_PATH --stage before|after
        (paths from the repository root; {crate_dir} stands for the crate's folder)
    python hooks/migrate.py PROJECT guard --stage before|after
        (every update: no file the update removes takes an edit of the owner's with it)

Each runs in the real project: rename-question and adopt-default before Copier computes the
update (`_stage == 'before'`), move-file at both stages. Each is idempotent (a second run
finds nothing to do and says so) and prints one line. copier.yml
lists them under `_migrations` with the template version that needs them; see the authors'
guide in docs/UPDATING.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from cco_validate.answers import ANSWERS_FILE, load_answers, save_answers


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
    stash = state_dir(project) / "moved" / new.replace("/", "__")
    ours, base = stash.with_suffix(".ours"), stash.with_suffix(".base")
    if stage == "before":
        if not (project / old).is_file():
            return f"move-file {old} -> {new}: nothing to do ({old} does not exist)"
        # The base: OLD as of the commit that last applied the template (it changed the answers file).
        applied = last_applied(project)
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
    conflicts = merge_edits(project, ours, base, theirs)
    ours.unlink()
    base.unlink()
    (project / old).unlink(missing_ok=True)
    with carried_over(project).open("a") as carried:  # the guard leaves this one to move-file
        carried.write(old + "\n")
    if conflicts:
        return f"move-file {old} -> {new}: your edits merged into {new} with {conflicts} conflict(s) marked"
    return f"move-file {old} -> {new}: your edits of {old} merged into {new}"


def merge_edits(project: Path, ours: Path, base: Path, theirs: Path) -> int:
    """Merges the owner's edits (`base` to `ours`) into the template's `theirs`, in place, marking
    conflicts as Copier does; returns how many conflicts were marked."""
    merged = git(project, "merge-file", "-p", "-L", "before updating", "-L", "base", "-L", "after updating",
                 str(ours), str(base), str(theirs))  # fmt: skip
    theirs.write_text(merged.stdout)
    return max(merged.returncode, 0)


def last_applied(project: Path) -> str:
    """The commit that last applied the template (a copy or an update moved the answers file's
    `_commit`): what the template rendered then is the base the owner's edits are measured from."""
    return git(project, "log", "-1", "--format=%H", "-G^_commit:", "--", ANSWERS_FILE).stdout.strip()


def state_dir(project: Path) -> Path:
    """Where migrations keep what one stage hands to the next: in the git directory, never in the tree."""
    return Path(git(project, "rev-parse", "--absolute-git-dir").stdout.strip() or project / ".git") / "cco-template"


def carried_over(project: Path) -> Path:
    """Where move-file lists the files whose edits it carried, for the guard after it."""
    return state_dir(project) / "carried"


def guard(project: Path, stage: str) -> list[str]:
    """Every update, both stages: a file the update removes never takes the owner's edits with it.

    Copier deletes a file when the template stops rendering it at that path: the template
    dropped or moved it, or an answer such as crate_dir moved the crate. Before the update this
    records the committed files, the crate's folder and the commit that last applied the
    template (the base). After it, for each file that is gone: when the crate moved and the
    template renders the file at the new place, the owner's edits are merged into it (or, for a
    file they had deleted, it is deleted again); otherwise, when the owner had edited it, the
    line says so and how to get it back from git. Unedited files go silently, as the template
    meant.
    """
    record = state_dir(project) / "guard.json"
    if stage == "before":
        record.parent.mkdir(parents=True, exist_ok=True)
        applied = last_applied(project)
        listed = git(project, "ls-files", "-z").stdout.split("\0")
        at_base = git(project, "ls-tree", "-r", "-z", "--name-only", applied).stdout.split("\0") if applied else []
        crate_dir = str(load_answers(project)[1].get("crate_dir", "."))
        state = {"applied": applied, "tracked": [n for n in listed if n], "base": [n for n in at_base if n]}
        record.write_text(json.dumps({**state, "crate_dir": crate_dir}))
        return []
    if not record.is_file():
        return []
    state = json.loads(record.read_text())
    record.unlink()
    carried = set(carried_over(project).read_text().split()) if carried_over(project).is_file() else set()
    carried_over(project).unlink(missing_ok=True)
    old_dir, new_dir = state["crate_dir"], str(load_answers(project)[1].get("crate_dir", "."))
    applied, tracked = state["applied"], set(state["tracked"])

    def moved(path: str) -> str | None:
        """Where the crate's move put `path`, if it is the crate's and the crate moved."""
        if old_dir == new_dir:
            return None
        inside = path if old_dir == "." else (path[len(old_dir) + 1 :] if path.startswith(old_dir + "/") else None)
        if inside is None:
            return None
        return inside if new_dir == "." else f"{new_dir}/{inside}"

    def committed(revision: str, path: str) -> str | None:
        shown = git(project, "show", f"{revision}:{path}")
        return shown.stdout if shown.returncode == 0 else None

    lines = []
    for path in sorted(tracked):
        if (project / path).exists() or path in carried:
            continue
        ours = committed("HEAD", path)
        base = committed(applied, path) if applied else None
        target = moved(path)
        if ours is None or ours == base:
            continue  # the template's own, unedited: it goes as the template meant
        if target and (project / target).is_file() and target not in tracked:
            ours_file, base_file = state_dir(project) / "guarded.ours", state_dir(project) / "guarded.base"
            ours_file.write_text(ours)
            base_file.write_text(base or "")
            conflicts = merge_edits(project, ours_file, base_file, project / target)
            ours_file.unlink()
            base_file.unlink()
            marked = f", {conflicts} conflict(s) marked" if conflicts else ""
            lines.append(f"update: {path} moved to {target} with your edits{marked}")
        else:
            lines.append(
                f"update: {path} was removed by this update, and it had edits of yours: "
                f"`git checkout HEAD -- {path}` brings it back"
            )
    # Files the owner had deleted, which the crate's move would bring back at the new place.
    for path in sorted(set(state["base"]) - tracked):
        target = moved(path)
        if target and target not in tracked and (project / target).is_file():
            (project / target).unlink()
            for folder in (project / target).parents:  # and the folders the move left empty
                if folder == project or any(folder.iterdir()):
                    break
                folder.rmdir()
            lines.append(f"update: {target} kept deleted (you had deleted {path})")
    return lines


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
    guarded = commands.add_parser("guard")
    guarded.add_argument("--stage", choices=("before", "after"), required=True, help="Copier's _stage")
    arguments = parser.parse_args(argv)
    project = arguments.project.resolve()
    if not (project / ANSWERS_FILE).is_file():
        print(f"error: {project / ANSWERS_FILE}: no Copier answers file", file=sys.stderr)
        return 2
    if arguments.command == "guard":
        for line in guard(project, arguments.stage):
            print(line)
        return 0
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
