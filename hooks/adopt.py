#!/usr/bin/env python3
"""Records which files were the owner's when `copier copy` laid the template over a directory.

    python hooks/adopt.py PROJECT --template TEMPLATE_CHECKOUT

Copier runs it once, after the first `copier copy` of a repository (`owned_files` not
recorded yet), before the validation. That copy kept every file that was already there
without asking (`_skip_if_exists`); this script renders the template again into a scratch
directory with the same answers and compares: a file of the project that the template also
renders, but whose content differs, is the owner's. Their paths go to the answers file as
`owned_files` (an empty list when there were none), which later updates exclude from the
template (`_exclude`), so `copier update` never overwrites, merges into or deletes them.
See ARCHITECTURE.md, "Who owns which file".

It writes nothing but that one answer. It exits 1 when `app` is true and the owner already
had a crate there: the skeleton was not laid over their code (their files are kept), and the
message lists the files the template added beside them and what to answer instead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cco_validate.answers import ANSWERS_FILE, absolute_source, answer, in_crate, load_answers, save_answers
from cco_validate.checks import git_ignores, makefile_targets
from cco_validate.model import ADOPTED_MAKEFILE, MAKE_TARGETS, SPECIFICATION_MK, source_files

# The owner's crate: what app=true would have laid the skeleton over.
CRATE_FILES = ("Cargo.toml", "build.rs", "src/main.rs")


def render(template: Path, answers: dict[str, object], into: Path) -> None:
    """The template rendered with `answers`, as Copier rendered it into the project, minus tasks."""
    os.environ["CCO_VALIDATE"] = "none"  # before copier (and plumbum) read the environment
    import copier

    data = {name: value for name, value in answers.items() if not name.startswith("_")}
    copier.run_copy(
        str(template),
        into,
        data=data,
        defaults=True,
        quiet=True,
        skip_tasks=True,
        unsafe=True,
        vcs_ref="HEAD",
    )


def owned_files(project: Path, rendered: Path) -> list[str]:
    """The files the template renders whose content in the project is another: the owner's."""
    return sorted(
        name
        for name in set(source_files(rendered)) - {ANSWERS_FILE}
        if (project / name).is_file() and (project / name).read_bytes() != (rendered / name).read_bytes()
    )


def lay_decided(project: Path, first: Path, decided: Path, owned: list[str]) -> list[str]:
    """Brings the project from the first render (`first`) to the render with the answers the
    adoption decided (`decided`): a file the template added is rewritten or removed as the new
    render has it, a file only the new render has is added. The owner's files are not touched.
    Returns the files added."""
    added = []
    before, after = set(source_files(first)), set(source_files(decided))
    for name in sorted((before | after) - set(owned) - {ANSWERS_FILE}):
        path = project / name
        ours = path.is_file() and name in before and path.read_bytes() == (first / name).read_bytes()
        if name not in after:
            if ours:
                path.unlink()
        elif name not in before and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(decided / name, path)
            added.append(name)
        elif ours:
            shutil.copy2(decided / name, path)
    return added


def had_files(project: Path, started: int | None) -> bool:
    """Whether the directory held anything before this copy: a git checkout, or a file older than
    the copy's start (whole seconds: a file from that same second counts as this copy's)."""
    if started is None or (project / ".git").exists():
        return True
    return any((project / name).stat().st_mtime < started for name in source_files(project))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="adopt.py", description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path)
    parser.add_argument("--template", type=Path, required=True, help="the template checkout Copier rendered")
    parser.add_argument("--started", type=int, help="when the copy started (Unix seconds)")
    parser.add_argument(
        "--lockfile",
        choices=["answered", "follow"],
        default="answered",
        help="follow: commit_lockfile was not answered, so it follows the owner's .gitignore",
    )
    arguments = parser.parse_args(argv)
    project = arguments.project.resolve()
    header, answers = load_answers(project)
    crate_dir = str(answer(answers, "crate_dir"))
    owned: list[str] = []
    added: list[str] = []
    notes: list[str] = []
    if had_files(project, arguments.started):
        with tempfile.TemporaryDirectory(prefix="cco-adopt-") as scratch:
            rendered = Path(scratch) / "render"
            render(arguments.template, answers, rendered)
            owned = owned_files(project, rendered)
            added = sorted(set(source_files(rendered)) - {ANSWERS_FILE} - set(owned))
            # What the adoption decides, which the first render could not know: the owner's
            # Makefile gets the specification's targets it lacks (GNUmakefile), and an ignored
            # Cargo.lock stays ignored unless the answers said otherwise.
            decided = {**answers, "owned_files": owned}
            lockfile = in_crate(answers, "Cargo.lock")
            if (
                arguments.lockfile == "follow"
                and answer(answers, "commit_lockfile")
                and lockfile in (git_ignores(project, [lockfile]) or set())
            ):
                decided["commit_lockfile"] = False
                notes.append(
                    f"adopted: .gitignore ignores {lockfile}, so it stays uncommitted (commit_lockfile=false: the "
                    "workflows and the Dockerfile need none); to commit it instead, remove that line from "
                    "`.gitignore` and run `copier update --trust --defaults --data commit_lockfile=true`"
                )
            if owned or decided.get("commit_lockfile") != answers.get("commit_lockfile"):  # the render changes
                again = Path(scratch) / "decided"
                render(arguments.template, decided, again)
                added = sorted(set(added) | set(lay_decided(project, rendered, again, owned)))
                answers = decided
            makefile = in_crate(answers, "Makefile")
            if makefile in owned:
                lacking = [name for name in MAKE_TARGETS if name not in makefile_targets(project / makefile)]
                if lacking:
                    notes.append(
                        f"adopted: {makefile} is yours and lacks {', '.join(lacking)}: `make` in {crate_dir} reads "
                        f"{in_crate(answers, ADOPTED_MAKEFILE)} first, which runs your Makefile's targets and, for "
                        f"those, the specification's from {in_crate(answers, SPECIFICATION_MK)}; your Makefile is "
                        "not changed"
                    )
    answers["owned_files"] = owned
    answers["_src_path"] = absolute_source(str(answers.get("_src_path", "")), arguments.template.resolve())
    save_answers(project, header, answers)
    if not owned:
        return 0
    print(f"adopted: {len(owned)} files were yours and are kept as they were: {', '.join(owned)}")
    print(
        f"adopted: the template manages the {len(added)} others; `copier update` will never "
        f"overwrite, merge into or delete yours (they are listed as owned_files in {ANSWERS_FILE})"
    )
    for note in notes:
        print(note)
    theirs = [in_crate(answers, name) for name in CRATE_FILES if in_crate(answers, name) in owned]
    if answer(answers, "app") and theirs:
        print(
            f"✗ app: {', '.join(theirs)} were already here: app=true lays the application skeleton over a "
            "crate of its own, so yours was kept as it was and not built on. The template added: "
            f"{', '.join([*added, ANSWERS_FILE])}. To adopt your crate instead, remove those (`git status` "
            "lists them as untracked) and copy again with `--data app=false`.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
