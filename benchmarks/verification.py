"""What a verifiable release costs, per target: the release build as the workflow runs it
(`scripts/release.sh build`, cargo-auditable), then, beside it, the time and size each proof
adds (the embedded dependency list, the SBOM, the .deb, the minisign signatures) and the
reproducibility result (`release.sh reproduce`: a second build from a clean copy of the
commit, in another folder with its own target directory, compared byte by byte).

The auditable build's cost is two relinks after a one-line change, one through a stand-in
for cargo-auditable that passes the command to cargo unchanged and one through the real
one: the same script and flags, without and with the dependency list.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS = Path(os.environ.get("CCO_TOOLS", Path.home() / ".cache" / "cco-template" / "tools")) / "bin"
HOST = "x86_64-unknown-linux-gnu"
# Each target and how release.sh links it: cargo build for the host and musl (as the release
# workflow does), cargo zigbuild for the Apple targets (as on Linux runners) and for arm64
# Linux, which builds natively on an arm64 runner there and needs zig's linker here.
TARGETS = {
    HOST: "build",
    "x86_64-unknown-linux-musl": "build",
    "aarch64-unknown-linux-gnu": "zigbuild",
    "x86_64-apple-darwin": "zigbuild",
    "aarch64-apple-darwin": "zigbuild",
}
DEB_TARGETS = {HOST, "aarch64-unknown-linux-gnu"}  # copier.yml's deb_targets for these answers
MACOS_MIN = {"x86_64-apple-darwin": "10.12", "aarch64-apple-darwin": "11.0"}
NOT_AUDITABLE = (
    '#!/bin/sh\n# stand-in: "cargo-auditable auditable build ..." runs "cargo build ..."\nshift\nexec cargo "$@"\n'
)

Rows = list[tuple[str, str, str]]
Run = Callable[..., subprocess.CompletedProcess[str]]


def megabytes(size: int) -> str:
    return f"{size / 1e6:.2f} MB"


def kilobytes(size: int) -> str:
    return f"{size / 1e3:.1f} kB"


def missing(sysroot: Path, target: str) -> str | None:
    if not any((sysroot / "lib" / "rustlib" / target / "lib").glob("libstd-*.rlib")):
        return "no standard library (bash .ci/cross-targets)"
    if TARGETS[target] == "zigbuild" and not shutil.which("cargo-zigbuild"):
        return "cargo-zigbuild is not installed"
    return None


def measure(work: Path, run: Run, render: Callable[..., float]) -> Rows:
    """Rows (what, command, figure) for each target this machine can build."""
    path = os.pathsep.join([str(TOOLS), str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    os.environ["PATH"] = path  # release.sh finds cargo-auditable, cargo-cyclonedx, cargo-zigbuild, zig
    for tool in ("cargo-auditable", "cargo-cyclonedx", "minisign"):
        if not shutil.which(tool):
            return [("release verification", "scripts/release.sh", f"not measured: {tool} is not installed")]
    keys = work / "keys"
    keys.mkdir()
    run(["minisign", "-G", "-W", "-p", "minisign.pub", "-s", "minisign.key"], keys)
    public = (keys / "minisign.pub").read_text().splitlines()[1]
    project = work / "verify"
    render(project, "none", data={"build_targets": list(TARGETS), "minisign_public_key": public})
    crate = project / "cco"
    run(["cargo", "generate-lockfile"], crate)
    run(["git", "init", "-q", "-b", "main"], project)
    run(["git", "add", "-A"], project)
    run(["git", "-c", "user.name=b", "-c", "user.email=b@example.invalid", "commit", "-q", "-m", "render"], project)
    stand_in = work / "not-auditable"
    stand_in.mkdir()
    (stand_in / "cargo-auditable").write_text(NOT_AUDITABLE)
    (stand_in / "cargo-auditable").chmod(0o755)
    sysroot = Path(run(["rustc", "--print", "sysroot"], ROOT).stdout.strip())
    secret = {"MINISIGN_SECRET_KEY": (keys / "minisign.key").read_text()}
    rows: Rows = []
    for target, kind in TARGETS.items():
        if reason := missing(sysroot, target):
            rows.append((f"release verification, {target}", "scripts/release.sh", f"not measured: {reason}"))
            continue
        rows += measure_target(work, crate, target, kind, run, stand_in, secret)
    return rows


def timed(run: Run, command: list[str], cwd: Path, env: Mapping[str, str]) -> float:
    started = time.monotonic()
    run(command, cwd, env)
    return time.monotonic() - started


def measure_target(
    work: Path, crate: Path, target: str, kind: str, run: Run, stand_in: Path, secret: Mapping[str, str]
) -> Rows:
    env = {"CARGO_TARGET_DIR": str(work / f"verify-target-{target}")}
    if target in MACOS_MIN:
        env["MACOSX_DEPLOYMENT_TARGET"] = MACOS_MIN[target]
    release = ["bash", "scripts/release.sh"]
    build = timed(run, [*release, "build", target, kind], crate, env)
    binary = Path(env["CARGO_TARGET_DIR"]) / target / "release" / "cco"
    size = binary.stat().st_size
    # The dependency list's cost: a relink after a one-line change without it (the stand-in),
    # then one through cargo-auditable after the line is taken out again, which leaves the
    # commit's binary for the steps below.
    main = crate / "src" / "main.rs"
    original = main.read_text()
    main.write_text(original + f"\n// one more line, {time.time_ns()}\n")
    relinks, sizes = {}, {}
    plain = {"PATH": f"{stand_in}{os.pathsep}{os.environ['PATH']}"}
    relinks["plain"] = timed(run, [*release, "build", target, kind], crate, {**env, **plain})
    sizes["plain"] = binary.stat().st_size
    main.write_text(original)
    relinks["auditable"] = timed(run, [*release, "build", target, kind], crate, env)
    sizes["auditable"] = binary.stat().st_size
    assert sizes["auditable"] == size, "the commit's binary again"
    # The SBOM's cost: packaging with cargo cyclonedx, and again with the SBOM it made given.
    dist = work / f"verify-dist-{target}"
    package = timed(run, [*release, "package", target, str(dist)], crate, env)
    archive = dist / f"cco-{target}.tar.gz"
    sbom = work / f"verify-{target}.cdx.json"
    sbom.write_text(run(["tar", "-xzOf", str(archive), f"cco-{target}/cco.cdx.json"], crate).stdout)
    given = {**env, "SBOM": str(sbom)}
    without_sbom = timed(run, [*release, "package", target, str(work / f"verify-dist-given-{target}")], crate, given)
    rows = [
        (
            f"release build, {target}",
            f"scripts/release.sh build {target} {kind}",
            f"{build:.1f} s, {megabytes(size)} (auditable, the commit's time, cargo's home remapped)",
        ),
        (
            f"cargo-auditable's dependency list, {target}",
            "the same relink without and with it",
            f"+{sizes['auditable'] - sizes['plain']} bytes, {relinks['auditable'] - relinks['plain']:+.1f} s "
            f"({relinks['auditable']:.1f} s against {relinks['plain']:.1f} s)",
        ),
        (
            f"SBOM, {target}",
            "cargo cyclonedx, in release.sh package",
            f"{package - without_sbom:+.2f} s (package {package:.2f} s, {without_sbom:.2f} s with it given), "
            f"{kilobytes(sbom.stat().st_size)} ({kilobytes(len(gzip.compress(sbom.read_bytes(), 9)))} gzipped) "
            f"in an archive of {megabytes(archive.stat().st_size)}",
        ),
    ]
    if target in DEB_TARGETS:
        deb = timed(run, [*release, "deb", target, str(dist)], crate, env)
        (made,) = dist.glob("*.deb")
        rows.append(
            (f".deb, {target}", f"scripts/release.sh deb {target}", f"{deb:.2f} s, {megabytes(made.stat().st_size)}")
        )
    run([*release, "checksums", str(dist)], crate, env)
    sign = timed(run, [*release, "sign", str(dist), "v0.1.0"], crate, {**env, **secret})
    signatures = sorted(dist.glob("*.sig"))
    rows.append(
        (
            f"minisign signatures, {target}",
            "scripts/release.sh sign: " + ", ".join(path.name.removesuffix(".sig") for path in signatures),
            f"{sign:.2f} s for {len(signatures)} files, {sum(path.stat().st_size for path in signatures)} bytes",
        )
    )
    rows.append(reproduce(crate, target, kind, dist, env))
    return rows


def reproduce(crate: Path, target: str, kind: str, dist: Path, env: Mapping[str, str]) -> tuple[str, str, str]:
    """release.sh reproduce: the figure says which files came out the same and which differ."""
    started = time.monotonic()
    result = subprocess.run(
        ["bash", "scripts/release.sh", "reproduce", target, str(dist), kind],
        cwd=crate, env={**os.environ, **env}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    lines = (result.stdout + result.stderr).splitlines()
    same = [line.removeprefix("✓ ").split(":")[0] for line in lines if line.startswith("✓ ")]
    differ = [line.removeprefix("✗ ").split(" differs")[0] for line in lines if line.startswith("✗ ")]
    if result.returncode == 0:
        verdict = f"the same bytes: {', '.join(same)}"
    else:
        verdict = f"NOT reproducible: {', '.join(differ) or (lines[-1] if lines else 'no output')}"
    command = f"scripts/release.sh reproduce {target} (another folder, target directory and time)"
    return (f"reproducible, {target}", command, f"{verdict} ({seconds:.1f} s)")
