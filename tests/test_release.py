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

import contextlib
import datetime
import functools
import gzip
import hashlib
import http.server
import json
import os
import re
import shutil
import ssl
import subprocess
import tarfile
import threading
import urllib.request
import zlib
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
    RUNTIME_IMAGE,
    Project,
    QuietHandler,
    Signer,
    free_port,
    git_init,
    homebrew_formula,
    make_certificate,
    make_signer,
    podman,
    render,
    require_podman,
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


def release_tools() -> dict[str, str]:
    """PATH with cargo-auditable and cargo-cyclonedx, which the release build and packaging
    call (skips, saying where .ci/run puts them, when they are not built)."""
    folders = {str(Path(find_tool(name)).parent) for name in ["cargo-auditable", "cargo-cyclonedx"]}
    return {"PATH": os.pathsep.join([*sorted(folders), os.environ["PATH"]])}


def require_signer(release: Release) -> Signer:
    if release.signer is None:
        pytest.skip("minisign is not installed (Debian package minisign; .ci/run installs it): the release is unsigned")
    return release.signer


@dataclass
class Release:
    project: Project
    target: str
    dist: Path  # what the publish job leaves: the archives, SHA256SUMS, the formula, the signatures
    server: Path  # served on 127.0.0.1: <owner>/<repository>/releases/{download/<tag>,latest/download}/
    url: str  # the repository URL the render was given
    certificate: Path  # the test authority that signed the server's certificate: clients trust it by variable
    signer: Signer | None  # the release's minisign key (None: minisign is not installed, the release is unsigned)
    notes: str  # the release notes' opening, as the publish job wrote them

    def trusting(self, **env: str) -> dict[str, str]:
        """An environment whose curl and rustls clients trust the test server."""
        return {"CURL_CA_BUNDLE": str(self.certificate), "SSL_CERT_FILE": str(self.certificate), **env}


# The workflow's expressions the steps here need, beside matrix.* (from the job's matrix).
def workflow_context(target: str, signer: Signer | None, tag: str = "") -> dict[str, str]:
    return {
        "matrix.target": target,
        "github.token": "unused",
        "github.event_name == 'push' && github.ref_name || ''": TAG,
        "needs.version.outputs.tag": tag,
        "secrets.MINISIGN_SECRET_KEY": signer.secret if signer else "",
        "secrets.MINISIGN_PASSWORD": "",
    }


@pytest.fixture(scope="module")
def release(
    copie_session: Any, cargo_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Release]:
    """A release of a render whose repository is on 127.0.0.1, made by the release workflow's
    own steps: the version job, the build job's leg for this machine's target (its build, its
    package and its rebuild in another directory, which must give the same bytes), the
    checksums job, then the publish job's signing and notes, with a minisign key made here."""
    port = free_port()
    url = f"https://127.0.0.1:{port}/acme/cco"  # HTTPS, as GitHub: cargo-binstall refuses http
    target = targets.host_target()
    signer = make_signer(tmp_path_factory.mktemp("minisign"))
    project = render(
        copie_session,
        repository_url=url,
        license="MIT OR Apache-2.0",
        build_targets=[target],
        minisign_public_key=signer.public if signer else "",
    )
    (project.root / "LICENSE-MIT").write_text("MIT License\n")
    run(["cargo", "generate-lockfile"], project.crate, env=cargo_env)  # committed, as the README says
    git_init(project.root)
    # The workflows build in the crate's target/: here that is the session's shared one.
    (project.crate / "target").symlink_to(cargo_env["CARGO_TARGET_DIR"], target_is_directory=True)
    workflow = actions.load(project.root / ".github" / "workflows" / "release.yml")
    runner = tmp_path_factory.mktemp("runner")
    outputs = runner / "github-output"
    env = {"CARGO_TERM_COLOR": "never", "GITHUB_REF_NAME": TAG, "GITHUB_OUTPUT": str(outputs),
           "RUNNER_TEMP": str(runner), **release_tools()}  # fmt: skip
    actions.run_job(project.root, workflow, "version", workflow_context(target, signer), env)
    assert outputs.read_text() == f"tag={TAG}\n", "the version job hands the tag to the later jobs"
    context = workflow_context(target, signer, TAG)
    actions.run_job(project.root, workflow, "build", context, env)
    upload = next(step for step in actions.job_steps(workflow, "build") if "upload-artifact" in step.get("uses", ""))
    paths = [actions.substitute(line.strip(), context) for line in upload["with"]["path"].splitlines()]
    uploaded = sorted(found for path in paths if path for found in project.root.glob(path))
    assert [path.name for path in uploaded] == [f"cco-{target}.tar.gz", deb_name(target)], "what the leg uploads"
    archive = uploaded[0]
    # The checksums and publish jobs: their download steps gather the archives into dist/
    # (here, already there).
    download = next(s for s in actions.job_steps(workflow, "publish") if "download-artifact" in s.get("uses", ""))
    dist = project.root / download["with"]["path"]
    assert archive.parent == dist
    ran = actions.run_job(project.root, workflow, "checksums", context, env)
    assert any("checksums" in command for command in ran)
    ran = actions.run_job(project.root, {**workflow, "jobs": {"publish": without_github(workflow)}}, "publish",
                          context, env)  # fmt: skip
    assert any("release.sh sign" in command for command in ran)

    server = tmp_path_factory.mktemp("releases")
    for part in (f"acme/cco/releases/download/{TAG}", "acme/cco/releases/latest/download"):
        shutil.copytree(dist, server / part)
    certificate, served = make_certificate(tmp_path_factory.mktemp("tls"))
    with serving(functools.partial(QuietHandler, directory=str(server)), served, port):
        yield Release(project=project, target=target, dist=dist, server=server, url=url, certificate=certificate,
                      signer=signer, notes=(runner / "notes.md").read_text())  # fmt: skip


@contextlib.contextmanager
def serving(handler: Any, certificate: Path | None = None, port: int = 0) -> Iterator[str]:
    """`handler` on `port` (default: a free one) of 127.0.0.1, over TLS with `certificate` (a
    chain with its key) when given; yields the server's URL and stops it afterwards."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    if certificate is not None:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(certificate)
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if certificate else 'http'}://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        thread.join()


def deb_name(target: str) -> str:
    return f"cco_0.1.0_{ {'x86_64': 'amd64', 'aarch64': 'arm64'}[target.split('-')[0]] }.deb"


def without_github(workflow: dict[Any, Any]) -> dict[Any, Any]:
    """The publish job without its `gh release` steps, which talk to GitHub's API (test_act.py
    runs them against the stand-in GitHub): create the draft, publish it."""
    job = dict(workflow["jobs"]["publish"])
    calls = [step["run"] for step in job["steps"] if step.get("run", "").startswith("gh release")]
    assert [call.split()[:3] for call in calls] == [["gh", "release", "create"], ["gh", "release", "edit"]]
    assert "--draft" in calls[0].split() and calls[1].endswith("--draft=false")
    job["steps"] = [step for step in job["steps"] if not step.get("run", "").startswith("gh release")]
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
    deb = deb_name(release.target)
    signatures = ["SHA256SUMS.sig", f"{name}.tar.gz.sig", f"{deb}.sig"] if release.signer else []
    assert sorted(path.name for path in release.dist.iterdir()) == sorted(
        ["SHA256SUMS", f"{name}.tar.gz", deb, "cco.rb", *signatures]
    )
    checked = run(["sha256sum", "--check", "--strict", "SHA256SUMS"], release.dist)
    assert checked.stdout == f"{name}.tar.gz: OK\n{deb}: OK\n"
    with tarfile.open(release.dist / f"{name}.tar.gz") as archive:
        members = {member.name: member for member in archive.getmembers()}
        archive.extractall(tmp_path, filter="tar")
    assert list(members) == [name, f"{name}/LICENSE-MIT", f"{name}/README.md", f"{name}/cco", f"{name}/cco.cdx.json"]
    assert members[f"{name}/cco"].mode == 0o755 and members[f"{name}/README.md"].mode == 0o644
    # Nothing of the machine or the moment: owner 0 without names, the commit's time.
    committed = int(run(["git", "log", "-1", "--format=%ct"], release.project.root).stdout)
    assert {(m.uid, m.gid, m.uname, m.gname, m.mtime) for m in members.values()} == {(0, 0, "", "", committed)}
    with gzip.open(release.dist / f"{name}.tar.gz") as zipped:
        zipped.read(1)
    assert (release.dist / f"{name}.tar.gz").read_bytes()[4:8] == b"\0\0\0\0", "gzip's header holds no time"
    # The commit's hash cut to 12 digits: `git rev-parse --short` depends on the clone's size.
    version = run([str(tmp_path / name / "cco"), "--version"], tmp_path).stdout
    commit = run(["git", "rev-parse", "HEAD"], release.project.root).stdout.strip()[:12]
    built = datetime.datetime.fromtimestamp(committed, datetime.UTC).strftime("%Y-%m-%d")
    assert version.startswith(f"cco 0.1.0 ({commit} {built}")


def test_a_rebuild_that_differs_is_named_file_by_file(
    release: Release, cargo_env: dict[str, str], tmp_path: Path
) -> None:
    """The build job's last step rebuilt the release in another directory and found the same
    bytes (the fixture ran it: a difference fails it). Given an archive and a .deb of another
    binary, the same step names each file that differs."""
    name = f"cco-{release.target}"
    other = tmp_path / "other"
    shutil.copy(shutil.which("true") or "/bin/true", other)  # another glibc program
    dist = tmp_path / "dist"
    for command in ["package", "deb"]:
        run(["scripts/release.sh", command, release.target, str(dist)], release.project.crate,
            env={"BINARY": str(other), **release_tools()})  # fmt: skip
    result = run(
        ["scripts/release.sh", "reproduce", release.target, str(dist)],
        release.project.crate,
        env={"REBUILD_TARGET_DIR": cargo_env["CARGO_TARGET_DIR"], "CARGO_TERM_COLOR": "never", **release_tools()},
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"✗ {name}.tar.gz differs between the two builds: sha256 " in result.stderr
    assert f"✗ {name}/cco differs between the two builds: sha256 " in result.stderr
    assert f"✗ {deb_name(release.target)} differs between the two builds: sha256 " in result.stderr
    assert f"error: the release build of {release.target} is not reproducible" in result.stderr


# ---------------------------------------------------------------- what the binary is made of


def shipped_crates(release: Release, kinds: set[str | None]) -> set[tuple[str, str]]:
    """(name, version) of each package Cargo.lock resolves for the release target, reachable
    from the crate through dependencies of `kinds` (None: normal, "build")."""
    metadata = json.loads(
        run(
            ["cargo", "metadata", "--format-version", "1", "--locked", "--filter-platform", release.target],
            release.project.crate,
        ).stdout
    )
    nodes = {node["id"]: node for node in metadata["resolve"]["nodes"]}
    packages = {package["id"]: package for package in metadata["packages"]}
    seen, queue = set(), [metadata["resolve"]["root"]]
    while queue:
        current = queue.pop()
        if current in seen:
            continue
        seen.add(current)
        for dependency in nodes[current]["deps"]:
            if any(kind["kind"] in kinds for kind in dependency["dep_kinds"]):
                queue.append(dependency["pkg"])
    return {(packages[i]["name"], packages[i]["version"]) for i in seen if i != metadata["resolve"]["root"]}


def test_the_archive_carries_a_cyclonedx_bill_of_materials_of_cargo_locks_crates(
    release: Release, tmp_path: Path
) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    name = f"cco-{release.target}"
    with tarfile.open(release.dist / f"{name}.tar.gz") as archive:
        extracted = archive.extractfile(f"{name}/cco.cdx.json")
        assert extracted is not None
        text = extracted.read().decode()
    assert JsonStrictValidator(SchemaVersion.V1_5).validate_str(text) is None, "valid CycloneDX 1.5"
    bom = json.loads(text)
    listed = {(component["name"], component["version"]) for component in bom["components"]}
    expected = shipped_crates(release, {None, "build"})
    assert listed == expected, f"only in the SBOM: {listed - expected}; only in Cargo.lock: {expected - listed}"
    assert len(listed) > 50
    assert bom["metadata"]["component"]["name"] == "cco" and bom["metadata"]["component"]["version"] == "0.1.0"
    # Nothing of the machine: the commit's time, no folder of the build.
    committed = int(run(["git", "log", "-1", "--format=%ct"], release.project.root).stdout)
    stamp = datetime.datetime.fromtimestamp(committed, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    assert bom["metadata"]["timestamp"].startswith(stamp)
    assert str(release.project.root) not in text and str(release.project.root.resolve()) not in text


def test_cargo_audit_bin_reads_the_release_binarys_dependency_list_offline(release: Release, tmp_path: Path) -> None:
    """cargo-auditable embedded the crates the binary is made of: cargo audit bin, against the
    dated RustSec snapshot with no network, reads them from the binary alone."""
    bundle = advisory_bundle()
    if bundle is None or not bundle.is_file():
        pytest.skip("the RustSec snapshot (../shared/rustsec/advisory-db.bundle) is not here")
    database = tmp_path / "advisory-db"
    run(["git", "clone", "-q", str(bundle), str(database)], tmp_path)
    name = f"cco-{release.target}"
    with tarfile.open(release.dist / f"{name}.tar.gz") as archive:
        archive.extractall(tmp_path, filter="tar")
    result = run(
        [find_tool("cargo-audit"), "audit", "--db", str(database), "--no-fetch", "--stale", "--json", "bin",
         str(tmp_path / name / "cco")], tmp_path, check=False,
    )  # fmt: skip
    report = json.loads(result.stdout)
    # The snapshot is dated: a vulnerability it lists fails the audit, and says which.
    assert result.returncode == (1 if report["vulnerabilities"]["found"] else 0), result.stderr
    # What it read is the list cargo-auditable embedded (section .dep-v0, zlib-compressed JSON):
    # the crates the SBOM lists (build dependencies marked as such) and cco itself.
    section = tmp_path / "dep-v0"
    run(["objcopy", "--dump-section", f".dep-v0={section}", str(tmp_path / name / "cco"), str(tmp_path / "copy")],
        tmp_path)  # fmt: skip
    packages = json.loads(zlib.decompress(section.read_bytes()))["packages"]
    assert report["lockfile"]["dependency-count"] == len(packages)
    embedded = {(package["name"], package["version"]) for package in packages}
    assert embedded == shipped_crates(release, {None, "build"}) | {("cco", "0.1.0")}
    # Build dependencies are marked so (so are proc-macros and what only they use: nothing of
    # them is in the binary), and a crate marked runtime is a normal dependency.
    build_only = shipped_crates(release, {None, "build"}) - shipped_crates(release, {None})
    marked = {(p["name"], p["version"]) for p in packages if p.get("kind") == "build"}
    assert build_only <= marked and embedded - marked <= shipped_crates(release, {None}) | {("cco", "0.1.0")}


# ---------------------------------------------------------------- the .deb


def test_the_deb_installs_with_dpkg_runs_and_is_removed_in_debian_slim(release: Release) -> None:
    """In the runtime image's Debian (the stand-in debian:<release>-slim, offline): dpkg
    installs the release's .deb (its libc6 dependency met), the binary on PATH prints the
    tag's version, dpkg -r leaves nothing; then apt installs it as docs/RELEASING.md says."""
    require_podman(RUNTIME_IMAGE)
    deb = deb_name(release.target)
    script = f"""set -eu
    dpkg -i /dist/{deb}
    dpkg-query -W -f '${{Package}} ${{Version}} ${{Status}}\\n' cco
    cco --version
    command -v cco
    dpkg -r cco
    if [ -e /usr/bin/cco ]; then echo "still installed"; exit 1; fi
    dpkg-query -W cco 2>&1 || true
    cd /dist && apt-get install -y -q ./{deb} >/dev/null && cco --version
    """
    shown = podman("run", "--rm", "--network=none", "-v", f"{release.dist}:/dist:ro", RUNTIME_IMAGE,
                   "sh", "-c", script).stdout.splitlines()  # fmt: skip
    lines = [line for line in shown if not line.startswith(("Selecting", "(Reading", "Preparing", "Unpacking",
                                                             "Setting up", "Removing"))]  # fmt: skip
    commit = run(["git", "rev-parse", "HEAD"], release.project.root).stdout.strip()[:12]
    assert lines[0] == f"cco {TAG[1:]} install ok installed"
    assert lines[1].startswith(f"cco {TAG[1:]} ({commit} ")
    assert lines[2] == "/usr/bin/cco"
    assert lines[3] == "dpkg-query: no packages found matching cco", "removed, with no file left to purge"
    assert lines[4].startswith(f"cco {TAG[1:]} ({commit} ")


def test_the_deb_describes_the_crate_and_is_signed_like_the_archives(release: Release, tmp_path: Path) -> None:
    deb = release.dist / deb_name(release.target)
    fields = dict(line.split(": ", 1) for line in run(["dpkg-deb", "-f", str(deb)], tmp_path).stdout.splitlines())
    binary = release.project.crate / "target" / release.target / "release" / "cco"
    needed = re.findall(r"Name: GLIBC_([0-9.]+)", run(["readelf", "-V", "-W", str(binary)], tmp_path).stdout)
    newest = max(needed, key=lambda version: [int(part) for part in version.split(".")])
    assert fields == {
        "Package": "cco",
        "Version": "0.1.0",
        "Architecture": deb.name.rsplit("_", 1)[1].removesuffix(".deb"),
        "Maintainer": f"cco maintainers <{release.url}>",
        "Installed-Size": fields["Installed-Size"],
        "Depends": f"libc6 (>= {newest})",
        "Section": "utils",
        "Priority": "optional",
        "Homepage": release.url,
        "Description": DEFAULT_ANSWERS["description"],
    }
    committed = int(run(["git", "log", "-1", "--format=%ct"], release.project.root).stdout)
    listed = run(["dpkg-deb", "--contents", str(deb)], tmp_path).stdout.splitlines()
    files = {line.split()[-1]: line.split()[:2] for line in listed}
    assert files["./usr/bin/cco"] == ["-rwxr-xr-x", "root/root"]
    assert files["./usr/share/doc/cco/copyright"] == ["-rw-r--r--", "root/root"]
    doc = "./usr/share/doc/cco/"
    assert sorted(files) == ["./", "./usr/", "./usr/bin/", "./usr/bin/cco", "./usr/share/", "./usr/share/doc/", doc,
                             f"{doc}LICENSE-MIT", f"{doc}README.md", f"{doc}copyright"]  # fmt: skip
    run(["dpkg-deb", "--extract", str(deb), str(tmp_path / "root")], tmp_path)
    assert {int(path.lstat().st_mtime) for path in (tmp_path / "root").rglob("*")} == {committed}
    copyright_text = (tmp_path / "root" / "usr" / "share" / "doc" / "cco" / "copyright").read_text()
    assert "License: MIT OR Apache-2.0\n" in copyright_text
    signer = require_signer(release)
    checked = run(["minisign", "-V", "-P", signer.public, "-m", deb.name, "-x", f"{deb.name}.sig"], release.dist)
    assert f"Trusted comment: {deb.name} {TAG}" in checked.stdout


# ---------------------------------------------------------------- install.sh --download


def install(
    release: Release, prefix: Path, *arguments: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run(
        [str(release.project.crate / "install.sh"), "--prefix", str(prefix), *arguments],
        cwd or release.project.root,
        # no cargo on PATH
        env=release.trusting(**{"RELEASES_URL": f"{release.url}/releases", "PATH": "/usr/bin:/bin", **(env or {})}),
        check=False,
    )


def test_install_sh_downloads_verifies_and_installs_the_latest_release_without_rust(
    release: Release, tmp_path: Path
) -> None:
    result = install(release, tmp_path / "latest", "--download")
    assert result.returncode == 0, result.stderr
    if release.signer:
        assert f"🔏 Signature verified (minisign, key {release.signer.public})" in result.stdout
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


def publish(release: Release, tag: str, files: dict[str, bytes], sums: dict[str, bytes] | None = None) -> Path:
    """Another release on the server: `files`, and SHA256SUMS of `sums` (default: of `files`),
    signed as the release workflow signs it when the release is signed."""
    folder = release.server / "acme" / "cco" / "releases" / "download" / tag
    folder.mkdir(parents=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    listed = files if sums is None else sums
    (folder / "SHA256SUMS").write_text(
        "".join(f"{hashlib.sha256(content).hexdigest()}  {name}\n" for name, content in listed.items())
    )
    if release.signer:
        release.signer.sign(folder / "SHA256SUMS")
    return folder


def test_install_sh_refuses_a_corrupted_archive_and_installs_nothing(release: Release, tmp_path: Path) -> None:
    name = f"cco-{release.target}.tar.gz"
    good = (release.dist / name).read_bytes()
    publish(release, "v0.1.1", {name: good[:-10] + b"0123456789"}, sums={name: good})
    result = install(release, tmp_path / "prefix", "--tag", "v0.1.1")
    assert result.returncode == 1
    assert f"error: {name} does not match its checksum in SHA256SUMS: refusing to install it" in result.stderr
    assert "nothing was installed" in result.stderr
    assert not (tmp_path / "prefix").exists()


def test_install_sh_refuses_a_bad_or_missing_signature_and_installs_nothing(release: Release, tmp_path: Path) -> None:
    signer = require_signer(release)
    name = f"cco-{release.target}.tar.gz"
    good = (release.dist / name).read_bytes()
    # Signed by another key: what a changed release, or a copy on a mirror, would carry.
    folder = publish(release, "v0.1.5", {name: good})
    stranger = make_signer(tmp_path)
    assert stranger is not None and stranger.public != signer.public
    stranger.sign(folder / "SHA256SUMS")
    result = install(release, tmp_path / "prefix", "--tag", "v0.1.5")
    assert result.returncode == 1
    assert f"error: SHA256SUMS's signature does not verify with cco's public key {signer.public}" in result.stderr
    assert "(nothing was installed)" in result.stderr and not (tmp_path / "prefix").exists()

    folder = publish(release, "v0.1.6", {name: good})
    (folder / "SHA256SUMS.sig").unlink()
    result = install(release, tmp_path / "prefix", "--tag", "v0.1.6")
    assert result.returncode == 1
    assert "SHA256SUMS.sig: cco's releases are signed, and this one has no signature; refusing" in result.stderr
    assert not (tmp_path / "prefix").exists()


def test_install_sh_without_minisign_says_it_checked_the_checksum_only(release: Release, tmp_path: Path) -> None:
    require_signer(release)
    tools = tmp_path / "bin"  # this machine's commands, but minisign and rsign
    tools.mkdir()
    for command in Path("/usr/bin").iterdir():
        if command.name not in {"minisign", "rsign"}:
            (tools / command.name).symlink_to(command)
    result = run(
        [str(release.project.crate / "install.sh"), "--prefix", str(tmp_path / "prefix"), "--download"],
        release.project.root,
        env=release.trusting(RELEASES_URL=f"{release.url}/releases", PATH=str(tools)),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (
        "⚠️  Signature not checked: neither minisign nor rsign is installed, so the archive is checked against "
        "SHA256SUMS only" in result.stdout
    )
    assert "🔐 Checksum verified (SHA256SUMS)" in result.stdout
    assert (tmp_path / "prefix" / "bin" / "cco").is_file()


def test_install_sh_checks_the_signature_with_rsign_where_minisign_is_missing(release: Release, tmp_path: Path) -> None:
    """rsign2 reads minisign's keys and signatures: install.sh takes it when minisign is not
    installed, installs a release it verifies and refuses one signed by another key."""
    signer = require_signer(release)
    tools = tmp_path / "bin"  # this machine's commands, rsign instead of minisign
    tools.mkdir()
    for program in Path("/usr/bin").iterdir():
        if program.name != "minisign":
            (tools / program.name).symlink_to(program)
    (tools / "rsign").symlink_to(find_tool("rsign"))
    env = release.trusting(RELEASES_URL=f"{release.url}/releases", PATH=str(tools))
    command = [str(release.project.crate / "install.sh"), "--prefix", str(tmp_path / "prefix"), "--download"]
    result = run(command, release.project.root, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert f"🔏 Signature verified (rsign, key {signer.public})" in result.stdout
    assert (tmp_path / "prefix" / "bin" / "cco").is_file()

    name = f"cco-{release.target}.tar.gz"
    folder = publish(release, "v0.1.7", {name: (release.dist / name).read_bytes()})
    stranger = make_signer(tmp_path)
    assert stranger is not None
    stranger.sign(folder / "SHA256SUMS")
    command = [str(release.project.crate / "install.sh"), "--prefix", str(tmp_path / "other"), "--tag", "v0.1.7"]
    result = run(command, release.project.root, env=env, check=False)
    assert result.returncode == 1
    assert f"error: SHA256SUMS's signature does not verify with cco's public key {signer.public}" in result.stderr
    assert not (tmp_path / "other").exists()


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


def test_install_sh_downloads_over_https_only_and_refuses_a_redirect_to_http(release: Release, tmp_path: Path) -> None:
    """The same release over plain HTTP is refused before any request; over HTTPS with a
    redirect to HTTP (what a changed mirror could send), curl refuses to follow it."""
    requested: list[str] = []

    class Recording(QuietHandler):
        def do_GET(self) -> None:
            requested.append(self.path)
            super().do_GET()

    (tmp_path / "tls").mkdir()
    authority, chain = make_certificate(tmp_path / "tls")
    with serving(functools.partial(Recording, directory=str(release.server))) as plain:
        result = install(release, tmp_path / "prefix", "--download", env={"RELEASES_URL": f"{plain}/acme/cco/releases"})
        assert result.returncode == 1
        assert (
            f"error: releases are downloaded over https only, and {plain}/acme/cco/releases is not https:// "
            "(RELEASES_URL?); nothing was installed" in result.stderr
        )
        assert requested == [] and not (tmp_path / "prefix").exists()

        class Redirecting(QuietHandler):
            def do_GET(self) -> None:
                self.send_response(302)
                self.send_header("Location", f"{plain}{self.path}")
                self.send_header("Content-Length", "0")
                self.end_headers()

        with serving(Redirecting, chain) as redirecting:
            env = {"RELEASES_URL": f"{redirecting}/acme/cco/releases", "CURL_CA_BUNDLE": str(authority)}
            result = install(release, tmp_path / "prefix", "--download", env=env)
        assert result.returncode == 1
        assert 'curl: (1) Protocol "http"' in result.stderr, result.stderr
        assert "could not download" in result.stderr and "(nothing was installed)" in result.stderr
        assert requested == [] and not (tmp_path / "prefix").exists()


# ---------------------------------------------------------------- cargo-binstall and Homebrew


def binstall(release: Release, root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run(
        [
            find_tool("cargo-binstall"),
            "--manifest-path", str(release.project.crate),
            "--no-confirm",
            "--disable-strategies", "quick-install,compile",
            "--no-discover-github-token",
            "--root", str(root),
            "--targets", release.target,
            *extra,
            "cco",
        ],
        root.parent,
        env=release.trusting(CARGO_HOME=str(root.parent / "cargo-home"), BINSTALL_DISABLE_TELEMETRY="true"),
        check=False,
    )  # fmt: skip


def test_cargo_binstall_installs_the_release_archive_from_the_crates_metadata(release: Release, tmp_path: Path) -> None:
    """cargo-binstall reads [package.metadata.binstall] from the crate's Cargo.toml (here the
    local manifest instead of crates.io) and fetches the archive from the repository's releases;
    with --only-signed it installs only an archive whose signature verifies with the key
    [package.metadata.binstall.signing] publishes."""
    signer = require_signer(release)
    result = binstall(release, tmp_path / "root", "--only-signed")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"cco-{release.target}.tar.gz {TAG}" in result.stdout + result.stderr, "the trusted comment is shown"
    installed = tmp_path / "root" / "bin" / "cco"
    assert run([str(installed), "--version"], tmp_path).stdout.startswith("cco 0.1.0 (")
    assert signer.public in (release.project.crate / "Cargo.toml").read_text()


@pytest.mark.parametrize("changed", ["signature", "archive"])
def test_cargo_binstall_refuses_a_changed_archive_or_signature(release: Release, tmp_path: Path, changed: str) -> None:
    require_signer(release)
    name = f"cco-{release.target}.tar.gz"
    served = release.server / "acme" / "cco" / "releases" / "download" / TAG
    kept = {path.name: path.read_bytes() for path in served.iterdir()}
    try:
        if changed == "signature":  # a valid signature, by another key
            stranger = make_signer(tmp_path)
            assert stranger is not None
            stranger.sign(served / name)
        else:  # a well-formed archive of another binary, beside the original's signature
            other = tmp_path / "other"
            other.write_bytes(kept["SHA256SUMS"])
            other.chmod(0o755)
            run(["scripts/release.sh", "package", release.target, str(tmp_path / "dist")], release.project.crate,
                env={"BINARY": str(other), **release_tools()})  # fmt: skip
            (served / name).write_bytes((tmp_path / "dist" / name).read_bytes())
        result = binstall(release, tmp_path / "root", "--only-signed")
    finally:
        for file, content in kept.items():
            (served / file).write_bytes(content)
    assert result.returncode != 0, result.stdout + result.stderr
    assert "signature" in (result.stdout + result.stderr).lower(), result.stdout + result.stderr
    assert not (tmp_path / "root" / "bin" / "cco").exists()


def test_the_release_notes_say_how_to_verify_it_and_whether_it_is_signed(release: Release) -> None:
    if release.signer:
        assert f"signed with minisign, public key `{release.signer.public}`" in release.notes
        assert f"minisign -V -P {release.signer.public} -m SHA256SUMS -x SHA256SUMS.sig" in release.notes
    else:
        assert "**This release is not signed**" in release.notes
    assert "gh attestation verify cco-<target>.tar.gz --repo acme/cco" in release.notes


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
        project=project,
        target="x86_64-unknown-linux-gnu",
        dist=dist,
        server=tmp_path,
        url="",
        certificate=tmp_path,
        signer=None,
        notes="",
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
