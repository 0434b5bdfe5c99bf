"""`python -m benchmarks`: measure the template and what it renders, side by side, on this
machine, and write docs/BENCHMARKS.md. Not a test: timings are figures to read, not to
assert, on a shared and noisy machine. `--no-suite` leaves out the template's own test suite
(the longest part); `--no-image` the container image; `--no-targets` the cross targets.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from benchmarks import ci, load, proxy, verification

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "BENCHMARKS.md"
PODMAN = ["podman"]
PODMAN_ENV = {"CONTAINERS_CONF": str(ROOT / "tests" / "podman" / "containers.conf")}
# Cargo's own release profile, as the specification's settings override it.
CARGO_DEFAULT_RELEASE = {
    "CARGO_PROFILE_RELEASE_STRIP": "false",
    "CARGO_PROFILE_RELEASE_LTO": "false",
    "CARGO_PROFILE_RELEASE_CODEGEN_UNITS": "16",
    "CARGO_PROFILE_RELEASE_PANIC": "unwind",
}


@dataclass
class Row:
    what: str
    command: str
    figure: str


def run(command: list[str], cwd: Path, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False
    )
    if result.returncode not in (0,):
        raise SystemExit(f"{' '.join(command)} failed in {cwd}:\n{result.stdout}\n{result.stderr}")
    return result


def timed(command: list[str], cwd: Path, env: Mapping[str, str] | None = None) -> float:
    started = time.monotonic()
    run(command, cwd, env)
    return time.monotonic() - started


def render(
    destination: Path,
    validation: str,
    env: Mapping[str, str] | None = None,
    data: Mapping[str, object] | None = None,
    printed: list[str] | None = None,
) -> float:
    """Seconds `copier copy` took; what its tasks printed is added to `printed`, if given."""
    shutil.rmtree(destination, ignore_errors=True)
    command = [sys.executable, "-m", "copier", "copy", "--trust", "--defaults", "--vcs-ref", "HEAD", "--quiet"]
    if data:
        answers = destination.parent / f"{destination.name}-answers.yml"
        answers.write_text(yaml.safe_dump(dict(data)))
        command += ["--data-file", str(answers)]
    started = time.monotonic()
    result = run(
        [*command, str(ROOT), str(destination)], destination.parent, {"CCO_VALIDATE": validation, **(env or {})}
    )
    if printed is not None:
        printed.append(result.stdout)
    return time.monotonic() - started


def megabytes(size: int) -> str:
    return f"{size / 1e6:.2f} MB"


def machine() -> list[str]:
    memory = next(
        (line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")), "?"
    )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    versions = [
        run(command, ROOT).stdout.strip().splitlines()[0]
        for command in (["rustc", "--version"], ["cargo", "--version"])
    ]
    podman = shutil.which("podman") and run(["podman", "--version"], ROOT).stdout.strip()
    return [
        f"- {os.cpu_count()} cores ({cpu}), {int(memory) / 1024 / 1024:.0f} GiB, {platform.platform()}",
        f"- {versions[0]}; {versions[1]}; Python {platform.python_version()}; {podman or 'no podman'}",
        '- crates come from cargo\'s local registry cache: "clean" builds compile everything, download nothing',
    ]


def benchmark_renders(work: Path, rows: list[Row]) -> dict[str, float]:
    figures = {}
    for level in ("none", "quick"):
        times = [render(work / f"render-{level}", level) for _ in range(3)]
        figures[level] = statistics.median(times)
        rows.append(
            Row(
                f"render, validation {level}",
                f"CCO_VALIDATE={level} copier copy --trust --defaults",
                f"{figures[level]:.2f} s (median of 3)",
            )
        )
    target = work / "validation-target"
    figures["full-cold"] = render(work / "render-full", "full", {"CCO_VALIDATE_TARGET_DIR": str(target)})
    figures["full-warm"] = render(work / "render-full-2", "full", {"CCO_VALIDATE_TARGET_DIR": str(target)})
    rows.append(
        Row(
            "render, validation full, first",
            "CCO_VALIDATE=full copier copy ... (empty shared target dir)",
            f"{figures['full-cold']:.1f} s",
        )
    )
    rows.append(
        Row("render, validation full, next", "the same, into another directory", f"{figures['full-warm']:.1f} s")
    )
    return figures


def commit_all(project: Path) -> None:
    run(["git", "init", "-q", "-b", "main"], project)
    run(["git", "add", "-A"], project)
    run(["git", "-c", "user.name=b", "-c", "user.email=b@example.invalid", "commit", "-q", "-m", "render"], project)


def benchmark_first_build(
    work: Path, rows: list[Row], data: Mapping[str, object] | None = None, label: str = "the default answers"
) -> dict[str, float]:
    """From `copier copy` to a built release binary, the way a new owner goes (copy with full
    validation, first commit, `make build`, `make release`), beside bare cargo builds of the
    same tree. Validation builds where the owner builds, so their builds reuse its work; what
    it builds besides (the cross targets) is the owner's `make cross-compile-macos`, not in
    the bare builds. The minutes validation announced before its builds are shown beside."""
    figures: dict[str, float] = {}
    name = "default" if data is None else "host"
    validated = work / f"first-validated-{name}"
    printed: list[str] = []
    figures["copy"] = render(validated, "full", {"CCO_VALIDATE_TARGET_DIR": ""}, data, printed)
    commit_all(validated)
    figures["make-build"] = timed(["make", "build"], validated / "cco")
    figures["make-release"] = timed(["make", "release"], validated / "cco")
    bare = work / f"first-bare-{name}"
    render(bare, "none", data=data)
    commit_all(bare)
    figures["bare-debug"] = timed(["cargo", "build"], bare / "cco")
    figures["bare-release"] = timed(["cargo", "build", "--release"], bare / "cco")
    validated_total = figures["copy"] + figures["make-build"] + figures["make-release"]
    bare_total = figures["bare-debug"] + figures["bare-release"]
    figures["ratio"] = validated_total / bare_total
    announced = re.search(r"up to about (\d+ min)", printed[0])
    rows.append(
        Row(
            f"new repository to release binary, validated ({label})",
            "copier copy (full) ; git commit ; make build ; make release",
            f"{validated_total:.1f} s (copy {figures['copy']:.1f} s, of which validation announced "
            f"{announced.group(1) if announced else 'nothing'}; then make build {figures['make-build']:.1f} s, "
            f"make release {figures['make-release']:.1f} s): {figures['ratio']:.2f}x the bare builds",
        )
    )
    rows.append(
        Row(
            f"the same tree, bare builds ({label})",
            "cargo build ; cargo build --release (empty target dir)",
            f"{bare_total:.1f} s (debug {figures['bare-debug']:.1f} s, release {figures['bare-release']:.1f} s)",
        )
    )
    return figures


FIRST_BUILD_HEADING = "## From `copier copy` to a release binary"


def first_build_section(rows: list[Row]) -> list[str]:
    about = (
        "a new owner's way from `copier copy` (full validation) to a release binary, beside bare cargo builds of the"
        " same tree, one pair after the other in one run; the default answers validate the two Apple targets too,"
        " which the bare builds do not build."
    )
    return section(FIRST_BUILD_HEADING, "--only-first-build", about, [(r.what, r.command, r.figure) for r in rows])


def benchmark_builds(work: Path, rows: list[Row]) -> dict[str, float]:
    project = work / "project"
    render(project, "none")
    run(["git", "init", "-q", "-b", "main"], project)
    run(["git", "add", "-A"], project)
    run(["git", "-c", "user.name=b", "-c", "user.email=b@example.invalid", "commit", "-q", "-m", "render"], project)
    crate = project / "cco"
    figures: dict[str, float] = {}

    def build(name: str, arguments: list[str], env: Mapping[str, str] | None = None) -> float:
        target = work / f"target-{name}"
        shutil.rmtree(target, ignore_errors=True)
        return timed(["cargo", "build", *arguments], crate, {"CARGO_TARGET_DIR": str(target), **(env or {})})

    figures["debug"] = build("debug", [])
    rows.append(Row("clean debug build", "cargo build", f"{figures['debug']:.1f} s"))
    figures["release"] = build("release", ["--release"])
    figures["size"] = (work / "target-release" / "release" / "cco").stat().st_size
    rows.append(
        Row("clean release build (specification's profile)", "cargo build --release", f"{figures['release']:.1f} s")
    )
    main = crate / "src" / "main.rs"
    main.write_text(main.read_text() + "\n// one more line\n")
    figures["incremental"] = timed(
        ["cargo", "build", "--release"], crate, {"CARGO_TARGET_DIR": str(work / "target-release")}
    )
    rows.append(
        Row(
            "incremental release build after a one-line change",
            "cargo build --release",
            f"{figures['incremental']:.1f} s",
        )
    )
    figures.update(time_passes(crate, work / "target-release"))
    rows.append(
        Row(
            "where that incremental build goes",
            "RUSTC_BOOTSTRAP=1 cargo rustc --release -- -Z time-passes",
            f"{figures['passes-total']:.1f} s in rustc: {figures['passes-fatlto']:.1f} s fat LTO, "
            f"{figures['passes-llvm']:.1f} s LLVM passes over the crate"
            if figures
            else "not measured: rustc printed no time-passes report",
        )
    )
    rows.append(Row("release binary (specification's profile)", "target/release/cco", megabytes(int(figures["size"]))))

    figures["default-time"] = build("default", ["--release"], CARGO_DEFAULT_RELEASE)
    figures["default-size"] = (work / "target-default" / "release" / "cco").stat().st_size
    rows.append(
        Row(
            "clean release build, cargo's default profile",
            "no strip, no LTO, 16 codegen units, unwind",
            f"{figures['default-time']:.1f} s, {megabytes(int(figures['default-size']))}",
        )
    )
    figures["thin-time"] = build("thin", ["--release"], {"CARGO_PROFILE_RELEASE_LTO": "thin"})
    figures["thin-size"] = (work / "target-thin" / "release" / "cco").stat().st_size
    rows.append(
        Row(
            "clean release build, thin LTO (cargo-dist's choice)",
            'the profile with lto = "thin"',
            f"{figures['thin-time']:.1f} s, {megabytes(int(figures['thin-size']))}",
        )
    )

    # Where an incremental release build's time goes, profile by profile: the image rebuild
    # cannot be faster than this.
    for name, label in (("thin", "thin LTO"), ("default", "cargo's default profile")):
        main.write_text(main.read_text() + f"\n// one more line for {name}\n")
        env = {"CARGO_TARGET_DIR": str(work / f"target-{name}")}
        env.update(CARGO_DEFAULT_RELEASE if name == "default" else {"CARGO_PROFILE_RELEASE_LTO": "thin"})
        figures[f"{name}-incremental"] = timed(["cargo", "build", "--release"], crate, env)
        rows.append(
            Row(
                f"incremental release build after a one-line change, {label}",
                "cargo build --release",
                f"{figures[f'{name}-incremental']:.1f} s",
            )
        )

    figures["cargo-test"] = timed(["cargo", "test"], crate, {"CARGO_TARGET_DIR": str(work / "target-debug")})
    rows.append(
        Row("the generated project's tests", "cargo test (after the debug build)", f"{figures['cargo-test']:.1f} s")
    )
    return figures


def benchmark_release(work: Path, rows: list[Row], builds: dict[str, float]) -> dict[str, float]:
    """scripts/release.sh on the release binary benchmark_builds made, as the release workflow
    runs it: package (tar.gz), SHA256SUMS, the Homebrew formula; the archive against the binary."""
    crate = work / "project" / "cco"
    host = next(line.split()[1] for line in run(["rustc", "-vV"], ROOT).stdout.splitlines() if line.startswith("host:"))
    # release.sh reads $CARGO_TARGET_DIR/<target>/release/cco, where `cargo build --target` puts it.
    target_dir = work / "target-package"
    (target_dir / host / "release").mkdir(parents=True)
    shutil.copy2(work / "target-release" / "release" / "cco", target_dir / host / "release" / "cco")
    env = {"CARGO_TARGET_DIR": str(target_dir)}
    dist = work / "dist"
    figures = {
        "package": timed(["scripts/release.sh", "package", host, str(dist)], crate, env),
        "checksums": timed(["scripts/release.sh", "checksums", str(dist)], crate, env),
        "formula": timed(["scripts/release.sh", "formula", str(dist), "v0.1.0"], crate, env),
    }
    figures["archive"] = (dist / f"cco-{host}.tar.gz").stat().st_size
    rows.append(
        Row(
            "release packaging (what the release workflow runs after the build)",
            "scripts/release.sh package, checksums, formula",
            f"{sum(figures[k] for k in ('package', 'checksums', 'formula')):.2f} s "
            f"(package {figures['package']:.2f} s, checksums {figures['checksums']:.2f} s, "
            f"formula {figures['formula']:.2f} s)",
        )
    )
    rows.append(
        Row(
            "release archive beside the binary",
            f"cco-{host}.tar.gz (binary, README)",
            f"{megabytes(int(figures['archive']))} against {megabytes(int(builds['size']))} "
            f"({figures['archive'] / builds['size']:.0%})",
        )
    )
    return figures


def time_passes(crate: Path, target: Path) -> dict[str, float]:
    """rustc's own account of an incremental release build after a one-line change: how much
    is the fat-LTO link (RUSTC_BOOTSTRAP unlocks -Z on the stable compiler, for this report only)."""
    main = crate / "src" / "main.rs"
    main.write_text(main.read_text() + "\n// one more line for time-passes\n")
    result = run(
        ["cargo", "rustc", "--release", "--bin", crate.name, "--", "-Z", "time-passes"],
        crate,
        {"CARGO_TARGET_DIR": str(target), "RUSTC_BOOTSTRAP": "1"},
    )
    passes = {}
    for line in result.stderr.splitlines():
        fields = line.split()
        if line.startswith("time:") and len(fields) >= 2:
            passes[fields[-1]] = float(fields[1].rstrip(";"))
    if not {"total", "LLVM_fatlto", "LLVM_passes"} <= passes.keys():
        return {}
    return {
        "passes-total": passes["total"],
        "passes-fatlto": passes["LLVM_fatlto"],
        "passes-llvm": passes["LLVM_passes"],
    }


CROSS_TARGETS = [
    "aarch64-apple-darwin",
    "x86_64-apple-darwin",
    "aarch64-unknown-linux-gnu",
    "x86_64-unknown-linux-musl",
]


def benchmark_targets(work: Path, rows: list[Row], builds: dict[str, float]) -> None:
    """Each cross target's clean release build (cargo-zigbuild, as validation and
    `make cross-compile-macos` on Linux build it) beside the host's, and the one-time cost of a
    target's standard library (.ci/cross-targets into a scratch folder)."""
    crate = work / "project" / "cco"
    sysroot = Path(run(["rustc", "--print", "sysroot"], ROOT).stdout.strip())
    bin_dir = str(Path(sys.executable).parent)
    path = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    if not shutil.which("cargo-zigbuild", path=path):
        rows.append(Row("cross targets", "cargo zigbuild", "not measured: cargo-zigbuild is not installed"))
        return
    for target in CROSS_TARGETS:
        if not any((sysroot / "lib" / "rustlib" / target / "lib").glob("libstd-*.rlib")):
            rows.append(Row(f"clean release build, {target}", "cargo zigbuild", "not measured: no standard library"))
            continue
        directory = work / f"target-{target}"
        env = {"CARGO_TARGET_DIR": str(directory), "PATH": path}
        if target.endswith("apple-darwin"):
            env["MACOSX_DEPLOYMENT_TARGET"] = "11.0" if target.startswith("aarch64") else "10.12"
        seconds = timed(["cargo", "zigbuild", "--release", "--target", target], crate, env)
        size = (directory / target / "release" / "cco").stat().st_size
        rows.append(
            Row(
                f"clean release build, {target}",
                f"cargo zigbuild --release --target {target}",
                f"{seconds:.1f} s ({seconds / builds['release']:.2f}x the host's {builds['release']:.1f} s), "
                f"{megabytes(size)}",
            )
        )
    scratch = work / "rustlib"
    scratch.mkdir()
    seconds = timed(
        ["bash", str(ROOT / ".ci" / "cross-targets")],
        ROOT,
        {"CCO_CROSS_TARGETS": "aarch64-apple-darwin", "CCO_CROSS_RUSTLIB": str(scratch)},
    )
    rows.append(
        Row(
            "a target's standard library, once per compiler version",
            "CCO_CROSS_TARGETS=aarch64-apple-darwin bash .ci/cross-targets",
            f"{seconds:.1f} s" if (scratch / "aarch64-apple-darwin").is_dir() else "not measured: no matching rust-src",
        )
    )


def benchmark_image(work: Path, rows: list[Row]) -> dict[str, float]:
    if shutil.which("podman") is None:
        rows.append(Row("container image", "podman build", "skipped: podman is not installed"))
        return {}
    defaults = yaml.safe_load((ROOT / "copier.yml").read_text())
    release, rust = defaults["debian_release"]["default"], defaults["rust_version"]["default"]
    runtime = f"docker.io/library/debian:{release}-slim"
    exists = subprocess.run(
        [*PODMAN, "image", "exists", f"docker.io/library/rust:{rust}-slim-{release}"],
        env={**os.environ, **PODMAN_ENV},
        check=False,
    )
    if exists.returncode != 0:
        rows.append(Row("container image", "podman build", "skipped: no base images (run .ci/base-images)"))
        return {}
    project = work / "image-project"
    render(project, "none")
    run(["cargo", "generate-lockfile"], project / "cco")  # the owner commits it; the build is --locked
    tag = "localhost/cco-benchmark:latest"
    build = [
        *PODMAN,
        "build",
        "--pull=never",
        "--network=host",
        "--format",
        "docker",
        "-f",
        "cco/Dockerfile",
        "-t",
        tag,
        ".",
    ]
    figures = {"cold": timed([*build[:2], "--no-cache", *build[2:]], project, PODMAN_ENV)}
    # --no-cache leaves no layers for later builds to reuse: build once more, unchanged, so the
    # rebuild below finds the cache a developer's previous build would have left.
    run(build, project, PODMAN_ENV)
    main = project / "cco" / "src" / "main.rs"
    # A line no earlier run wrote: a change the layer cache cannot have seen.
    main.write_text(main.read_text() + f"\n// one more line, {time.time_ns()}\n")
    figures["rebuild"] = timed(build, project, PODMAN_ENV)
    size = int(run([*PODMAN, "image", "inspect", "--format", "{{.Size}}", tag], ROOT, PODMAN_ENV).stdout)
    base = int(
        run(
            [*PODMAN, "image", "inspect", "--format", "{{.Size}}", runtime],
            ROOT,
            PODMAN_ENV,
        ).stdout
    )
    figures["size"], figures["added"] = size, size - base
    rows.append(Row("image, cold build", "podman build --no-cache (Dockerfile unchanged)", f"{figures['cold']:.1f} s"))
    rows.append(
        Row(
            "image, rebuild after a one-line change",
            "podman build",
            f"{figures['rebuild']:.1f} s ({figures['cold'] / figures['rebuild']:.1f}x faster)",
        )
    )
    rows.append(
        Row(
            "image size",
            "podman image inspect",
            f"{megabytes(size)}, of which {megabytes(size - base)} on top of debian:{release}-slim",
        )
    )
    subprocess.run([*PODMAN, "rmi", "-f", tag], env={**os.environ, **PODMAN_ENV}, capture_output=True, check=False)
    return figures


def benchmark_act(rows: list[Row]) -> None:
    """What act adds: its runner image, made once per toolchain (into a scratch tag, removed
    after), and the time of tests/test_act.py (every workflow under act)."""
    podman_env = {"CONTAINERS_CONF": str(ROOT / "tests" / "podman" / "containers.conf")}
    if not shutil.which("podman"):
        rows.append(Row("act's runner image", ".ci/base-images runner", "not measured: podman is not installed"))
        return
    scratch = "localhost/cco-benchmarks/act-runner:scratch"
    seconds = timed(["bash", str(ROOT / ".ci" / "base-images"), "runner"], ROOT, {"CCO_RUNNER_IMAGE": scratch})
    run(["podman", "rmi", "-f", scratch], ROOT, podman_env)
    rows.append(Row("act's runner image, once per toolchain", "bash .ci/base-images runner", f"{seconds:.1f} s"))
    python = Path(sys.executable)
    seconds = timed([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_act.py"], ROOT)
    rows.append(Row("the workflows under act", "pytest tests/test_act.py", f"{seconds:.1f} s"))


def benchmark_suite(rows: list[Row]) -> dict[str, float]:
    python = Path(sys.executable)  # the interpreter running the benchmarks has the test extra
    pytest = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    figures = {
        "fast": timed([*pytest, "-m", "not slow"], ROOT),
        "fast-parallel": timed([*pytest, "-m", "not slow", "-n", "auto"], ROOT),
        "slow": timed([*pytest, "-m", "slow"], ROOT),
    }
    rows.append(Row("the template's fast tests", "pytest -m 'not slow'", f"{figures['fast']:.1f} s"))
    rows.append(
        Row(
            "the template's fast tests, on every core",
            f"pytest -m 'not slow' -n auto ({os.cpu_count()} workers)",
            f"{figures['fast-parallel']:.1f} s",
        )
    )
    rows.append(Row("the template's slow tests", "pytest -m slow (warm .test-target/)", f"{figures['slow']:.1f} s"))
    return figures


def verdict(value: float | None, limit: float, unit: str, lower_is_better: bool = True) -> str:
    if value is None:
        return "not measured"
    met = value <= limit if lower_is_better else value >= limit
    return f"{'met' if met else 'missed'} ({value:.2f} {unit} against {limit:g} {unit})"


VERIFICATION = "## What a verifiable release costs, per target"
PROXY = "## The proxy and its cache"


def section(heading: str, flag: str, about: str, rows: list[tuple[str, str, str]]) -> list[str]:
    return [
        heading,
        "",
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} (`python -m benchmarks {flag}`"
        f" refreshes this section alone): {about}",
        "",
        "| what | command | figure |",
        "| --- | --- | --- |",
        *(f"| {what} | `{command}` | {figure} |" for what, command, figure in rows),
        "",
    ]


def verification_section(rows: list[tuple[str, str, str]]) -> list[str]:
    about = (
        "every target of the answers, built as the release workflow builds it, then each proof it adds, and the"
        " rebuild that checks it is reproducible."
    )
    return section(VERIFICATION, "--only-verification", about, rows)


def proxy_section(rows: list[tuple[str, str, str]]) -> list[str]:
    about = (
        "the default render's release binary serving the stand-in Messages API of tests/upstream.py on 127.0.0.1"
        " (benchmarks/proxy.py)."
    )
    return section(PROXY, "--only-proxy", about, rows)


def replace_section(text: str, section: list[str]) -> str:
    """`text` with the section of `section`'s heading replaced by it (added before the notes
    when it has none)."""
    lines = text.splitlines()
    if section[0] in lines:
        start = lines.index(section[0])
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    else:
        start = end = next((i for i, line in enumerate(lines) if line.startswith("## Analysis")), len(lines))
    return "\n".join([*lines[:start], *section, *lines[end:]]) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-suite", action="store_true", help="do not time the template's own test suite")
    parser.add_argument("--no-image", action="store_true", help="do not build the container image")
    parser.add_argument("--no-targets", action="store_true", help="do not build the cross targets")
    parser.add_argument("--no-act", action="store_true", help="do not run the workflows under act")
    parser.add_argument("--no-verification", action="store_true", help="do not measure the release's proofs per target")
    parser.add_argument(
        "--only-verification",
        action="store_true",
        help=f"measure only the release's proofs per target and replace that section of {OUTPUT.name}",
    )
    parser.add_argument(
        "--only-proxy",
        action="store_true",
        help=f"measure only the proxy and its cache (a default render's release build) and replace that section of "
        f"{OUTPUT.name}",
    )
    parser.add_argument(
        "--only-first-build",
        action="store_true",
        help=f"measure only the way from copier copy to a release binary and replace that section of {OUTPUT.name}",
    )
    parser.add_argument(
        "--ci-log",
        nargs="+",
        type=Path,
        metavar="LOG",
        help="print what each logged run of `bash .ci/run` cost (lanes, slowest tests), and measure nothing",
    )
    arguments = parser.parse_args()
    if arguments.ci_log:
        print("\n".join(ci.markdown([ci.read(log) for log in arguments.ci_log])))
        return 0
    if arguments.only_first_build:
        first_rows: list[Row] = []
        with tempfile.TemporaryDirectory(prefix="cco-benchmarks-") as scratch:
            benchmark_first_build(Path(scratch), first_rows)
            host_only = {"build_targets": ["x86_64-unknown-linux-gnu"]}
            benchmark_first_build(Path(scratch), first_rows, host_only, "the host target only")
        section = first_build_section(first_rows)
        OUTPUT.write_text(replace_section(OUTPUT.read_text(), section))
        print("\n".join(section))
        return 0
    if arguments.only_proxy:
        with tempfile.TemporaryDirectory(prefix="cco-benchmarks-") as scratch:
            work = Path(scratch)
            render(work / "proxy", "none")
            run(["cargo", "build", "--release"], work / "proxy" / "cco")
            measured = proxy.measure(work / "proxy" / "cco" / "target" / "release" / "cco", work)
        OUTPUT.write_text(replace_section(OUTPUT.read_text(), proxy_section(measured)))
        print("\n".join(proxy_section(measured)))
        return 0
    if arguments.only_verification:
        with tempfile.TemporaryDirectory(prefix="cco-benchmarks-") as scratch:
            section = verification_section(verification.measure(Path(scratch), run, render))
        OUTPUT.write_text(replace_section(OUTPUT.read_text(), section))
        print("\n".join(section))
        return 0
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="cco-benchmarks-") as scratch:
        work = Path(scratch)
        renders = benchmark_renders(work, rows)
        first = benchmark_first_build(work, rows)
        binary = work / "first-validated-default" / "cco" / "target" / "release" / "cco"
        rows.extend(Row(*row) for row in load.measure(binary, work))
        proxied = proxy.measure(binary, work)
        builds = benchmark_builds(work, rows)
        benchmark_release(work, rows, builds)
        if not arguments.no_targets:
            benchmark_targets(work, rows, builds)
        image = {} if arguments.no_image else benchmark_image(work, rows)
        proofs = [] if arguments.no_verification else verification.measure(work, run, render)
    if not arguments.no_act:
        benchmark_act(rows)
    suite = {} if arguments.no_suite else benchmark_suite(rows)

    targets = [
        ("release binary <= 5 MB (the specification: 15 MB)", verdict(builds["size"] / 1e6, 5, "MB")),
        ("clean release build <= 5 min", verdict(builds["release"] / 60, 5, "min")),
        ("clean debug build <= 1 min", verdict(builds["debug"] / 60, 1, "min")),
        ("incremental release rebuild <= 1 min", verdict(builds["incremental"] / 60, 1, "min")),
        ("what the image adds to its base <= 20 MB", verdict(image["added"] / 1e6 if image else None, 20, "MB")),
        (
            "image rebuild >= 5x faster than cold",
            verdict(image["cold"] / image["rebuild"] if image else None, 5, "x", False),
        ),
        ("quick validation <= 10 s (render included)", verdict(renders["quick"], 10, "s")),
        ("render without validation <= 2 s", verdict(renders["none"], 2, "s")),
        (
            "copy to release binary within 1.15x of bare cargo builds (validation's builds reused)",
            verdict(
                (first["copy"] + first["make-build"] + first["make-release"])
                / (first["bare-debug"] + first["bare-release"]),
                1.15,
                "x",
            ),
        ),
        ("the template's fast tests <= 30 s, one process", verdict(suite.get("fast"), 30, "s")),
        ("the template's fast tests <= 30 s, `-n auto`", verdict(suite.get("fast-parallel"), 30, "s")),
    ]
    ratios = [
        f"- size: the specification's profile makes the binary "
        f"{builds['default-size'] / builds['size']:.1f}x smaller than cargo's default "
        f"({megabytes(int(builds['size']))} against {megabytes(int(builds['default-size']))}) and "
        f"{builds['thin-size'] / builds['size']:.2f}x smaller than thin LTO ({megabytes(int(builds['thin-size']))}).",
        f"- clean release build time: {builds['release'] / builds['default-time']:.2f}x cargo's default "
        f"({builds['release']:.0f} s against {builds['default-time']:.0f} s), "
        f"{builds['release'] / builds['thin-time']:.2f}x thin LTO ({builds['thin-time']:.0f} s).",
    ]
    lines = [
        "# Benchmarks",
        "",
        f"Written by `python -m benchmarks` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "One run on a shared machine: figures to compare side by side, not to assert. Run it again to refresh.",
        "",
        "## Machine",
        "",
        *machine(),
        "",
        "## Figures",
        "",
        "| what | command | figure |",
        "| --- | --- | --- |",
        *(f"| {row.what} | `{row.command}` | {row.figure} |" for row in rows),
        "",
        "## Targets",
        "",
        "| target | result |",
        "| --- | --- |",
        *(f"| {name} | {result} |" for name, result in targets),
        "",
        "## What the release profile buys",
        "",
        *ratios,
        "",
        *proxy_section(proxied),
        *(verification_section(proofs) if proofs else []),
    ]
    notes = ROOT / "benchmarks" / "NOTES.md"
    if notes.exists():
        lines += [notes.read_text().strip(), ""]
    OUTPUT.write_text("\n".join(lines))
    print(OUTPUT.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
