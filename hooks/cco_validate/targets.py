"""The chosen build targets: each compiled and linked for real where its standard library and a
linker are here, and what it built checked from its own headers (binaries.py).

The host target is the release build of the full level. Any other target is built with
`cargo build --release --target` where the host links it itself (Apple targets on a Mac), and
with cargo-zigbuild elsewhere: zig links Mach-O from Linux (signing arm64 code ad hoc) and
Linux targets of other architectures and libcs. A target that cannot be compiled here says
skipped, with what is missing and how to get it; it never passes.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import binaries
from .answers import answer
from .builds import Build, cargo_error, environment_problem
from .model import Project, Result, failed, find_tool, passed, skipped

APPLE = ("x86_64-apple-darwin", "aarch64-apple-darwin")
# What each target's binary must be: its format and architecture, as binaries.py names them.
KINDS = {
    "x86_64-unknown-linux-gnu": ("ELF", "x86_64"),
    "aarch64-unknown-linux-gnu": ("ELF", "aarch64"),
    "x86_64-unknown-linux-musl": ("ELF", "x86_64"),
    "x86_64-apple-darwin": ("Mach-O", "x86_64"),
    "aarch64-apple-darwin": ("Mach-O", "arm64"),
}
# Rust's own minimum macOS per target; the repository's answer raises it, never lowers it.
MACOS_FLOOR = {"x86_64-apple-darwin": "10.12", "aarch64-apple-darwin": "11.0"}
# Libraries every macOS has: the system's own (the dyld shared cache), never a Homebrew path.
SYSTEM_LIBRARY = re.compile(r"^/(?:usr/lib/|System/Library/)")
# The run of an arm64 Linux binary here: qemu-user with Debian's arm64 loader and libc.
AARCH64_ROOT = Path("/usr/aarch64-linux-gnu")
# zig's words for a framework it does not carry (it ships no Apple SDK): the crate needs one.
MISSING_FRAMEWORK = re.compile(r"unable to find (?:system )?framework ['\"]?([A-Za-z0-9_]+)")


def rustc() -> str:
    """The compiler cargo uses: RUSTC when set, as cargo honours it."""
    return os.environ.get("RUSTC") or "rustc"


def host_target() -> str:
    output = subprocess.run([rustc(), "-vV"], capture_output=True, text=True, check=False).stdout
    return next((line.split(": ", 1)[1] for line in output.splitlines() if line.startswith("host: ")), "")


def installed_targets() -> set[str]:
    """Targets whose standard library is in the compiler's sysroot (`rustup target add` puts it there)."""
    sysroot = subprocess.run([rustc(), "--print", "sysroot"], capture_output=True, text=True, check=False)
    rustlib = Path(sysroot.stdout.strip()) / "lib" / "rustlib"
    if not rustlib.is_dir():
        return set()
    return {path.name for path in rustlib.iterdir() if any((path / "lib").glob("libstd-*.rlib"))}


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def same_version(first: str | None, second: str) -> bool:
    """11 and 11.0 are one macOS version (the answer may leave out the minor number)."""
    if first is None:
        return False
    return version_tuple(first + ".0.0")[:3] == version_tuple(second + ".0.0")[:3]


def deployment_target(answers: dict[str, Any], target: str) -> str:
    """MACOSX_DEPLOYMENT_TARGET for an Apple target: the answer, or Rust's floor where higher
    (the same rule as copier.yml's `macos_min_of`, which the Makefile and workflows use)."""
    wanted = str(answer(answers, "macos_deployment_target"))
    floor = MACOS_FLOOR[target]
    return wanted if version_tuple(wanted) >= version_tuple(floor) else floor


@dataclass(frozen=True)
class Linker:
    """How a target is built here: the cargo subcommand and the environment it needs."""

    subcommand: str  # "build" or "zigbuild"
    via: str  # what the line says linked it
    path: str  # PATH for cargo, under which cargo-zigbuild finds the zig `zig_command` found


def zig_command(path: str) -> list[str] | None:
    """The zig cargo-zigbuild will run under `path`, found as it finds it (src/zig/locate.rs):
    `python3 -m ziglang` first (PyPI's zig; CARGO_ZIGBUILD_PYTHON_PATH names another Python),
    then `zig` (CARGO_ZIGBUILD_ZIG_PATH), each only if it answers `version`. None: neither."""
    candidates = [
        (os.environ.get("CARGO_ZIGBUILD_PYTHON_PATH") or "python3", ["-m", "ziglang"]),
        (os.environ.get("CARGO_ZIGBUILD_ZIG_PATH") or "zig", []),
    ]
    for program, arguments in candidates:
        found = shutil.which(program, path=path)
        if found is None:
            continue
        try:
            answered = subprocess.run(
                [found, *arguments, "version"], capture_output=True, text=True, check=False, timeout=60
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if answered.returncode == 0 and re.fullmatch(r"\d+\.\d+\.\d+\S*", answered.stdout.strip()):
            return [found, *arguments]
    return None


def linker_for(target: str) -> Linker | str:
    """The way to link `target` on this machine, or what is missing and how to get it.

    zig is looked for as cargo-zigbuild looks for it, under PATH as it is: what the owner's
    shell and `make cross-compile-macos` see. Only where that finds none is Copier's own
    environment tried (a virtualenv's bin/ that is not on PATH, as the README's render command
    leaves it), and the line then says that make needs that folder on PATH."""
    path = os.environ.get("PATH", "")
    if target in APPLE and platform.system() == "Darwin":
        return Linker("build", "Apple's linker", path)
    zigbuild = find_tool("cargo-zigbuild")
    if zigbuild is None:
        return (
            f"linking {target} on {platform.system()} needs cargo-zigbuild and zig: "
            "`pip install cargo-zigbuild ziglang` (docs/CROSS_COMPILE.md)"
        )
    # cargo finds its subcommand anywhere on PATH: appended, cargo-zigbuild's folder shadows nothing.
    on_path = os.pathsep.join([path, str(Path(zigbuild).parent)])
    if zig_command(on_path) is not None:
        return Linker("zigbuild", "cargo-zigbuild (zig)", on_path)
    copiers = str(Path(sys.executable).parent)
    beside_copier = os.pathsep.join([copiers, on_path])
    if zig_command(beside_copier) is not None:
        via = f"cargo-zigbuild (zig from {copiers}, not on PATH: make needs it there)"
        return Linker("zigbuild", via, beside_copier)
    return (
        f"linking {target} on {platform.system()} needs zig, which cargo-zigbuild runs as `python3 -m ziglang` "
        "or `zig` from PATH: `pip install ziglang` in the environment of the python3 on PATH (docs/CROSS_COMPILE.md)"
    )


def buildable(project: Project) -> list[str]:
    """The chosen targets other than the host that check_cross_targets will compile here."""
    host, installed = host_target(), installed_targets()
    return [
        target
        for target in project.answer("build_targets")
        if target != host and target in installed and isinstance(linker_for(target), Linker)
    ]


def check_cross_targets(
    project: Project, build: Build, built: bool, strict: bool, git_hash: str | None
) -> Iterable[Result]:
    host = host_target()
    installed = installed_targets()
    for target in project.answer("build_targets"):
        check = f"target {target}"
        if target == host:
            if not built:
                yield skipped(check, "the host: its builds did not succeed above")
            else:
                yield passed(check, "the host: built above")
            continue
        # Resolution first, whether or not the target can be compiled here: the same answer on
        # every machine for a graph that cannot resolve.
        result = build.cargo(
            "tree", "--target", target, "-e", "normal", "--depth", "1", shown_as=f"cargo tree --target {target}"
        )
        if result.returncode != 0:
            reason = environment_problem(result)
            yield (
                skipped(check, reason)
                if reason
                else failed(check, f"the dependency graph does not resolve: {cargo_error(result)}")
            )
            continue
        if not built:
            # The same sources fail the same way for every target: no build at all beats N failures.
            yield skipped(check, "not compiled: the host's builds did not succeed above")
            continue
        linker = linker_for(target)
        missing = []
        if target not in installed:
            missing.append(f"its standard library is missing (`rustup target add {target}`)")
        if isinstance(linker, str):
            missing.append(linker)
        if isinstance(linker, str) or missing:
            reason = f"not compiled: {'; '.join(missing)}"
            yield failed(check, reason) if strict else skipped(check, reason)
            continue
        yield build_target(project, build, target, linker, git_hash or "unknown")


def build_target(project: Project, build: Build, target: str, linker: Linker, commit: str) -> Result:
    check = f"target {target}"
    env = {"PATH": linker.path}
    if target in APPLE:
        env["MACOSX_DEPLOYMENT_TARGET"] = deployment_target(project.answers, target)
    result = build.cargo(linker.subcommand, "--release", "--target", target, env=env, shown_as=check)
    if result.returncode != 0:
        if framework := MISSING_FRAMEWORK.search(result.stderr):
            return failed(
                check,
                f"a dependency links Apple's {framework.group(1)} framework, which zig does not carry: "
                "set SDKROOT to an Apple SDK (docs/CROSS_COMPILE.md, osxcross) or build it on a Mac",
            )
        reason = environment_problem(result)
        return skipped(check, reason) if reason else failed(check, f"{linker.via}: {cargo_error(result)}")
    binary = build.target_directory() / target / "release" / project.name
    problems, facts = inspect(project, target, binary, commit)
    if problems:
        return failed(check, f"built with {linker.via}, but {binary.name}: {'; '.join(problems)}")
    return passed(check, f"built with {linker.via}: {', '.join(facts)}")


def inspect(project: Project, target: str, binary: Path, commit: str) -> tuple[list[str], list[str]]:
    """What is wrong with the binary built for `target`, and what was found right. Where it can
    run here, its `--version` must carry `commit`, as the host binary's does."""
    try:
        executable = binaries.read(binary)
    except (OSError, ValueError) as error:
        return [str(error)], []
    problems: list[str] = []
    facts: list[str] = []
    kind, arch = KINDS[target]
    if (executable.format, executable.arch) != (kind, arch) or not executable.executable:
        problems.append(f"is a {executable.format} {executable.arch} file, not a {kind} {arch} executable")
    else:
        facts.append(f"{kind} {arch} executable")
    if kind == "Mach-O":
        wanted = deployment_target(project.answers, target)
        if not same_version(executable.macos_min, wanted):
            problems.append(f"declares macOS {executable.macos_min or 'no version'} as its minimum, not {wanted}")
        else:
            facts.append(f"macOS {wanted} or later")
        foreign = [library for library in executable.libraries if not SYSTEM_LIBRARY.match(library)]
        if foreign:
            problems.append(f"links libraries a Mac does not have: {', '.join(foreign)}")
        else:
            facts.append(f"links {', '.join(executable.libraries)}")
        signature = executable.signature
        if signature is not None and not signature.valid:
            problems.append(f"its code signature has {signature.bad_pages} of {signature.pages} page hashes wrong")
        elif signature is not None:
            facts.append(f"signed{' ad hoc' if signature.adhoc else ''}, {signature.pages} page hashes valid")
        elif arch == "arm64":
            problems.append("is not signed: arm64 macOS refuses to run unsigned code")
    elif target.endswith("-musl"):
        if executable.static:
            facts.append("static")
        else:
            problems.append(f"is not static: needs {executable.interpreter} and {', '.join(executable.libraries)}")
    if project.answer("strip"):
        if executable.strippable_symbols:
            problems.append(f"keeps {executable.strippable_symbols} symbols (strip is true)")
        else:
            facts.append("no symbols")
    limit = float(project.answer("size_limit_mb"))
    size = binary.stat().st_size
    if size > limit * 1e6:
        problems.append(f"is {size / 1e6:.2f} MB, above the {limit:g} MB limit")
    else:
        facts.append(f"{size / 1e6:.2f} MB")
    # Run only what is the right kind of file: anything else is already a problem above.
    ran = run_here(target, binary) if (executable.format, executable.arch) == (kind, arch) else None
    if ran is not None:
        command, output = ran
        if not output.startswith(project.name) or not re.search(rf"\b{re.escape(commit)}\b", output):
            problems.append(f"`{command}` printed {output!r}, without the commit {commit}")
        else:
            facts.append(f"`{command}` printed {output!r}")
    return problems, facts


def run_here(target: str, binary: Path) -> tuple[str, str] | None:
    """Runs `--version` where this machine can: natively (musl on x86_64 Linux), or under
    qemu-user with Debian's arm64 libc (aarch64 Linux). None: it cannot run here."""
    machine = platform.machine()
    if target == "x86_64-unknown-linux-musl" and machine == "x86_64" and platform.system() == "Linux":
        command = [str(binary), "--version"]
        shown = f"{binary.name} --version"
    elif target == "aarch64-unknown-linux-gnu" and shutil.which("qemu-aarch64") and AARCH64_ROOT.is_dir():
        command = ["qemu-aarch64", "-L", str(AARCH64_ROOT), str(binary), "--version"]
        shown = f"qemu-aarch64 {binary.name} --version"
    else:
        return None
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        return shown, str(error)
    return shown, (result.stdout.strip() or result.stderr.strip())
