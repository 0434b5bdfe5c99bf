"""The answers file Copier writes into a rendered repository: where it is, how the hooks read
and write it, and where the template it names can be found again; and where an update's
migrations keep what they hand on (to the next stage, and to the validation after them)."""

from __future__ import annotations

import functools
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ANSWERS_FILE = ".copier-answers.yml"
# A template source that is not a local path: a URL, scp-like git, or Copier's gh:/gl: prefixes.
REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|[\w.-]+@[\w.-]+:|gh:|gl:)")


# The template's questions: the hooks run from the template's checkout, beside it.
COPIER_YML = Path(__file__).resolve().parents[2] / "copier.yml"


@functools.cache
def defaults() -> dict[str, Any]:
    """Each question's default as copier.yml writes it, where that is a value and not Jinja: the
    one source of the defaults the hooks fill a missing answer with (an answers file of an older
    template version lacks the newer questions)."""
    questions = yaml.safe_load(COPIER_YML.read_text()) or {}
    return {
        name: spec["default"]
        for name, spec in questions.items()
        if not name.startswith("_")
        and isinstance(spec, dict)
        and "default" in spec
        and not (isinstance(spec["default"], str) and ("{{" in spec["default"] or "{%" in spec["default"]))
    }


def answer(answers: Mapping[str, Any], name: str) -> Any:
    """The answer to `name`, or copier.yml's default where the answers lack it."""
    return answers[name] if name in answers else defaults()[name]


def in_crate(answers: Mapping[str, Any], path: str) -> str:
    """A path in the crate's folder as a path from the repository root (crate_dir "." is the root)."""
    crate_dir = str(answer(answers, "crate_dir"))
    return path if crate_dir == "." else f"{crate_dir}/{path}"


def load_answers(project: Path) -> tuple[str, dict[str, Any]]:
    """The answers file's comment header and its answers."""
    text = (project / ANSWERS_FILE).read_text()
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    return header, yaml.safe_load(text) or {}


def save_answers(project: Path, header: str, answers: dict[str, Any]) -> None:
    (project / ANSWERS_FILE).write_text(header + yaml.safe_dump(answers, sort_keys=True, allow_unicode=True))


def absolute_source(source: str, checkout: Path) -> str:
    """A local template path as an absolute one. Copier records the path as typed, relative to
    where the user stood, so `copier update`, run later from inside the project, would look for
    it in the wrong place. `checkout` is what Copier rendered: the clone of a git template, whose
    `origin` git recorded as an absolute path, or else the template's directory itself. Remote
    sources stay as they are, and so does a path that cannot be found."""
    if not source or REMOTE.match(source) or Path(source).is_absolute():
        return source

    def git(*arguments: str) -> str:
        done = subprocess.run(["git", "-C", str(checkout), *arguments], capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    clone = git("rev-parse", "--show-toplevel") == str(checkout.resolve())
    candidate = Path(git("remote", "get-url", "origin")) if clone else checkout
    if candidate.is_absolute() and (candidate / "copier.yml").is_file():
        return str(candidate.resolve())
    return source


def state_dir(project: Path) -> Path:
    """Where migrations keep what one stage hands to the next: in the git directory, never in the tree."""
    found = subprocess.run(
        ["git", "rev-parse", "--absolute-git-dir"], cwd=project, capture_output=True, text=True, check=False
    )
    return Path(found.stdout.strip() or project / ".git") / "cco-template"


def removed_by_update(project: Path) -> set[str]:
    """The committed files the last `copier update` removed (the template stopped rendering
    them), as migrate.py's guard recorded them: the validation after it says so, not that the
    owner deleted them."""
    record = state_dir(project) / "removed"
    return set(record.read_text().split("\n")) - {""} if record.is_file() else set()
