"""Helpers the template's tests share: the default answers, renders, commands, git, ports.

Fixtures stay in conftest.py; this module is found through pytest's `pythonpath` setting
(pyproject.toml), as the hooks' `cco_validate` package is.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from plumbum import local

# A rendered repository and where its crate is: the hooks' own notion of it.
from cco_validate.model import WORKFLOW, find_tool
from cco_validate.model import Project as Project  # re-exported to the tests

ROOT = Path(__file__).resolve().parent.parent

# The answers --defaults gives, which are the specification's values (and, where the
# specification is wrong, the corrected ones the help texts explain).
DEFAULT_ANSWERS: dict[str, Any] = {
    "project_name": "cco",
    "crate_name": "cco",
    "description": "Claude Orchestration - Multi-agent development system",
    "repository_url": "https://github.com/brent/cc-orchestra",
    "author": "",
    "license": "none",
    "crate_dir": "cco",
    "rust_version": "1.95",
    "edition": "2021",
    "opt_level": "3",
    "lto": "fat",
    "codegen_units": 1,
    "strip": True,
    "panic": "abort",
    "size_limit_mb": 15.0,
    "proxy_port": 8888,
    "dashboard_port": 3939,
    "cache_size_mb": 200,
    "cache_ttl_hours": 48,
    "build_targets": ["x86_64-unknown-linux-gnu", "x86_64-apple-darwin", "aarch64-apple-darwin"],
    "apple_builds_on": "linux",
    "macos_deployment_target": "10.12",
    "release": True,
    "release_toolchain": "1.95.0",
    "minisign_public_key": "",
    "dependabot": True,
    "template_updates": True,
    "docker": True,
    "debian_release": "trixie",
    "image_scan": False,
    "compose": True,
    "install_dir": "/usr/local/bin",
    "app": True,
    "commit_lockfile": True,
    "validation": "full",
    # Not asked: null until the first copy records the files that were already there.
    "owned_files": None,
}


GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "cco template tests",
    "GIT_AUTHOR_EMAIL": "tests@example.invalid",
    "GIT_COMMITTER_NAME": "cco template tests",
    "GIT_COMMITTER_EMAIL": "tests@example.invalid",
}


def set_validation(level: str) -> None:
    """Sets CCO_VALIDATE for the template's tasks. Copier runs them with plumbum's copy of the
    environment, taken when plumbum was imported, so os.environ alone would not reach them."""
    os.environ["CCO_VALIDATE"] = level
    local.env["CCO_VALIDATE"] = level


@contextmanager
def validation(level: str) -> Iterator[None]:
    """CCO_VALIDATE is `level` for the template's tasks inside the block, and none again after it."""
    set_validation(level)
    try:
        yield
    finally:
        set_validation("none")


def template_files() -> list[str]:
    """The template's files as they are in the working tree: tracked, and new ones git does not ignore."""
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], ROOT).stdout
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def copy_template(destination: Path) -> Path:
    for name in template_files():
        (destination / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, destination / name)
    return destination


def workflow(project: Project) -> dict[Any, Any]:
    """The rendered GitHub workflow, parsed."""
    loaded = yaml.safe_load((project.root / WORKFLOW).read_text())
    assert isinstance(loaded, dict)
    return loaded


def run(
    command: list[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout: float = 2700,
) -> subprocess.CompletedProcess[str]:
    """Runs a command; when `check` and it fails, the assertion shows its whole output."""
    result = subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {result.returncode} in {cwd}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


def git_init(path: Path) -> None:
    """Makes `path` a git repository with one commit, as a user's new repository is."""
    run(["git", "init", "-q", "-b", "main"], path)
    commit(path, "Generated from the cco template")


def commit(project: Path, message: str) -> None:
    """Commits everything in `project`, as its owner would."""
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-q", "-m", message], project, env=GIT_IDENTITY)


def answers(project: Path) -> dict[str, Any]:
    """The project's answers file, parsed."""
    loaded = yaml.safe_load((project / ".copier-answers.yml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def render(copie: Any, **answers: Any) -> Project:
    """Renders the template with the defaults and these answers; fails the test if Copier fails."""
    result = copie.copy(extra_answers=answers)
    if result.exception is not None:
        raise AssertionError(f"render failed: {result.exception!r}")
    assert result.project_dir is not None
    return Project(root=Path(result.project_dir), answers=dict(result.answers))


def files_of(root: Path) -> dict[str, bytes]:
    """Every file below `root` (but .git), by its relative path."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".git" not in path.relative_to(root).parts
    }


def clean_env(home: Path, **variables: str) -> dict[str, str]:
    """The process environment without CCO_* settings, with a private CCO_HOME."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("CCO_")}
    return {**env, "CCO_HOME": str(home), **variables}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get_json(port: int, path: str = "/health") -> tuple[int, Any]:
    """GETs a path on loopback, returning the status and the decoded JSON body."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_for_health(port: int, seconds: float = 30) -> Any:
    """Polls /health until it answers 200, returning its JSON."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            status, body = get_json(port)
            if status == 200:
                return body
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"nothing answered /health on port {port} within {seconds} s")
        time.sleep(0.1)


VALIDATE = ROOT / "hooks" / "validate.py"
# Every target the answers can name: the host, the Apple pair (zig), arm64 Linux (qemu), musl.
CROSS = ["aarch64-apple-darwin", "x86_64-apple-darwin", "aarch64-unknown-linux-gnu", "x86_64-unknown-linux-musl"]
ALL_TARGETS = ["x86_64-unknown-linux-gnu", *CROSS]


def validate(
    project: Project, level: str, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """hooks/validate.py as a template author runs it."""
    return subprocess.run(
        [sys.executable, str(VALIDATE), str(project.root), "--level", level, *extra],
        env=validation_env(project, env),
        capture_output=True,
        text=True,
        check=False,
    )


def validation_env(project: Project, env: dict[str, str] | None) -> dict[str, str]:
    environment = {name: value for name, value in os.environ.items() if name != "CCO_VALIDATE"}
    environment["XDG_CACHE_HOME"] = str(project.root.parent / "cache")  # where a failure saves the answers
    return {**environment, **(env or {})}


def validate_through_a_pipe(
    project: Project, level: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], float]:
    """validate() through a pipe, as CI reads it, and the longest it stayed silent (seconds
    without a line on stdout, from its start to its end)."""
    command = [sys.executable, str(VALIDATE), str(project.root), "--level", level]
    process = subprocess.Popen(
        command, env=validation_env(project, env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stderr is not None
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.append(process.stderr.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    lines, last, longest = [], time.monotonic(), 0.0
    for line in process.stdout:
        now = time.monotonic()
        longest, last = max(longest, now - last), now
        lines.append(line)
    status = process.wait()
    longest = max(longest, time.monotonic() - last)
    reader.join()
    return subprocess.CompletedProcess(command, status, "".join(lines), "".join(errors)), longest


@dataclass(frozen=True)
class Validated:
    """A render fully validated once for the session (tests/conftest.py's `fully_validated`):
    its files before validation, what validation printed, and a copy of each cross target's
    binary (the shared target directory's copies are rebuilt by later renders)."""

    project: Project
    before: dict[str, bytes]
    result: subprocess.CompletedProcess[str]
    binaries: Path
    longest_silence: float  # seconds without a line through the pipe validation printed to


class Renders:
    """Renders shared by the session: one render per distinct set of answers.

    `renders(**answers)` gives the shared render, made read-only so that a test which
    writes to it fails instead of changing what later tests see; `renders.copy(into, **answers)`
    gives a writable copy of it, for tests that break or change files.
    """

    def __init__(self, copie_session: Any) -> None:
        self._copie = copie_session
        self._made: dict[str, Project] = {}

    def __call__(self, **answers: Any) -> Project:
        key = json.dumps(answers, sort_keys=True)
        if key not in self._made:
            project = render(self._copie, **answers)
            set_writable(project.root, False)
            self._made[key] = project
        return self._made[key]

    def copy(self, into: Path, **answers: Any) -> Project:
        shared = self(**answers)
        shutil.copytree(shared.root, into, symlinks=True)
        set_writable(into, True)
        return Project(root=into, answers=shared.answers)

    def close(self) -> None:
        for project in self._made.values():
            set_writable(project.root, True)  # so the session's temporary directories can be removed


def set_writable(root: Path, writable: bool) -> None:
    """Adds or removes every write permission below `root`, keeping the other bits."""
    write = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        path.chmod((mode | stat.S_IWUSR) if writable else (mode & ~write))


def cargo_build(
    project: Project,
    cargo_env: Mapping[str, str],
    keep_in: Path,
    *arguments: str,
    env: Mapping[str, str] | None = None,
) -> Path:
    """Builds the project's binary and copies it to `keep_in`.

    Renders share one target directory, so the next build of another render overwrites
    target/<profile>/<name>: a test keeps its own copy.
    """
    run(["cargo", "build", *arguments], project.crate, env={**cargo_env, **(env or {})})
    profile = "release" if "--release" in arguments else "debug"
    built = Path(cargo_env["CARGO_TARGET_DIR"]) / profile / project.name
    keep_in.mkdir(parents=True, exist_ok=True)
    kept = keep_in / project.name
    shutil.copy2(built, kept)
    return kept


# Ways to break config/orchestra-config.json, and what build.rs and the hooks both say.
BROKEN_CONFIGS: list[tuple[str, Any, str]] = [
    ("missing", None, "cannot read the orchestra configuration"),
    ("not-json", "{ not json", "not valid JSON"),
    ("no-agents", {"agents": []}, "agents must be a non-empty array"),
    (
        "agent-without-model",
        {"agents": [{"name": "a", "role": "r"}]},
        "agents[0].model must be a non-empty string",
    ),
    ("same-ports", {"server": {"proxy_port": 7000, "dashboard_port": 7000}}, "they must differ"),
    (
        "port-out-of-range",
        {"server": {"proxy_port": 70000, "dashboard_port": 2}},
        "server.proxy_port must be an integer from 1 to 65535",
    ),
    ("zero-cache", {"cache": {"size_mb": 0, "ttl_hours": 1}}, "cache.size_mb must be a positive integer"),
    (
        "upstream-not-http",
        {"server": {"proxy_port": 1, "dashboard_port": 2, "upstream": "ftp://example.com"}},
        "server.upstream must be an http:// or https:// URL",
    ),
    (
        "duplicate-agent",
        {"agents": [{"name": "a", "role": "r", "model": "m"}] * 2},
        'agents[1].name "a" is used twice',
    ),
]


def break_config(path: Path, change: Any) -> None:
    """Applies one of BROKEN_CONFIGS to the configuration at `path`."""
    if change is None:
        path.unlink()
    elif isinstance(change, str):
        path.write_text(change)
    else:
        path.write_text(json.dumps({**json.loads(path.read_text()), **change}))


def snapshot_template(destination: Path, tag: str | None = "0.1.0") -> Path:
    """This template as it is in the working tree (uncommitted changes too), committed to a new
    git repository at `destination` and tagged, as a released template would be."""
    copy_template(destination)
    run(["git", "init", "-q", "-b", "main"], destination)
    commit_template(destination, "template snapshot", tag)
    return destination


def commit_template(template: Path, message: str, tag: str | None) -> None:
    run(["git", "add", "-A"], template)
    run(["git", "commit", "-q", "--allow-empty", "-m", message], template, env=GIT_IDENTITY)
    if tag:
        run(["git", "tag", tag], template)


def copier_cli(
    *arguments: str, cwd: Path, validate: str = "none", check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Runs the copier command line as a user would, with CCO_VALIDATE set for its tasks."""
    return run([sys.executable, "-m", "copier", *arguments], cwd, env={"CCO_VALIDATE": validate}, check=check)


def tool(name: str, package: str) -> str:
    """The tool's path (found as the hooks find it), or a skip that names the package that installs it."""
    found = find_tool(name)
    if found is None:
        pytest.skip(f"{name} is not installed: pip install {package}")
    return found


# The GitHub CLI's stand-in: the one part of GitHub the workflows' scripts talk to that the
# tests replace. It records each call (and the text of a --body-file or --notes-file, which
# the scripts delete afterwards) and answers as gh does where the scripts read its output.
PODMAN_CONF = ROOT / "tests" / "podman" / "containers.conf"
# The images the default Dockerfile names, which .ci/base-images makes under those names.
RUNTIME_IMAGE = f"docker.io/library/debian:{DEFAULT_ANSWERS['debian_release']}-slim"
BUILDER_IMAGE = f"docker.io/library/rust:{DEFAULT_ANSWERS['rust_version']}-slim-{DEFAULT_ANSWERS['debian_release']}"


def podman(*arguments: str, check: bool = True, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return run(["podman", *arguments], ROOT, env={"CONTAINERS_CONF": str(PODMAN_CONF)}, check=check, timeout=timeout)


def require_podman(*images: str) -> None:
    """Skips, saying why, unless podman and each image (made by .ci/base-images) are here."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed: apt-get install podman runc (.ci/run does)")
    for image in images:
        if podman("image", "exists", image, check=False).returncode != 0:
            pytest.skip(f"{image} is missing: run .ci/base-images (no registry is reachable here)")


GH_STAND_IN = """#!{python}
import json, os, sys
arguments = sys.argv[1:]
record = {{"arguments": arguments}}
for flag, key in (("--body-file", "body"), ("--notes-file", "notes")):
    if flag in arguments:
        record[key] = open(arguments[arguments.index(flag) + 1]).read()
with open(os.environ["GH_LOG"], "a") as log:
    log.write(json.dumps(record) + "\\n")
if arguments[:2] == ["pr", "list"]:
    print(os.environ.get("GH_PR_LIST", "[]"))
elif arguments[:2] == ["pr", "create"]:
    print("https://github.com/acme/cco/pull/1")
elif arguments[:2] == ["release", "create"]:
    print("https://github.com/acme/cco-template/releases/tag/" + arguments[2])
"""


class GitHubCli:
    """A `gh` stand-in in `folder`: `env()` puts it first on PATH (with this Python's own bin/,
    for copier), `calls()` gives what it was asked since the last `calls()`."""

    def __init__(self, folder: Path) -> None:
        self.bin = folder / "gh-bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        (self.bin / "gh").write_text(GH_STAND_IN.format(python=sys.executable))
        (self.bin / "gh").chmod(0o755)
        self.log = folder / "gh.log"
        self.log.unlink(missing_ok=True)

    def env(self, **variables: str) -> dict[str, str]:
        path = f"{self.bin}:{Path(sys.executable).parent}:{os.environ['PATH']}"
        return {"PATH": path, "GH_LOG": str(self.log), **variables}

    def calls(self) -> list[dict[str, Any]]:
        calls = [json.loads(line) for line in self.log.read_text().splitlines()] if self.log.exists() else []
        self.log.unlink(missing_ok=True)
        return calls


def homebrew_formula(formula: Path, os_name: str, cpu: str, *staged: str) -> dict[str, Any] | None:
    """What Homebrew would take from `formula` for that OS and CPU, read by the stand-in of its
    DSL (tests/homebrew/formula.rb; with STAGED PREFIX it also installs and runs the formula's
    test); None when ruby is not installed."""
    ruby = shutil.which("ruby")
    if ruby is None:
        return None
    script = ROOT / "tests" / "homebrew" / "formula.rb"
    loaded = json.loads(run([ruby, str(script), str(formula), os_name, cpu, *staged], formula.parent).stdout)
    assert isinstance(loaded, dict)
    return loaded


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder (functools.partial(QuietHandler, directory=...)) without logging each request."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Signer:
    """A minisign key pair made for the test (minisign -G -W: no password, as a CI secret)."""

    public: str  # the key line, as minisign_public_key takes it
    secret: str  # the secret key file's text, as the MINISIGN_SECRET_KEY secret holds it
    key: Path

    def sign(self, path: Path, signature: Path | None = None) -> None:
        run(["minisign", "-S", "-s", str(self.key), "-m", str(path), "-x", str(signature or Path(f"{path}.sig"))],
            path.parent)  # fmt: skip


def make_signer(folder: Path) -> Signer | None:
    """A new key pair in `folder`, or None when minisign is not installed."""
    if shutil.which("minisign") is None:
        return None
    run(["minisign", "-G", "-W", "-p", "minisign.pub", "-s", "minisign.key"], folder)
    public = (folder / "minisign.pub").read_text().splitlines()[1]
    return Signer(public=public, secret=(folder / "minisign.key").read_text(), key=folder / "minisign.key")


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
