"""The full level's checks that build: cargo's plumbing (Build, its errors), the lockfile, the
debug and release builds and the profile cargo used, and the release binary's size, symbols,
glibc floor and `--version`. They build in the project itself, as its owner's `make build`
would, and write only cargo's output (and a Cargo.lock where there is none).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .answers import answer
from .model import (
    CARGO_CONFIG,
    Project,
    Result,
    failed,
    passed,
    skipped,
)
from .progress import run_watched

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
        self, command: str, *arguments: str, env: dict[str, str] | None = None, shown_as: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Runs cargo in the crate. With `shown_as`, the command takes long (it compiles or
        downloads): its progress is shown under that name while it runs (progress.py)."""
        env = {**os.environ, "CARGO_TERM_COLOR": "never", **(env or {})}
        if self.target_dir is not None:
            env["CARGO_TARGET_DIR"] = str(self.target_dir)
        locked = ["--locked"] if self.locked else []
        if shown_as is not None:
            return run_watched(["cargo", command, *locked, *arguments], self.crate, env, shown_as)
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
    # It downloads what the lock file names and cargo's cache lacks: shown, as a build is.
    result = build.cargo("metadata", "--locked", "--format-version", "1", shown_as="cargo metadata (the dependencies)")
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
        result = build.cargo(*arguments, shown_as=check)
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


# ---------------------------------------------------------------- what the builds will cost

# CPU seconds a unit of the default render takes on average, from a clean build on the
# template's CI machine (2 cores, docs/BENCHMARKS.md "What full validation builds"): a debug
# unit, and a release unit under the specification's profile. The fat-LTO link of the binary
# runs on one thread: LINK_SECONDS per release build, whatever the cores.
DEBUG_CPU_SECONDS = 0.75
RELEASE_CPU_SECONDS = 1.0
LINK_SECONDS = 30.0


def count_units(build: Build, target: str) -> int | None:
    """How many units cargo's bar will count for the crate built for `target`: a unit per
    package the binary needs (normal and build dependencies, for that platform), two more per
    build script (compiled, then run). Close to cargo's own total, which also counts a crate
    twice where build-time features differ. None when cargo cannot resolve the graph here."""
    result = build.cargo(
        "metadata", "--format-version", "1", "--filter-platform", target, shown_as="cargo metadata (the dependencies)"
    )
    if result.returncode != 0:
        return None
    metadata = json.loads(result.stdout)
    packages = {package["id"]: package for package in metadata["packages"]}
    nodes = {node["id"]: node for node in metadata["resolve"]["nodes"]}
    needed: set[str] = set()
    waiting = [metadata["resolve"]["root"]] if metadata["resolve"].get("root") else []
    while waiting:
        package = waiting.pop()
        if package in needed:
            continue
        needed.add(package)
        waiting += [
            dependency["pkg"]
            for dependency in nodes[package]["deps"]
            if any(kind["kind"] in (None, "build") for kind in dependency["dep_kinds"])
        ]
    scripts = sum(
        any("custom-build" in target["kind"] for target in packages[package]["targets"]) for package in needed
    )
    return len(needed) + 2 * scripts


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def estimate_seconds(debug_units: int, release_units: list[int]) -> float:
    """Wall seconds for a debug build and release builds of so many units, from nothing."""
    seconds = debug_units * DEBUG_CPU_SECONDS / cores()
    return seconds + sum(units * RELEASE_CPU_SECONDS / cores() + LINK_SECONDS for units in release_units)


def minutes(seconds: float) -> str:
    return f"{max(1, round(seconds / 60))} min"
