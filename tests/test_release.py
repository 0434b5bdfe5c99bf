"""Releases, installed the ways users install them: a release of this machine's target, made
by the release workflow's own steps (the version job, the build job's leg, the publish job
up to `gh release create`: tests/actions.py) and served over HTTPS on 127.0.0.1; its archive
and SHA256SUMS checked with sha256sum; install.sh --download, cargo-binstall and the
Homebrew formula against that server; Dependabot's configuration against its schema.

The steps run here, not under act, so the build shares the session's target directory (a
job under act starts from nothing): the whole release workflow, every job and leg, runs
under act in test_act.py, as do the CI's audit, build and minimum-Rust jobs.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import shutil
import ssl
import subprocess
import tarfile
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import actions
from cco_validate import targets
from helpers import (
    DEFAULT_ANSWERS,
    ROOT,
    Project,
    QuietHandler,
    free_port,
    git_init,
    homebrew_formula,
    render,
    run,
    tool,
)

pytestmark = pytest.mark.slow

TAG = "v0.1.0"
# .ci/run installs cargo-audit and cargo-binstall there (CCO_TOOLS moves it).
TOOLS = Path(os.environ.get("CCO_TOOLS", Path.home() / ".cache" / "cco-template" / "tools")) / "bin"


def advisory_bundle() -> Path | None:
    """The dated RustSec snapshot: CCO_ADVISORY_DB_BUNDLE, else ../shared/rustsec beside this
    checkout or beside any folder above it."""
    if named := os.environ.get("CCO_ADVISORY_DB_BUNDLE"):
        return Path(named)
    for folder in ROOT.parents:
        candidate = folder / "shared" / "rustsec" / "advisory-db.bundle"
        if candidate.is_file():
            return candidate
    return None


def find_tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(TOOLS))
    if found is None:
        pytest.skip(f"{name} is not installed: .ci/run installs it into {TOOLS} (cargo install {name})")
    return found


@dataclass
class Release:
    project: Project
    target: str
    dist: Path  # what the publish job leaves: the archives, SHA256SUMS, the formula
    server: Path  # served on 127.0.0.1: <owner>/<repository>/releases/{download/<tag>,latest/download}/
    url: str  # the repository URL the render was given
    certificate: Path  # the test authority that signed the server's certificate: clients trust it by variable

    def trusting(self, **env: str) -> dict[str, str]:
        """An environment whose curl and rustls clients trust the test server."""
        return {"CURL_CA_BUNDLE": str(self.certificate), "SSL_CERT_FILE": str(self.certificate), **env}


@pytest.fixture(scope="module")
def release(
    copie_session: Any, cargo_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    """A release of a render whose repository is on 127.0.0.1, made by the release workflow's
    own steps: the build job's leg for this machine's target, then the publish job."""
    port = free_port()
    url = f"https://127.0.0.1:{port}/acme/cco"  # HTTPS, as GitHub: cargo-binstall refuses http
    target = targets.host_target()
    project = render(copie_session, repository_url=url, license="MIT OR Apache-2.0", build_targets=[target])
    (project.root / "LICENSE-MIT").write_text("MIT License\n")
    run(["cargo", "generate-lockfile"], project.crate, env=cargo_env)  # committed, as the README says
    git_init(project.root)
    # The workflows build in the crate's target/: here that is the session's shared one.
    (project.crate / "target").symlink_to(cargo_env["CARGO_TARGET_DIR"], target_is_directory=True)
    workflow = actions.load(project.root / ".github" / "workflows" / "release.yml")
    context = {"matrix.target": target, "github.token": "unused"}
    env = {"CARGO_TERM_COLOR": "never", "GITHUB_REF_NAME": TAG}
    actions.run_job(project.root, workflow, "version", context, env)
    actions.run_job(project.root, workflow, "build", context, env)
    upload = next(step for step in actions.job_steps(workflow, "build") if "upload-artifact" in step.get("uses", ""))
    archive = project.root / actions.substitute(upload["with"]["path"], context)
    assert archive.is_file(), f"the upload step names {archive}, which the build job did not make"
    # The publish job: its download step gathers the archives into dist/ (here, already there).
    download = next(s for s in actions.job_steps(workflow, "publish") if "download-artifact" in s.get("uses", ""))
    dist = project.root / download["with"]["path"]
    assert archive.parent == dist
    ran = actions.run_job(
        project.root, {**workflow, "jobs": {"publish": without_release(workflow)}}, "publish", context, env
    )
    assert any("checksums" in command for command in ran)

    server = tmp_path_factory.mktemp("releases")
    for part in (f"acme/cco/releases/download/{TAG}", "acme/cco/releases/latest/download"):
        shutil.copytree(dist, server / part)
    handler = functools.partial(QuietHandler, directory=str(server))
    certificate, served = make_certificate(tmp_path_factory.mktemp("tls"))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(served)
    httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Release(project=project, target=target, dist=dist, server=server, url=url, certificate=certificate)
    finally:
        httpd.shutdown()


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate authority and, signed by it, the server's certificate for 127.0.0.1 with
    its key (rustls, which cargo-binstall uses, refuses a self-signed server certificate)."""

    def openssl(*arguments: str) -> None:
        run(["openssl", *arguments], folder)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=cco test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
            "-keyout", "ca.key", "-out", "ca.pem")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
            "-out", "server.csr")  # fmt: skip
    (folder / "extensions").write_text(
        "basicConstraints=critical,CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
    )
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "extensions", "-out", "server.pem")  # fmt: skip
    chain = folder / "server-and-key.pem"
    chain.write_text((folder / "server.pem").read_text() + (folder / "server.key").read_text())
    return folder / "ca.pem", chain


def without_release(workflow: dict[Any, Any]) -> dict[Any, Any]:
    """The publish job but its last step, `gh release create`, which talks to GitHub's API."""
    job = dict(workflow["jobs"]["publish"])
    last = job["steps"][-1]
    assert last["run"].startswith('gh release create "$GITHUB_REF_NAME" dist/* --verify-tag')
    job["steps"] = job["steps"][:-1]
    return job


# ---------------------------------------------------------------- the workflow's steps


def test_the_version_step_fails_naming_both_versions_when_tag_and_cargo_toml_differ(release: Release) -> None:
    result = run(["scripts/release.sh", "version", "v0.2.0"], release.project.crate, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: tag v0.2.0 does not match the crate's version: Cargo.toml says 0.1.0, so the tag must be v0.1.0 "
        '(or set version = "0.2.0" in Cargo.toml and tag again)'
    )


def test_the_archive_verifies_with_sha256sum_and_its_binary_runs(release: Release, tmp_path: Path) -> None:
    name = f"cco-{release.target}"
    assert sorted(path.name for path in release.dist.iterdir()) == ["SHA256SUMS", f"{name}.tar.gz", "cco.rb"]
    checked = run(["sha256sum", "--check", "--strict", "SHA256SUMS"], release.dist)
    assert checked.stdout == f"{name}.tar.gz: OK\n"
    with tarfile.open(release.dist / f"{name}.tar.gz") as archive:
        members = {member.name: member for member in archive.getmembers()}
        archive.extractall(tmp_path, filter="tar")
    assert sorted(members) == [name, f"{name}/LICENSE-MIT", f"{name}/README.md", f"{name}/cco"]
    assert members[f"{name}/cco"].mode == 0o755
    version = run([str(tmp_path / name / "cco"), "--version"], tmp_path).stdout
    commit = run(["git", "rev-parse", "--short", "HEAD"], release.project.root).stdout.strip()
    assert version.startswith(f"cco 0.1.0 ({commit} ")


# ---------------------------------------------------------------- install.sh --download


def install(
    release: Release, prefix: Path, *arguments: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return run(
        [str(release.project.crate / "install.sh"), "--prefix", str(prefix), *arguments],
        cwd or release.project.root,
        env=release.trusting(RELEASES_URL=f"{release.url}/releases", PATH="/usr/bin:/bin"),  # no cargo on PATH
        check=False,
    )


def test_install_sh_downloads_verifies_and_installs_the_latest_release_without_rust(
    release: Release, tmp_path: Path
) -> None:
    result = install(release, tmp_path / "latest", "--download")
    assert result.returncode == 0, result.stderr
    assert "🔐 Checksum verified (SHA256SUMS)" in result.stdout
    assert "✅ cco installed successfully!" in result.stdout
    installed = tmp_path / "latest" / "bin" / "cco"
    assert run([str(installed), "--version"], tmp_path).stdout.startswith("cco 0.1.0 (")

    # A named release, from another directory, with a relative prefix.
    result = install(release, Path("tagged"), "--tag", TAG, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "tagged" / "bin" / "cco").is_file()

    # Piped, as `curl -fsSL .../install.sh | bash -s -- --download` runs it.
    script = (release.project.crate / "install.sh").read_text()
    piped = subprocess.run(
        ["bash", "-s", "--", "--download", "--prefix", str(tmp_path / "piped")],
        input=script,
        cwd=tmp_path,
        env=release.trusting(RELEASES_URL=f"{release.url}/releases", PATH="/usr/bin:/bin", HOME=str(tmp_path)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert piped.returncode == 0, piped.stderr
    assert (tmp_path / "piped" / "bin" / "cco").is_file()


def publish(release: Release, tag: str, files: dict[str, bytes], sums: dict[str, bytes] | None = None) -> None:
    """Another release on the server: `files`, and SHA256SUMS of `sums` (default: of `files`)."""
    folder = release.server / "acme" / "cco" / "releases" / "download" / tag
    folder.mkdir(parents=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    listed = files if sums is None else sums
    (folder / "SHA256SUMS").write_text(
        "".join(f"{hashlib.sha256(content).hexdigest()}  {name}\n" for name, content in listed.items())
    )


def test_install_sh_refuses_a_corrupted_archive_and_installs_nothing(release: Release, tmp_path: Path) -> None:
    name = f"cco-{release.target}.tar.gz"
    good = (release.dist / name).read_bytes()
    publish(release, "v0.1.1", {name: good[:-10] + b"0123456789"}, sums={name: good})
    result = install(release, tmp_path / "prefix", "--tag", "v0.1.1")
    assert result.returncode == 1
    assert f"error: {name} does not match its checksum in SHA256SUMS: refusing to install it" in result.stderr
    assert "nothing was installed" in result.stderr
    assert not (tmp_path / "prefix").exists()


def test_install_sh_says_when_the_release_has_no_archive_for_this_machine(release: Release, tmp_path: Path) -> None:
    publish(release, "v0.1.2", {"cco-aarch64-apple-darwin.tar.gz": b"not for this machine"})
    result = install(release, tmp_path / "prefix", "--tag", "v0.1.2")
    assert result.returncode == 1
    assert (
        "error: the release has no archive for this machine (Linux x86_64); it has: cco-aarch64-apple-darwin.tar.gz."
        in result.stderr
    )
    assert "Build from source instead: ./install.sh in a checkout (needs Rust). Nothing was installed." in result.stderr
    assert not (tmp_path / "prefix").exists()

    missing = install(release, tmp_path / "prefix", "--tag", "v9.9.9")
    assert missing.returncode == 1
    assert (
        "could not download" in missing.stderr
        and "is there a release v9.9.9? (nothing was installed)" in missing.stderr
    )
    assert not (tmp_path / "prefix").exists()


# ---------------------------------------------------------------- cargo-binstall and Homebrew


def test_cargo_binstall_installs_the_release_archive_from_the_crates_metadata(release: Release, tmp_path: Path) -> None:
    """cargo-binstall reads [package.metadata.binstall] from the crate's Cargo.toml (here the
    local manifest instead of crates.io) and fetches the archive from the repository's releases."""
    binstall = find_tool("cargo-binstall")
    result = run(
        [
            binstall,
            "--manifest-path", str(release.project.crate),
            "--no-confirm",
            "--disable-strategies", "quick-install,compile",
            "--no-discover-github-token",
            "--root", str(tmp_path / "root"),
            "--targets", release.target,
            "cco",
        ],
        tmp_path,
        env=release.trusting(CARGO_HOME=str(tmp_path / "cargo-home"), BINSTALL_DISABLE_TELEMETRY="true"),
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    installed = tmp_path / "root" / "bin" / "cco"
    assert run([str(installed), "--version"], tmp_path).stdout.startswith("cco 0.1.0 (")


def formula(release: Release, os_name: str, cpu: str, *staged: str) -> dict[str, Any]:
    shown = homebrew_formula(release.dist / "cco.rb", os_name, cpu, *staged)
    if shown is None:
        pytest.skip("ruby is not installed (Debian package ruby; .ci/run installs it)")
    return shown


def test_the_homebrew_formula_installs_the_release_and_passes_its_own_test(release: Release, tmp_path: Path) -> None:
    host = formula(release, "linux", "intel")
    assert host["class"] == "Cco"
    assert host["version"] == "0.1.0"
    assert host["license"] == {"any_of": ["MIT", "Apache-2.0"]}
    assert host["url"] == f"{release.url}/releases/download/{TAG}/cco-{release.target}.tar.gz"
    trust = ssl.create_default_context(cafile=str(release.certificate))
    with urllib.request.urlopen(host["url"], timeout=30, context=trust) as response:  # what brew downloads
        archive = response.read()
    assert hashlib.sha256(archive).hexdigest() == host["sha256"]
    (tmp_path / "download.tar.gz").write_bytes(archive)
    with tarfile.open(tmp_path / "download.tar.gz") as opened:
        opened.extractall(tmp_path / "staged", filter="tar")
    staged = tmp_path / "staged" / f"cco-{release.target}"  # brew stages into the one folder
    installed = formula(release, "linux", "intel", str(staged), str(tmp_path / "cellar"))
    assert installed["tested"] is True
    assert os.access(tmp_path / "cellar" / "bin" / "cco", os.X_OK)
    # The release has no macOS archive: the formula says Linux only instead of a URL-less macOS.
    assert "url" not in formula(release, "macos", "arm")
    assert host["depends_on"] == ["linux"]


def test_a_description_cannot_run_ruby_in_the_formula(copie_session: Any, tmp_path: Path) -> None:
    """Ruby interpolates #{...} in double quotes: the description and URL are escaped."""
    project = render(
        copie_session, description="cco #{File.write('pwned', 'x')} #@x #$y", repository_url="https://e.x/a#{1}"
    )
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "cco-x86_64-unknown-linux-gnu.tar.gz").write_bytes(b"x")
    run(["scripts/release.sh", "checksums", str(dist)], project.crate)
    run(["scripts/release.sh", "formula", str(dist), TAG], project.crate)
    fake = Release(
        project=project, target="x86_64-unknown-linux-gnu", dist=dist, server=tmp_path, url="", certificate=tmp_path
    )
    shown = formula(fake, "linux", "intel")
    assert shown["desc"] == "cco #{File.write('pwned', 'x')} #@x #$y"
    assert shown["url"] == f"https://e.x/a#{{1}}/releases/download/{TAG}/cco-x86_64-unknown-linux-gnu.tar.gz"
    assert not (dist / "pwned").exists()


# ---------------------------------------------------------------- keeping the pipeline current


@pytest.mark.parametrize("crate_dir", ["cco", "."])
def test_dependabot_configuration_matches_its_schema_and_names_real_directories(
    copie_session: Any, crate_dir: str
) -> None:
    project = render(copie_session, crate_dir=crate_dir)
    path = project.root / ".github" / "dependabot.yml"
    run(
        [tool("check-jsonschema", "check-jsonschema"), "--builtin-schema", "vendor.dependabot", str(path)], project.root
    )
    updates = {entry["package-ecosystem"]: entry for entry in actions.load(path)["updates"]}
    assert sorted(updates) == ["cargo", "docker", "github-actions"]
    assert (project.root / updates["cargo"]["directory"].lstrip("/") / "Cargo.toml").is_file()
    assert (project.root / updates["docker"]["directory"].lstrip("/") / "Dockerfile").is_file()
    assert (project.root / ".github" / "workflows" / "build.yml").is_file()
    assert updates["github-actions"]["directory"] == "/"
    dockerfile = (project.root / updates["docker"]["directory"].lstrip("/") / "Dockerfile").read_text()
    # Dependabot updates literal FROM lines only (dependabot-core#2057: no build arguments).
    assert [line for line in dockerfile.splitlines() if line.startswith("FROM ")] == [
        f"FROM rust:{DEFAULT_ANSWERS['rust_version']}-slim-{DEFAULT_ANSWERS['debian_release']} AS builder",
        f"FROM debian:{DEFAULT_ANSWERS['debian_release']}-slim",
    ]
