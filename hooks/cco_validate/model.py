"""What validation knows of a rendered CCO repository: its files and answers (Project), the
result a check returns (Result, named by one of CHECKS), and where a tool is found.

No check knows about Copier, and none changes the project: the checks read the tree
(checks.py), build in it as its owner's `make build` would (builds.py, full.py), and say
what they found.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from .answers import ANSWERS_FILE, answer, in_crate

Status = Literal["passed", "failed", "skipped"]
CONFIG = "config/orchestra-config.json"
WORKFLOW = ".github/workflows/build.yml"
RELEASE_WORKFLOW = ".github/workflows/release.yml"
DEPENDABOT = ".github/dependabot.yml"
UPDATE_WORKFLOW = ".github/workflows/template-update.yml"
# Every workflow the template may render (each only with its answer): parsed and linted alike.
WORKFLOWS = [WORKFLOW, RELEASE_WORKFLOW, UPDATE_WORKFLOW]
UPDATE_SCRIPT = ".github/scripts/template_update.py"
# In the crate: an entry per check, under the anchor `anchor(check)`.
TROUBLESHOOTING = "docs/TROUBLESHOOTING.md"
CARGO_CONFIG = ".cargo/config.toml"
SCRIPTS = ["install.sh", "scripts/analyze-size.sh", "scripts/check-merge.sh", "scripts/make.sh", "scripts/release.sh"]
# In the crate of a repository whose Makefile is the owner's: make reads GNUmakefile first, and
# it runs the owner's Makefile, or specification.mk (the template's) for a target that lacks.
ADOPTED_MAKEFILE = "GNUmakefile"
SPECIFICATION_MK = "specification.mk"
# The Makefile targets the specification asks for (§3).
MAKE_TARGETS = ["build", "test", "release", "install", "clean", "fmt", "lint", "check-size", "cross-compile-macos"]
# Text that Jinja leaves behind when a template was not rendered. `${{ ... }}` is GitHub's.
UNRENDERED = re.compile(r"(?<!\$)\{\{ |\{%|%\}|\{#")


@dataclass(frozen=True)
class Result:
    check: str
    status: Status
    detail: str

    def __post_init__(self) -> None:
        if ("target" if self.check.startswith("target ") else self.check) not in CHECKS:
            raise ValueError(f"{self.check!r} is not a check of CHECKS (docs/UPDATING.md, 'Add a check')")


# Every check validation runs, by the name its lines carry (`target TRIPLE` for each target):
# the generated docs/TROUBLESHOOTING.md has an entry for each (tests/test_troubleshooting.py).
CHECKS = (
    "structure",
    "executable",
    "rendered",
    "conflicts",
    "manifest",
    "config",
    "ports",
    "yaml",
    "matrix",
    "workflow",
    "makefile",
    "gitignore",
    "shellcheck",
    "hadolint",
    "actionlint",
    "lockfile",
    "cargo build",
    "cargo build --release",
    "profile",
    "size",
    "symbols",
    "version",
    "glibc",
    "target",
)


def anchor(check: str) -> str:
    """The check's entry in docs/TROUBLESHOOTING.md: `target x86_64-...` is `target`,
    `cargo build --release` is `cargo-build-release`."""
    name = "target" if check.startswith("target ") else check
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def passed(check: str, detail: str) -> Result:
    return Result(check, "passed", detail)


def failed(check: str, detail: str) -> Result:
    return Result(check, "failed", detail)


def skipped(check: str, reason: str) -> Result:
    return Result(check, "skipped", reason)


@dataclass(frozen=True)
class Project:
    """A rendered repository and the answers it was rendered with."""

    root: Path
    answers: dict[str, Any]
    # After `copier update`, a missing file is one the user deleted: Copier keeps it deleted.
    updated: bool = False

    @classmethod
    def load(cls, root: Path, updated: bool = False) -> Project:
        answers_path = root / ANSWERS_FILE
        if not answers_path.is_file():
            raise FileNotFoundError(f"{answers_path}: no Copier answers file; is {root} a rendered CCO repository?")
        answers = yaml.safe_load(answers_path.read_text()) or {}
        return cls(root=root.resolve(), answers=answers, updated=updated)

    def answer(self, name: str) -> Any:
        """The answer to `name`, or copier.yml's default where the answers file lacks it."""
        return answer(self.answers, name)

    @property
    def crate_dir(self) -> str:
        return str(self.answer("crate_dir"))

    @property
    def crate(self) -> Path:
        return self.root / self.crate_dir

    @property
    def name(self) -> str:
        return str(self.answers.get("crate_name") or self.answer("project_name"))  # copier.yml derives it

    @property
    def app(self) -> bool:
        """True when the template wrote the application; false when it adopted an existing crate."""
        return bool(self.answer("app"))

    @property
    def owned(self) -> frozenset[str]:
        """Files that were the owner's before the template came: kept, never rendered over."""
        return frozenset(str(path) for path in self.answers.get("owned_files") or [])

    @property
    def required_of_owner(self) -> list[str]:
        """Files an adopted crate (app: false) brings itself: the template renders none of them."""
        return [] if self.app else [self.relative("Cargo.toml"), CONFIG]

    def whose(self, path: str) -> str:
        """`path` as a user reads it, marked when it is the owner's own file."""
        theirs = path in self.owned or (not self.app and path in [*self.required_of_owner, self.relative("build.rs")])
        return f"{path} (yours)" if theirs else path

    def relative(self, path: str) -> str:
        """A crate file's path from the repository root, as a user reads it."""
        return in_crate(self.answers, path)


def expected_files(answers: dict[str, Any]) -> set[str]:
    """Every file the template renders for these answers, from the repository root (files the
    owner already had are among them: the template keeps theirs instead of rendering its own)."""
    crate = [
        "Makefile",
        "deny.toml",
        "docs/CROSS_COMPILE.md",
        "docs/DECISIONS.md",
        TROUBLESHOOTING,
        "install.sh",
        "scripts/analyze-size.sh",
        "scripts/check-merge.sh",
        "scripts/make.sh",
    ]
    root = {ANSWERS_FILE, ".gitignore", "README.md", WORKFLOW}
    if answer(answers, "release"):
        crate += ["scripts/release.sh", "docs/RELEASING.md"]
        root.add(RELEASE_WORKFLOW)
    if answer(answers, "dependabot"):
        root.add(DEPENDABOT)
    if answer(answers, "template_updates"):
        root |= {UPDATE_WORKFLOW, UPDATE_SCRIPT}
    if not answer(answers, "app"):
        # An adopted crate: its Cargo.toml and build.rs are the owner's; the profile goes here.
        root.add(CARGO_CONFIG)
    else:
        crate += [
            "Cargo.toml",
            "build.rs",
            "src/main.rs",
            "src/cache.rs",
            "src/client.rs",
            "src/config.rs",
            "src/home.rs",
            "src/proxy.rs",
            "src/schema.rs",
            "src/scratch.rs",
            "src/server.rs",
            "src/stats.rs",
            "src/tls.rs",
            "tests/cli.rs",
        ]
        root.add(CONFIG)
    if in_crate(answers, "Makefile") in (answers.get("owned_files") or []):
        # The owner's Makefile, and the specification's targets it lacks (check_makefile).
        crate += [ADOPTED_MAKEFILE, SPECIFICATION_MK]
    if answer(answers, "docker"):
        crate.append("Dockerfile")
        root.add(".dockerignore")
        if answer(answers, "compose"):
            crate += ["docker-compose.yml", ".env.example", "project/.gitignore"]
    return root | {in_crate(answers, name) for name in crate}


def source_files(root: Path) -> Iterator[str]:
    """Every file below `root`, as a path from it, without walking into .git or a build's
    target/ (which validation's own builds fill with thousands of files)."""
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if name not in {".git", "target"}]
        for name in files:
            yield (Path(folder) / name).relative_to(root).as_posix()


def find_tool(name: str) -> str | None:
    """On PATH, or beside this Python (a virtualenv's bin/ that is not on PATH)."""
    return shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
