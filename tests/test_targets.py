"""Every target the answers can name, compiled, linked and checked here: the Apple targets from
Linux with zig (cargo-zigbuild), arm64 Linux run under qemu-user, static musl run natively.

The standard libraries come from .ci/cross-targets (Debian's rust-src of this compiler's exact
version, built once). Where a target's standard library or zig is missing, the tests that need
it are skipped, naming what is missing; the checks' own logic is also tested on binaries changed
on purpose (a bad page hash, a foreign library, a wrong minimum macOS) and on a toolchain that
lacks the targets.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from cco_validate import binaries, builds, model, targets
from helpers import (
    ALL_TARGETS,
    CROSS,
    DEFAULT_ANSWERS,
    ROOT,
    RUNTIME_IMAGE,
    Project,
    Renders,
    Validated,
    git_init,
    podman,
    require_podman,
    run,
)
from test_release import release_tools

# The release profile made quick to compile (no LTO, no optimisation, no strip) for the tests
# that read what zig's linker makes of a Mach-O (its symbols, a framework it cannot find),
# which LLVM's work does not change; the same settings in each, so the dependencies they
# compile for aarch64-apple-darwin compile once.
QUICK_PROFILE = {
    "CARGO_PROFILE_RELEASE_LTO": "false",
    "CARGO_PROFILE_RELEASE_OPT_LEVEL": "0",
    "CARGO_PROFILE_RELEASE_CODEGEN_UNITS": "16",
    "CARGO_PROFILE_RELEASE_STRIP": "false",
}


def missing_for(target: str) -> str | None:
    """Why `target` cannot be built on this machine, or None when it can."""
    if targets.host_target() != "x86_64-unknown-linux-gnu":
        return f"these tests build from x86_64 Linux, not {targets.host_target()}"
    if target not in targets.installed_targets():
        return f"no standard library for {target} (bash .ci/cross-targets builds it from a rust-src matching rustc)"
    linker = targets.linker_for(target)
    return linker if isinstance(linker, str) else None


def require(*wanted: str) -> None:
    reasons = [reason for target in wanted if (reason := missing_for(target))]
    if reasons:
        pytest.skip("; ".join(reasons))


def target_lines(output: str) -> dict[str, str]:
    """Each target's validation line, by target."""
    lines = {}
    for line in output.splitlines():
        mark, _, rest = line.partition(" target ")
        if mark in {"✓", "✗", "-"} and rest:
            target, _, detail = rest.partition(": ")
            lines[target] = f"{mark} {detail}"
    return lines


@pytest.fixture
def all_targets(fully_validated: Validated) -> tuple[Project, subprocess.CompletedProcess[str], Path]:
    """The session's render of every target, fully validated (tests/conftest.py), and a copy of
    each cross target's binary; the tests that read it need every target here."""
    require(*CROSS)
    return fully_validated.project, fully_validated.result, fully_validated.binaries


@pytest.mark.slow
def test_every_target_is_built_and_checked_from_its_headers(
    all_targets: tuple[Project, subprocess.CompletedProcess[str], Path],
) -> None:
    project, result, _ = all_targets
    assert result.returncode == 0, result.stdout + result.stderr
    commit = run(["git", "rev-parse", "--short", "HEAD"], project.root).stdout.strip()
    lines = target_lines(result.stdout)
    assert set(lines) == set(ALL_TARGETS), result.stdout
    assert lines["x86_64-unknown-linux-gnu"] == "✓ the host: built above"
    arm = lines["aarch64-apple-darwin"]
    assert arm.startswith("✓ built with cargo-zigbuild (zig): Mach-O arm64 executable, macOS 11.0 or later")
    assert "signed ad hoc" in arm and "page hashes valid" in arm and "no symbols" in arm
    assert "links /usr/lib/libSystem.B.dylib" in arm
    intel = lines["x86_64-apple-darwin"]
    assert intel.startswith("✓ built with cargo-zigbuild (zig): Mach-O x86_64 executable, macOS 10.12 or later")
    assert "no symbols" in intel
    musl = lines["x86_64-unknown-linux-musl"]
    assert "ELF x86_64 executable, static" in musl
    assert f"`cco --version` printed 'cco 0.1.0 ({commit} " in musl
    aarch64 = lines["aarch64-unknown-linux-gnu"]
    assert "ELF aarch64 executable" in aarch64
    assert f"`qemu-aarch64 cco --version` printed 'cco 0.1.0 ({commit} " in aarch64
    # A target that was not compiled never counts as passed; here every one was.
    assert "not compiled" not in result.stdout


@pytest.mark.slow
def test_the_binaries_headers_are_what_the_lines_say(
    all_targets: tuple[Project, subprocess.CompletedProcess[str], Path],
) -> None:
    """Read again independently: `file` (libmagic) and LLVM's otool agree with binaries.py."""
    _, _, kept = all_targets
    described = {target: run(["file", "-b", str(kept / target / "cco")], kept).stdout for target in CROSS}
    assert described["aarch64-apple-darwin"].startswith("Mach-O 64-bit arm64 executable")
    assert described["x86_64-apple-darwin"].startswith("Mach-O 64-bit x86_64 executable")
    assert "ARM aarch64" in described["aarch64-unknown-linux-gnu"]
    assert "statically linked" in described["x86_64-unknown-linux-musl"]
    otool = shutil.which("llvm-otool") or shutil.which("llvm-otool-14")
    if otool:
        # Before 10.14 the minimum is written as LC_VERSION_MIN_MACOSX, from 11.0 as LC_BUILD_VERSION.
        intel = run([otool, "-l", str(kept / "x86_64-apple-darwin" / "cco")], kept).stdout
        assert re.search(r"cmd LC_VERSION_MIN_MACOSX\n\s+cmdsize 16\n\s+version 10\.12\n", intel), intel
        arm = run([otool, "-l", str(kept / "aarch64-apple-darwin" / "cco")], kept).stdout
        assert re.search(
            r"cmd LC_BUILD_VERSION\n\s+cmdsize \d+\n\s+platform macos\n\s+sdk [\d.]+\n\s+minos 11\.0\n", arm
        )
    executable = binaries.read(kept / "aarch64-apple-darwin" / "cco")
    assert executable.signature is not None and executable.signature.valid


def inspect(kept: Path, target: str, binary: Path, **answers: Any) -> tuple[list[str], list[str]]:
    project = model.Project(root=kept, answers={**DEFAULT_ANSWERS, **answers})
    return targets.inspect(project, target, binary, "0000000")


@pytest.mark.slow
def test_a_changed_page_a_foreign_library_and_a_wrong_minimum_fail(
    all_targets: tuple[Project, subprocess.CompletedProcess[str], Path], tmp_path: Path
) -> None:
    _, _, kept = all_targets
    original = kept / "aarch64-apple-darwin" / "cco"
    problems, _ = inspect(kept, "aarch64-apple-darwin", original)
    assert problems == [], problems

    # One byte of code changed after signing: arm64 macOS would kill it; the page hash says so.
    tampered = tmp_path / "tampered"
    data = bytearray(original.read_bytes())
    data[0x4000] ^= 0xFF
    tampered.write_bytes(bytes(data))
    problems, _ = inspect(kept, "aarch64-apple-darwin", tampered)
    assert any(problem.startswith("its code signature has 1 of ") for problem in problems), problems

    # A library no Mac has (the same length, so nothing else moves).
    foreign = tmp_path / "foreign"
    foreign.write_bytes(original.read_bytes().replace(b"/usr/lib/libiconv.2.dylib", b"/opt/lib/libiconv.2.dylib"))
    problems, _ = inspect(kept, "aarch64-apple-darwin", foreign)
    assert "links libraries a Mac does not have: /opt/lib/libiconv.2.dylib" in problems

    # The repository asks for macOS 13.0; the binary was built for 11.0.
    problems, _ = inspect(kept, "aarch64-apple-darwin", original, macos_deployment_target="13.0")
    assert "declares macOS 11.0 as its minimum, not 13.0" in problems

    # The wrong file for the target, and a limit the binary exceeds.
    problems, _ = inspect(kept, "x86_64-apple-darwin", original, size_limit_mb=0.1)
    assert "is a Mach-O arm64 file, not a Mach-O x86_64 executable" in problems
    assert any(problem.endswith("above the 0.1 MB limit") for problem in problems)

    # A dynamically linked binary where the musl one must be static.
    problems, _ = inspect(kept, "x86_64-unknown-linux-musl", kept / "aarch64-unknown-linux-gnu" / "cco")
    assert any(problem.startswith("is not static: needs /lib/ld-linux-aarch64.so.1") for problem in problems)


@pytest.mark.slow
def test_an_unstripped_apple_binary_keeps_symbols_the_check_counts(
    renders: Renders, cargo_env: dict[str, str], tmp_path: Path
) -> None:
    """strip = false: the symbol count binaries.py reads is not zero, and the line does not
    claim there are none (the answers say to keep them). Built with QUICK_PROFILE."""
    require("aarch64-apple-darwin")
    project = renders.copy(tmp_path / "unstripped", strip=False, build_targets=["aarch64-apple-darwin"])
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    run(
        ["cargo", "zigbuild", "--release", "--target", "aarch64-apple-darwin"],
        project.crate,
        env={**cargo_env, "PATH": path, "MACOSX_DEPLOYMENT_TARGET": "11.0", **QUICK_PROFILE},
    )
    binary = Path(cargo_env["CARGO_TARGET_DIR"]) / "aarch64-apple-darwin" / "release" / "cco"
    assert binaries.read(binary).strippable_symbols > 100
    problems, facts = inspect(tmp_path, "aarch64-apple-darwin", binary, strip=True)
    assert any(problem.startswith("keeps ") and problem.endswith(" symbols (strip is true)") for problem in problems)
    _, facts = inspect(tmp_path, "aarch64-apple-darwin", binary, strip=False)
    assert "no symbols" not in facts


FRAMEWORK = """
pub fn touch() {
    #[cfg(target_os = "macos")]
    #[allow(unsafe_code)]
    unsafe {
        println!("{}", core_foundation_sys::base::CFGetRetainCount(std::ptr::null()));
    }
}
"""


@pytest.mark.slow
def test_a_dependency_on_an_apple_framework_fails_with_one_line_naming_it(
    renders: Renders, cargo_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """core-foundation-sys links CoreFoundation: zig has no Apple SDK, and both the validation
    and `make cross-compile-macos` say so in one line (built with QUICK_PROFILE: the link fails
    either way)."""
    require("aarch64-apple-darwin")
    for name, value in QUICK_PROFILE.items():
        monkeypatch.setenv(name, value)  # validation's cargo runs in this process's environment
    project = renders.copy(tmp_path / "framework", build_targets=["x86_64-unknown-linux-gnu", "aarch64-apple-darwin"])
    manifest = project.crate / "Cargo.toml"
    manifest.write_text(
        manifest.read_text() + '\n[target.\'cfg(target_os = "macos")\'.dependencies]\ncore-foundation-sys = "0.8"\n'
    )
    (project.crate / "src" / "framework.rs").write_text(FRAMEWORK)
    main = project.crate / "src" / "main.rs"
    text = main.read_text().replace(
        "fn main() -> ExitCode {", "mod framework;\n\nfn main() -> ExitCode {\n    framework::touch();", 1
    )
    main.write_text(text)
    git_init(project.root)
    build = builds.Build(crate=project.crate, target_dir=Path(cargo_env["CARGO_TARGET_DIR"]))
    linker = targets.linker_for("aarch64-apple-darwin")
    assert isinstance(linker, targets.Linker)
    result = targets.build_target(project, build, "aarch64-apple-darwin", linker, "0000000")
    assert result.status == "failed", result
    assert result.detail == (
        "a dependency links Apple's CoreFoundation framework, which zig does not carry: set SDKROOT to an "
        "Apple SDK (docs/CROSS_COMPILE.md, osxcross) or build it on a Mac"
    )
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    made = run(
        ["make", "cross-compile-macos", "MACOS_TARGETS=aarch64-apple-darwin"],
        project.crate,
        env={**cargo_env, "PATH": path, **QUICK_PROFILE},
        check=False,
    )
    assert made.returncode != 0
    # One line, the last before make's own: zig's words are above it, in cargo's output.
    assert made.stderr.strip().splitlines()[-2] == (
        "✗ aarch64-apple-darwin: a dependency links Apple's CoreFoundation framework, which zig does not carry: "
        "set SDKROOT to an Apple SDK (docs/CROSS_COMPILE.md) or build on a Mac"
    )


def bare_toolchain(into: Path) -> Path:
    """A copy of this machine's toolchain (hard links) with only the host's standard library:
    a fresh rustup install before any `rustup target add`."""
    sysroot = Path(run(["rustc", "--print", "sysroot"], into).stdout.strip())
    copy = into / "toolchain"
    run(["cp", "-al", str(sysroot), str(copy)], into)
    rustlib = copy / "lib" / "rustlib"
    for target in CROSS:
        shutil.rmtree(rustlib / target, ignore_errors=True)
    return copy


@pytest.mark.skipif(platform.system() != "Linux", reason="the bare toolchain is made from a Linux one")
def test_a_target_without_its_standard_library_is_skipped_never_passed(
    renders: Renders, cargo_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = renders(build_targets=["x86_64-unknown-linux-gnu", "aarch64-apple-darwin"])
    toolchain = bare_toolchain(tmp_path)
    monkeypatch.setenv("RUSTC", str(toolchain / "bin" / "rustc"))
    assert "aarch64-apple-darwin" not in targets.installed_targets()
    scratch = tmp_path / "scratch"
    shutil.copytree(project.root, scratch)
    build = builds.Build(crate=scratch / "cco", target_dir=Path(cargo_env["CARGO_TARGET_DIR"]))
    copied = model.Project(root=scratch, answers=project.answers)
    results = list(targets.check_cross_targets(copied, build, True, False, None))
    apple = next(result for result in results if result.check == "target aarch64-apple-darwin")
    assert apple.status == "skipped"
    assert apple.detail.startswith(
        "not compiled: its standard library is missing (`rustup target add aarch64-apple-darwin`)"
    )
    strict = list(targets.check_cross_targets(copied, build, True, True, None))
    assert next(result for result in strict if result.check == "target aarch64-apple-darwin").status == "failed"
    # After the host's builds failed, no target is compiled (the same sources would fail again).
    after_failure = list(targets.check_cross_targets(copied, build, False, True, None))
    assert [(result.status, result.detail) for result in after_failure] == [
        ("skipped", "the host: its builds did not succeed above"),
        ("skipped", "not compiled: the host's builds did not succeed above"),
    ]


def test_a_target_without_zig_is_skipped_naming_the_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No cargo-zigbuild on PATH nor beside Copier's Python: the line says what to install."""
    if platform.system() == "Darwin":
        pytest.skip("on macOS the Apple targets link with Apple's linker")
    monkeypatch.setenv("PATH", f"{Path(shutil.which('rustc') or 'rustc').parent}:/usr/bin:/bin")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python3"))
    reason = targets.linker_for("aarch64-apple-darwin")
    assert reason == (
        "linking aarch64-apple-darwin on Linux needs cargo-zigbuild and zig: `pip install cargo-zigbuild ziglang` "
        "(docs/CROSS_COMPILE.md)"
    )


def test_a_minimum_without_its_minor_number_is_the_same_version() -> None:
    """The answer 11 is what the binary declares as 11.0; 11.1 is not."""
    assert targets.same_version("11.0", "11") and targets.same_version("10.12", "10.12.0")
    assert not targets.same_version("11.0", "11.1") and not targets.same_version(None, "11.0")


def test_the_deployment_target_follows_the_answer_and_rusts_floor() -> None:
    assert targets.deployment_target({}, "x86_64-apple-darwin") == "10.12"
    assert targets.deployment_target({}, "aarch64-apple-darwin") == "11.0"
    assert targets.deployment_target({"macos_deployment_target": "10.15"}, "aarch64-apple-darwin") == "11.0"
    assert targets.deployment_target({"macos_deployment_target": "13.4"}, "aarch64-apple-darwin") == "13.4"


@pytest.mark.parametrize("answer", ["10.12", "10.15", "11", "12.3", "15.0"])
def test_the_makefile_sets_the_deployment_targets_validation_expects(renders: Renders, answer: str) -> None:
    project = renders(macos_deployment_target=answer)
    for target in targets.APPLE:
        shown = run(
            ["make", "-s", "--eval", "show: ; @echo $(MACOS_MIN_$(T))", "show", f"T={target}"], project.crate
        ).stdout.strip()
        assert shown == targets.deployment_target(project.answers, target)


@pytest.mark.slow
def test_make_cross_compile_macos_on_linux_builds_both_and_one_universal_binary(
    fully_validated: Validated, cargo_env: dict[str, str], tmp_path: Path
) -> None:
    """In the render validation built every target in (what make rebuilds is cargo's to say:
    the same sources and flags are fresh), so each Apple target compiles once per session."""
    require(*targets.APPLE)
    project = fully_validated.project
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    # Validation's cache (tests/helpers.py's validate): cargo-zigbuild keeps its linker wrapper
    # there, and cargo rebuilds a binary whose linker's path changed.
    env = {**cargo_env, "PATH": path, "XDG_CACHE_HOME": str(project.root.parent / "cache")}
    made = run(["make", "cross-compile-macos", "UNIVERSAL=1"], project.crate, env=env)
    target_dir = cargo_env["CARGO_TARGET_DIR"]
    assert (
        f"✓ x86_64-apple-darwin: {target_dir}/x86_64-apple-darwin/release/cco (macOS 10.12 or later, "
        "linked by cargo-zigbuild)" in made.stdout
    )
    assert f"✓ aarch64-apple-darwin: {target_dir}/aarch64-apple-darwin/release/cco (macOS 11.0 or later" in made.stdout
    assert f"✓ universal: {target_dir}/universal2-apple-darwin/release/cco (arm64 and x86_64)" in made.stdout
    universal = binaries.read(Path(target_dir) / "universal2-apple-darwin" / "release" / "cco")
    assert [(part.arch, part.macos_min) for part in universal.slices] == [("x86_64", "10.12"), ("arm64", "11.0")]
    assert universal.slices[1].signature is not None and universal.slices[1].signature.valid

    # check-size and the size analysis read Mach-O as they read ELF.
    binary = f"{target_dir}/aarch64-apple-darwin/release/cco"
    sized = run(["make", "check-size", f"BINARY={binary}"], project.crate, env=cargo_env)
    assert "✓ cco (Mach-O) is " in sized.stdout and "within the 15 MB limit" in sized.stdout
    analysed = run(["scripts/analyze-size.sh", "--binary", binary], project.crate, env=cargo_env)
    assert "__TEXT" in analysed.stdout, analysed.stdout
    assert "skipped: both measure this machine's own release build" in analysed.stdout

    # A release carries one universal archive, merged from the two Apple archives.
    dist = tmp_path / "dist"
    for target in targets.APPLE:
        run(["scripts/release.sh", "package", target, str(dist)], project.crate, env={**cargo_env, **release_tools()})
    run(["scripts/release.sh", "universal", str(dist)], project.crate, env=cargo_env)
    with tarfile.open(dist / "cco-universal2-apple-darwin.tar.gz") as archive:
        member = archive.getmember("cco-universal2-apple-darwin/cco")
        assert member.mode & 0o777 == 0o755
        archive.extract(member, tmp_path / "unpacked", filter="data")
    merged = binaries.read(tmp_path / "unpacked" / "cco-universal2-apple-darwin" / "cco")
    assert sorted(part.arch for part in merged.slices) == ["arm64", "x86_64"]


@pytest.mark.slow  # installs Copier from PyPI into an environment of its own
def test_zig_in_one_environment_and_copier_in_another_agree(renders: Renders, tmp_path: Path) -> None:
    """cargo-zigbuild and ziglang pip-installed in one environment on PATH (cargo-zigbuild's
    documented set-up: the tests' own), Copier in another without them (as `pipx install copier`
    leaves it): validation run by that other Python finds zig and links both Apple targets with
    it, and `make cross-compile-macos` under the same PATH builds both. A crate of its own, as
    small as a crate gets (the render's Makefile and scripts/make.sh beside it), so that what
    is measured is the finding of zig, not a release build of the application."""
    require(*targets.APPLE)
    copiers = tmp_path / "copier-environment"
    run([sys.executable, "-m", "venv", str(copiers)], tmp_path)
    run([str(copiers / "bin" / "python"), "-m", "pip", "install", "--quiet", "copier"], tmp_path)
    lacks = run([str(copiers / "bin" / "python"), "-c", "import ziglang"], tmp_path, check=False)
    assert lacks.returncode != 0, "Copier's environment must not have zig"
    project = renders()
    crate = tmp_path / "crate"
    run(["cargo", "new", "--quiet", "--vcs", "none", "--name", project.name, str(crate)], tmp_path)
    shutil.copy(project.crate / "Makefile", crate / "Makefile")
    shutil.copytree(project.crate / "scripts", crate / "scripts")
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        "CARGO_TARGET_DIR": str(tmp_path / "target"),  # zig's own cache stays the machine's: it is warm
    }
    script = f"""
import sys
sys.path.insert(0, {str(ROOT / "hooks")!r})
from cco_validate import targets
from cco_validate.builds import Build
from pathlib import Path
for target in targets.APPLE:
    linker = targets.linker_for(target)
    assert isinstance(linker, targets.Linker), linker
    built = Build(crate=Path({str(crate)!r}), target_dir=None).cargo(
        linker.subcommand, "--release", "--target", target, env={{"PATH": linker.path}}
    )
    print(target, linker.via, built.returncode, built.stderr.strip().splitlines()[-1:])
"""
    validated = run([str(copiers / "bin" / "python"), "-c", script], tmp_path, env=env)
    for target in targets.APPLE:
        assert f"{target} cargo-zigbuild (zig) 0 " in validated.stdout, validated.stdout
        binary = binaries.read(tmp_path / "target" / target / "release" / project.name)
        assert binary.format == "Mach-O"
    made = run(["make", "cross-compile-macos"], crate, env=env)
    for target in targets.APPLE:
        assert f"✓ {target}: " in made.stdout, made.stdout


def test_zig_beside_copier_alone_links_and_the_line_says_make_needs_it_on_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The README's render command installs zig beside Copier in a virtualenv that is not on
    PATH: validation still links with it, and says that `make cross-compile-macos` needs it."""
    if platform.system() == "Darwin":
        pytest.skip("on macOS the Apple targets link with Apple's linker")
    if importlib.util.find_spec("ziglang") is None or model.find_tool("cargo-zigbuild") is None:
        pytest.skip("zig and cargo-zigbuild are not installed beside this Python: pip install -e '.[validate]'")
    monkeypatch.setenv("PATH", f"{Path(shutil.which('rustc') or 'rustc').parent}:/usr/bin:/bin")
    linker = targets.linker_for("aarch64-apple-darwin")
    assert isinstance(linker, targets.Linker)
    here = Path(sys.executable).parent
    assert linker.via == f"cargo-zigbuild (zig from {here}, not on PATH: make needs it there)"
    assert linker.path.split(os.pathsep)[0] == str(here)


def test_cargo_zigbuild_without_zig_says_how_it_looks_for_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if platform.system() == "Darwin":
        pytest.skip("on macOS the Apple targets link with Apple's linker")
    zigbuild = model.find_tool("cargo-zigbuild")
    if zigbuild is None:
        pytest.skip("cargo-zigbuild is not installed: pip install cargo-zigbuild")
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "cargo-zigbuild").symlink_to(zigbuild)
    monkeypatch.setenv("PATH", f"{tools}:/usr/bin:/bin")
    monkeypatch.delenv("CARGO_ZIGBUILD_PYTHON_PATH", raising=False)
    monkeypatch.delenv("CARGO_ZIGBUILD_ZIG_PATH", raising=False)
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python3"))  # Copier's Python has no zig either
    if targets.zig_command(f"{tools}:/usr/bin:/bin") is not None:
        pytest.skip("this machine's /usr/bin has zig")
    assert targets.linker_for("x86_64-apple-darwin") == (
        "linking x86_64-apple-darwin on Linux needs zig, which cargo-zigbuild runs as `python3 -m ziglang` or `zig` "
        "from PATH: `pip install ziglang` in the environment of the python3 on PATH (docs/CROSS_COMPILE.md)"
    )


def test_make_cross_compile_macos_without_zig_names_the_install(renders: Renders, tmp_path: Path) -> None:
    if platform.system() == "Darwin":
        pytest.skip("on macOS the Apple targets link with Apple's linker")
    project = renders()
    rust = str(Path(shutil.which("rustc") or "rustc").parent)  # rustup's bin: cargo, rustc, no cargo-zigbuild
    made = run(["make", "cross-compile-macos"], project.crate, env={"PATH": f"{rust}:/usr/bin:/bin"}, check=False)
    assert made.returncode != 0
    assert made.stderr.splitlines()[0] == (
        "✗ linking for macOS on Linux needs zig and cargo-zigbuild: pip install ziglang cargo-zigbuild "
        "(docs/CROSS_COMPILE.md; nothing was built)"
    )
    assert "✓" not in made.stdout


@pytest.mark.slow
def test_a_release_can_carry_the_static_musl_binary(
    all_targets: tuple[Project, subprocess.CompletedProcess[str], Path], tmp_path: Path
) -> None:
    """install.sh --download picks the -musl archive where there is no glibc: release.sh packages
    the real musl binary, and what it unpacks runs and is static."""
    project, _, kept = all_targets
    binary = kept / "x86_64-unknown-linux-musl" / "cco"
    dist = tmp_path / "dist"
    run(
        ["scripts/release.sh", "package", "x86_64-unknown-linux-musl", str(dist)],
        project.crate,
        env={"BINARY": str(binary), **release_tools()},
    )
    run(["scripts/release.sh", "checksums", str(dist)], project.crate)
    assert "cco-x86_64-unknown-linux-musl.tar.gz" in (dist / "SHA256SUMS").read_text()
    with tarfile.open(dist / "cco-x86_64-unknown-linux-musl.tar.gz") as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    unpacked = tmp_path / "unpacked" / "cco-x86_64-unknown-linux-musl" / "cco"
    assert binaries.read(unpacked).static
    assert run([str(unpacked), "--version"], tmp_path).stdout.startswith("cco 0.1.0 (")


@pytest.mark.slow
def test_the_arm64_deb_installs_with_dpkg_and_its_binary_runs(
    all_targets: tuple[Project, subprocess.CompletedProcess[str], Path], tmp_path: Path
) -> None:
    """The arm64 .deb, packaged by the release leg's own command from the arm64 binary full
    validation built. This machine cannot start an arm64 container (no binfmt_misc), so dpkg
    installs it in the stand-in amd64 debian:<release>-slim with arm64 added as a foreign
    architecture, offline; its libc6:arm64 dependency cannot be installed there, so that one
    check is forced (--force-depends) and named in the output. The binary dpkg put in
    /usr/bin runs under qemu-user with Debian's arm64 libc; dpkg -r leaves nothing."""
    require_podman(RUNTIME_IMAGE)
    project, _, kept = all_targets
    target = "aarch64-unknown-linux-gnu"
    if not (kept / target / "cco").is_file():
        pytest.skip(f"full validation did not build {target} here")
    if shutil.which("qemu-aarch64") is None or not targets.AARCH64_ROOT.is_dir():
        pytest.skip("qemu-aarch64 and Debian's arm64 libc (qemu-user, libc6-arm64-cross) run arm64 binaries here")
    dist, out = tmp_path / "dist", tmp_path / "out"
    out.mkdir()
    run(["scripts/release.sh", "deb", target, str(dist)], project.crate, env={"BINARY": str(kept / target / "cco")})
    deb = "cco_0.1.0_arm64.deb"
    assert sorted(path.name for path in dist.iterdir()) == [deb]
    script = f"""set -eu
    dpkg --add-architecture arm64
    dpkg -i --force-depends /dist/{deb} 2>&1 | grep -o 'depends on libc6 (>= [0-9.]*)' | head -1
    dpkg-query -W -f '${{Package}} ${{Architecture}} ${{Version}}\n' cco
    cp /usr/bin/cco /out/cco
    dpkg -r --force-depends cco >/dev/null
    if [ -e /usr/bin/cco ]; then echo "still installed"; exit 1; fi
    dpkg-query -W cco 2>&1 || true
    """
    shown = podman("run", "--rm", "--network=none", "-v", f"{dist}:/dist:ro", "-v", f"{out}:/out", RUNTIME_IMAGE,
                   "sh", "-c", script).stdout.splitlines()  # fmt: skip
    assert shown[0].startswith("depends on libc6 (>= "), shown
    assert shown[1] == "cco arm64 0.1.0"
    assert shown[2] == "dpkg-query: no packages found matching cco", "removed, with no file left to purge"
    assert binaries.read(out / "cco").arch == "aarch64"
    version = run(["qemu-aarch64", "-L", str(targets.AARCH64_ROOT), str(out / "cco"), "--version"], tmp_path).stdout
    commit = run(["git", "rev-parse", "--short", "HEAD"], project.root).stdout.strip()
    assert version.startswith(f"cco 0.1.0 ({commit} "), version


@pytest.mark.slow
def test_the_universal_archive_is_the_same_bytes_when_merged_again(
    all_targets: tuple[Project, subprocess.CompletedProcess[str], Path], tmp_path: Path
) -> None:
    """The universal job merges the two Apple archives the build legs proved reproducible:
    `release.sh universal`, run twice in two folders at two times, gives the same bytes."""
    project, _, kept = all_targets
    digests = []
    for name in ("first", "second"):
        dist = tmp_path / name / "dist"
        for target in ("aarch64-apple-darwin", "x86_64-apple-darwin"):
            binary = {"BINARY": str(kept / target / "cco")}
            run(["scripts/release.sh", "package", target, str(dist)], project.crate, env={**binary, **release_tools()})
        run(["scripts/release.sh", "universal", str(dist)], project.crate, env=release_tools())
        digests.append(hashlib.sha256((dist / "cco-universal2-apple-darwin.tar.gz").read_bytes()).hexdigest())
        time.sleep(1.1)  # a second later: no clock may reach the bytes
    assert digests[0] == digests[1]
    with tarfile.open(tmp_path / "first" / "dist" / "cco-universal2-apple-darwin.tar.gz") as archive:
        names = archive.getnames()
    assert "cco-universal2-apple-darwin/cco" in names and "cco-universal2-apple-darwin/cco.cdx.json" in names


@pytest.mark.slow
@pytest.mark.parametrize(
    ("target", "kind"), [("x86_64-unknown-linux-musl", "build"), ("aarch64-unknown-linux-gnu", "zigbuild")]
)
def test_a_linux_cross_target_rebuilds_to_the_same_bytes(
    renders: Renders, tmp_path: Path, target: str, kind: str
) -> None:
    """The release leg's build, package and .deb (arm64's), then `release.sh reproduce`: a
    clean copy of the commit in another folder, with its own target directory, later. Both
    builds start from empty target directories of their own, so `.ci/run` can run arm64's
    beside the container tests, which balances its two lanes."""
    require(target)
    project = renders.copy(tmp_path / "repository", build_targets=ALL_TARGETS)
    run(["cargo", "generate-lockfile"], project.crate)  # committed: the release build is --locked
    git_init(project.root)
    # cargo-zigbuild, and the python3 whose ziglang it runs as zig, first.
    path = os.pathsep.join([str(Path(sys.executable).parent), release_tools()["PATH"]])
    env = {"CARGO_TARGET_DIR": str(tmp_path / "target"), "PATH": path}
    run(["scripts/release.sh", "build", target, kind], project.crate, env=env)
    run(["scripts/release.sh", "package", target, str(tmp_path / "dist")], project.crate, env=env)
    if target == "aarch64-unknown-linux-gnu":  # the arm64 .deb (amd64's is glibc's build)
        run(["scripts/release.sh", "deb", target, str(tmp_path / "dist")], project.crate, env=env)
    result = run(["scripts/release.sh", "reproduce", target, str(tmp_path / "dist"), kind], project.crate, env=env)
    same = [line.split(":")[0] for line in result.stdout.splitlines() if line.startswith("✓ ")]
    expected = [f"✓ cco-{target}.tar.gz", f"✓ cco-{target}/cco", f"✓ cco-{target}/cco.cdx.json"]
    if target == "aarch64-unknown-linux-gnu":
        expected.append("✓ cco_0.1.0_arm64.deb")
    assert same == expected, result.stdout + result.stderr
