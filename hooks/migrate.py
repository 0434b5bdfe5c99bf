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
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from cco_validate.answers import ANSWERS_FILE, answer, load_answers, save_answers, state_dir


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
        # The base: OLD as the template rendered it at the recorded version (the guard's render).
        current = (project / old).read_text()
        rendered = state_dir(project) / "rendered" / old
        original = rendered.read_text() if rendered.is_file() else None
        if original == current:
            return f"move-file {old} -> {new}: no edits of yours in {old}; the template's {new} replaces it"
        stash.parent.mkdir(parents=True, exist_ok=True)
        ours.write_text(current)
        base.write_text(original or "")
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


def carried_over(project: Path) -> Path:
    """Where move-file lists the files whose edits it carried, for the guard after it."""
    return state_dir(project) / "carried"


class GuardError(Exception):
    """The guard cannot do its work: the update must stop before it changes anything."""


def render_recorded(project: Path, into: Path) -> str | None:
    """Renders the template at the version the answers file records, with the recorded answers,
    into `into`: what Copier itself renders to compute the update, so the owner's edits are
    measured from what the template gave them, whether or not that was ever committed alone.
    Returns None, or why it could not."""
    answers = load_answers(project)[1]
    source, commit = answers.get("_src_path"), answers.get("_commit")
    if not source or not commit:
        return f"{ANSWERS_FILE} records no template version"
    import copier  # only here: every other migration runs without it

    data = {name: value for name, value in answers.items() if not name.startswith("_")}
    try:
        copier.run_copy(str(source), into, data=data, vcs_ref=str(commit), defaults=True, overwrite=True,
                        quiet=True, skip_tasks=True, unsafe=True)  # fmt: skip
    except Exception as error:  # any failure: the guard cannot tell edits, and says why
        return f"{type(error).__name__}: {error}".splitlines()[0]
    return None


def guard(project: Path, stage: str) -> list[str]:
    """Every update, both stages: a file the update removes never takes the owner's edits with it.

    Copier deletes a file when the template stops rendering it at that path: the template
    dropped or moved it, or an answer such as crate_dir moved the crate. Before the update this
    records the committed files and the crate's folder, and renders the template at the
    version the repository records (the base: what the owner's edits are measured from, also
    when the render and an edit went into the same first commit). After it, for each file that
    is gone: when the crate moved and the template renders the file at the new place, the
    owner's edits are merged into it (or, for a file they had deleted, it is deleted again);
    otherwise, when the owner had edited it, the line says so and how to get it back from git.
    Unedited files go silently, as the template meant. Every file the update removed is listed
    for the validation that follows, so it never calls one deleted by the owner.
    """
    state = state_dir(project)
    record, rendered, removed = state / "guard.json", state / "rendered", state / "removed"
    if stage == "before":
        state.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(rendered, ignore_errors=True)
        removed.unlink(missing_ok=True)
        if problem := render_recorded(project, rendered):
            shutil.rmtree(rendered, ignore_errors=True)
            raise GuardError(
                f"could not render the template at the version {ANSWERS_FILE} records ({problem}), which is what "
                "your edits are measured from: the update stops here, before it changed anything"
            )
        listed = git(project, "ls-files", "-z").stdout.split("\0")
        rendered_files = [path.relative_to(rendered).as_posix() for path in rendered.rglob("*") if path.is_file()]
        crate_dir = str(answer(load_answers(project)[1], "crate_dir"))
        facts = {"tracked": [n for n in listed if n], "base": rendered_files, "crate_dir": crate_dir}
        record.write_text(json.dumps(facts))
        return []
    if not record.is_file():
        return []
    facts = json.loads(record.read_text())
    record.unlink()
    carried = set(carried_over(project).read_text().split()) if carried_over(project).is_file() else set()
    carried_over(project).unlink(missing_ok=True)
    old_dir, new_dir = facts["crate_dir"], str(answer(load_answers(project)[1], "crate_dir"))
    tracked = set(facts["tracked"])

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

    def at_base(path: str) -> str | None:
        try:
            return (rendered / path).read_text()
        except (OSError, UnicodeDecodeError):
            return None

    lines, gone = [], []
    for path in sorted(tracked):
        if (project / path).exists() or path in carried:
            continue
        gone.append(path)
        ours = committed("HEAD", path)
        base = at_base(path)
        target = moved(path)
        if ours is None or ours == base:
            continue  # the template's own, unedited: it goes as the template meant
        if target and (project / target).is_file() and target not in tracked:
            ours_file, base_file = state / "guarded.ours", state / "guarded.base"
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
    shutil.rmtree(rendered, ignore_errors=True)
    removed.write_text("".join(f"{path}\n" for path in gone))
    # Files the owner had deleted, which the crate's move would bring back at the new place.
    for path in sorted(set(facts["base"]) - tracked):
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
        try:
            lines = guard(project, arguments.stage)
        except GuardError as error:
            print(f"error: update guard: {error}", file=sys.stderr)
            return 1
        for line in lines:
            print(line)
        return 0
    if arguments.command == "rename-question":
        message = rename_question(project, arguments.old, arguments.new)
    elif arguments.command == "adopt-default":
        message = adopt_default(project, arguments.question, arguments.old_default, arguments.new_default)
    else:
        # Before an update Copier renders migrations without the answers, so paths name the
        # crate's folder as {crate_dir}, taken here from the answers file.
        crate_dir = str(answer(load_answers(project)[1], "crate_dir"))
        old, new = (path.replace("{crate_dir}", crate_dir) for path in (arguments.old, arguments.new))
        message = move_file(project, os.path.normpath(old), os.path.normpath(new), arguments.stage)
    print(f"migration: {message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
