"""The generated workflows under a real Actions engine: act 0.2.89 (tests/act.py; the
stand-ins it runs with, and how each differs from GitHub, are in tests/act/README.md).

For every answer set the template's own CI renders (.ci/answers), each event a workflow
answers is run dry (`act -n`: act evaluates `if:`, `needs` and the matrix, runs no step)
and the jobs that would run are the ones they should be. Then for real, every job on an
ubuntu-latest runner to the end: the default render's build.yml on a push to main, and
after it a pull request, workflow_dispatch and the schedule, which start from main's caches
as on GitHub; release.yml for a version tag and for a tag that does not match Cargo.toml;
template-update.yml by hand (from another branch) and on its schedule; minimal's test job;
and, with CCO_ACT_EVERY_SET=1, each other answer set's push. What act does not evaluate
(`on:` filters, concurrency, permissions) is checked as data in test_workflows.py; what
cannot run here at all (macOS and arm64 runners, the image scan's Docker daemon) is said
where it is skipped.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
import urllib.parse
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import copier
import pytest
import yaml
from plumbum import local

from act import REPOSITORY, TOKEN, Act, Run
from cco_validate import targets
from helpers import GIT_IDENTITY, ROOT, Project, commit, git_init, render, run
from test_release import TOOLS, advisory_bundle
from test_template_update import RECORD_ENVIRONMENT, released_template

pytestmark = pytest.mark.slow

ACT = ROOT / "tests" / "act"
ANSWER_SETS = {
    path.stem: yaml.safe_load(path.read_text()) or {} for path in sorted((ROOT / ".ci" / "answers").glob("*.yml"))
}
TAG = "v0.1.0"
PULL_REQUEST: dict[str, Any] = {
    "number": 7,
    "pull_request": {"number": 7, "base": {"ref": "main"}, "head": {"ref": "feature"}},
}
EVENTS: dict[str, dict[str, dict[str, Any]]] = {
    "build.yml": {
        "push": {"ref": "refs/heads/main"},
        "pull_request": PULL_REQUEST,
        "schedule": {"schedule": "17 6 * * *"},
        "workflow_dispatch": {"inputs": {}},
    },
    "release.yml": {"push": {"ref": f"refs/tags/{TAG}"}, "pull_request": PULL_REQUEST},
    "template-update.yml": {"schedule": {"schedule": "41 5 * * 1"}, "workflow_dispatch": {"inputs": {}}},
}


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Act]:
    engine = Act(tmp_path_factory.mktemp("act"))
    for name in ["cargo-audit", "cargo-auditable", "cargo-cyclonedx", "cargo-deny"]:
        if (TOOLS / name).is_file():
            engine.tool(TOOLS / name)
    bundle = advisory_bundle()
    engine.advisory_date = engine.advisory_db(bundle) if bundle is not None and bundle.is_file() else None
    yield engine
    engine.close()


def expected_jobs(project: Project, workflow: str, event: str, real: bool = False) -> dict[str, str]:
    """The jobs GitHub runs for `event`, as act reports them. A dry run gives every runner
    label the runner image, so every job is reported; in a real run (`real`) a job on any
    runner but ubuntu-latest (macOS, arm64 Linux) is "skipped": act has only that image."""
    answers = project.answers
    parsed = yaml.safe_load((project.root / ".github" / "workflows" / workflow).read_text())

    def result(runner: str) -> str:
        return "skipped" if real and runner != "ubuntu-latest" else "success"

    def legs(job: str) -> dict[str, str]:
        entries = parsed["jobs"][job]["strategy"]["matrix"]["include"]
        return {f"{job} ({entry['target']})": result(entry["os"]) for entry in entries}

    if workflow == "template-update.yml":
        # publish runs only when update's output `changed` says so: a dry run sets no
        # outputs, so act leaves it out; the real runs below prove that it runs.
        return {"update": "success", "publish": "success"} if real else {"update": "success"}
    if workflow == "release.yml":
        # A pull request runs the dry run: everything but the publish job.
        jobs = {"version": "success", **legs("build"), "checksums": "success"}
        if event == "push":
            jobs["publish"] = "success"
        if "universal" in parsed["jobs"]:
            jobs["universal"] = result(parsed["jobs"]["universal"]["runs-on"])
        return jobs
    if event == "schedule":
        return {"audit": "success"}  # every day: the audit alone
    jobs = {"test": "success", "audit": "success", "msrv": "success", **legs("build")}
    if "run-macos" in parsed["jobs"]:
        jobs.update(legs("run-macos"))
    if answers.get("docker") and answers.get("image_scan"):
        jobs["image-scan"] = "success"
    return jobs


# A release profile that builds about three times faster (no LTO, 16 codegen units) where an
# answer set leaves the profile at its default: the workflows do not depend on it, and the
# default profile's builds are proven by the hooks' full validation (test_hooks.py).
QUICKER_PROFILE = {"lto": "off", "codegen_units": 16}


def repository_of(answers: str) -> str:
    """Each answer set is its own repository on the stand-in GitHub (its caches its own)."""
    return REPOSITORY if answers == "default" else f"acme/cco-{answers}"


@pytest.fixture(scope="module")
def answer_set_projects(copie_session: Any) -> dict[str, Project]:
    projects = {}
    for name, answers in ANSWER_SETS.items():
        if name == "default":
            continue  # the default render is `default_repository`, below
        project = render(copie_session, **{**QUICKER_PROFILE, **answers})
        if answers.get("commit_lockfile", True):
            run(["cargo", "generate-lockfile"], project.crate)  # committed, as the README says
        git_init(project.root)
        Act.remote(project.root, repository_of(name))
        projects[name] = project
    return projects


@pytest.fixture(scope="module")
def default_repository(copie_session: Any) -> Project:
    project = render(copie_session, **QUICKER_PROFILE)
    run(["cargo", "generate-lockfile"], project.crate)  # committed, as the README says
    git_init(project.root)
    Act.remote(project.root)
    return project


@pytest.fixture(scope="module")
def answer_sets(answer_set_projects: dict[str, Project], default_repository: Project) -> dict[str, Project]:
    return {**answer_set_projects, "default": default_repository}


DRY_CASES = [
    (name, workflow, event)
    for name, answers in ANSWER_SETS.items()
    for workflow, events in EVENTS.items()
    for event in events
    if (workflow != "release.yml" or answers.get("release", True))
    and (workflow != "template-update.yml" or answers.get("template_updates", True))
]


@pytest.fixture(scope="module")
def dry_runs(engine: Act, answer_sets: dict[str, Project]) -> dict[tuple[str, str, str], Run]:
    """Every (answer set, workflow, event), run dry: about a second each."""
    runs = {}
    for answers, workflow, event in DRY_CASES:
        project, payload = answer_sets[answers].root, EVENTS[workflow][event]
        runs[(answers, workflow, event)] = engine.run(
            project, workflow, event, payload, dry=True, repository=repository_of(answers)
        )
    return runs


@pytest.mark.parametrize(("answers", "workflow", "event"), DRY_CASES, ids=["-".join(case) for case in DRY_CASES])
def test_each_event_runs_the_jobs_it_should(
    dry_runs: dict[tuple[str, str, str], Run],
    answer_sets: dict[str, Project],
    answers: str,
    workflow: str,
    event: str,
) -> None:
    ran = dry_runs[(answers, workflow, event)]
    assert ran.returncode == 0, ran.output()[-3000:]
    assert ran.ran() == expected_jobs(answer_sets[answers], workflow, event)


@pytest.mark.parametrize("answers", ANSWER_SETS)
def test_each_build_leg_runs_the_steps_its_runner_needs(
    dry_runs: dict[tuple[str, str, str], Run], answer_sets: dict[str, Project], answers: str
) -> None:
    """The steps act evaluates as running (their `if:` held) in each leg of the build job,
    macOS legs included: those cannot run here, but what they would run is checked."""
    project = answer_sets[answers]
    ran = dry_runs[(answers, "build.yml", "push")]
    for target in project.answers["build_targets"]:
        steps = [step.split("@")[0] for step in ran.steps("build", target)]
        zig = target.endswith("apple-darwin") and project.answers.get("apple_builds_on", "linux") == "linux"
        build = "Build the release binary, linked by zig" if zig else "Build the release binary"
        wanted = [
            "actions/checkout",
            "Install the stable toolchain for the target",
            *(["Install zig and cargo-zigbuild (they link the Apple targets on Linux)"] if zig else []),
            *(["Install musl-tools"] if target.endswith("-musl") else []),
            *([] if project.answers.get("commit_lockfile", True) else ["Resolve the dependencies"]),
            "actions/cache",
            build,
            *(["Strip symbols"] if project.answers.get("strip", True) and not zig else []),
            "actions/upload-artifact",
        ]
        assert steps == wanted, target


# ---------------------------------------------------------------- build.yml, for real


def needs_audit_tool() -> None:
    for name in ("cargo-audit", "cargo-deny"):
        if not (TOOLS / name).is_file():
            pytest.skip(f"{name} is not built: .ci/run builds it into {TOOLS}")


def short_commit(project: Project) -> str:
    return run(["git", "rev-parse", "--short", "HEAD"], project.root).stdout.strip()


def check_artifacts(engine: Act, project: Project, repository: str, targets_run: list[str]) -> None:
    """The binaries the build legs uploaded, read back and checked as full validation checks a
    target's binary (format, architecture, minimum macOS, libraries, signature, symbols, size;
    `--version` where it runs here). Uploads keep no file mode, as GitHub's zip does not."""
    (artifacts,) = engine.runs(repository).iterdir()
    crate = project.answers["crate_name"]
    for target in targets_run:
        binary = artifacts / f"{crate}-{target}" / crate
        assert binary.is_file(), f"no artifact {crate}-{target} with the binary: {sorted(os.listdir(artifacts))}"
        assert binary.stat().st_mode & 0o111 == 0
        binary.chmod(0o755)
        problems, _ = targets.inspect(project, target, binary, short_commit(project))
        assert not problems, f"{target}: {problems}"


def cache_keys(ran: Run, job: str, verb: str) -> list[str]:
    """The keys the cache stand-in reported for `job` ("key" asked, "restored", "saved")."""
    pattern = {"key": r"Cache key: (\S+)", "restored": r"Cache restored from key: (\S+)",
               "saved": r"Cache saved with key: (\S+)"}[verb]  # fmt: skip
    return re.findall(pattern, ran.output(job))


@pytest.fixture(scope="module")
def push_run(engine: Act, default_repository: Project) -> Run:
    needs_audit_tool()
    return engine.run(default_repository.root, "build.yml", "push", EVENTS["build.yml"]["push"])


def test_a_push_to_main_runs_every_linux_job_to_the_end(
    engine: Act, push_run: Run, default_repository: Project
) -> None:
    assert push_run.ran() == expected_jobs(default_repository, "build.yml", "push", real=True), push_run.output()[
        -5000:
    ]
    assert push_run.returncode == 0
    assert "Scanning Cargo.lock for vulnerabilities" in push_run.output("audit")
    # cargo-deny fetched the database from the stand-in GitHub and checked deny.toml's policy.
    assert "advisories ok, bans ok, licenses ok, sources ok" in push_run.output("audit")
    warnings.warn(
        f"the audit job ran against the RustSec snapshot of {engine.advisory_date}, not today's database", stacklevel=1
    )


def test_the_build_legs_upload_each_targets_binary(engine: Act, push_run: Run, default_repository: Project) -> None:
    check_artifacts(engine, default_repository, REPOSITORY, default_repository.answers["build_targets"])


def test_the_caches_are_saved_under_keys_that_follow_rust_and_the_lockfile(engine: Act, push_run: Run) -> None:
    """Each job that caches asks for a key with the Rust version and the lock file's hash, and
    after the push the repository's caches hold an entry under each: saved by this push, or by
    an earlier session's when .ci/run keeps them (CCO_ACT_CACHES), which this push restored as
    GitHub's second push restores the first's."""
    version = run(["rustc", "--version"], ROOT).stdout.split()[1]
    asked = {key for job in ("test", "msrv", "build") for key in cache_keys(push_run, job, "key")}
    assert len(asked) >= 3, push_run.output()[-5000:]
    for key in asked:
        assert f"-{version}-" in key and len(key.rsplit("-", 1)[1]) == 64, key
    store = engine.github / f"{REPOSITORY}.caches"
    stored = {urllib.parse.unquote(path.name.removesuffix(".tzst")) for path in store.rglob("*.tzst")}
    assert asked <= stored
    restored = {key for job in ("test", "msrv", "build") for key in cache_keys(push_run, job, "restored")}
    saved = {key for job in ("test", "msrv", "build") for key in cache_keys(push_run, job, "saved")}
    assert asked == (restored & asked) | saved, "every key is restored exactly or saved"


@pytest.fixture(scope="module")
def later_runs(engine: Act, push_run: Run, default_repository: Project) -> dict[str, Run]:
    """After the push: a pull request (a one-line change on `feature`, checked out as GitHub's
    merge commit refs/pull/7/merge), workflow_dispatch on main and the daily schedule. Each
    may restore the caches main's push saved, as GitHub scopes caches (the run's own ref,
    then the base branch, then the default branch)."""
    root = default_repository.root
    runs = {}
    run(["git", "switch", "--quiet", "-C", "feature", "main"], root)
    main_rs = default_repository.crate / "src" / "main.rs"
    main_rs.write_text(main_rs.read_text() + "\n// A pull request's change.\n")
    commit(root, "A change under review")
    head = run(["git", "rev-parse", "HEAD"], root).stdout.strip()
    merge = run(["git", "commit-tree", "HEAD^{tree}", "-p", "main", "-p", "HEAD", "-m", "Merge feature into main"],
                root, env=GIT_IDENTITY).stdout.strip()  # fmt: skip
    run(["git", "update-ref", "refs/pull/7/head", head], root)
    run(["git", "update-ref", "refs/pull/7/merge", merge], root)
    run(["git", "checkout", "--quiet", "--detach", merge], root)
    payload = {**PULL_REQUEST, "pull_request": {**PULL_REQUEST["pull_request"], "head": {"ref": "feature"}}}
    payload["pull_request"]["head"]["sha"] = head
    try:
        runs["pull_request"] = engine.run(root, "build.yml", "pull_request", payload)
    finally:
        run(["git", "switch", "--quiet", "main"], root)
        run(["git", "update-ref", "-d", "refs/pull/7/merge"], root)
        run(["git", "update-ref", "-d", "refs/pull/7/head"], root)
        run(["git", "branch", "--quiet", "-D", "feature"], root)
    for event in ("workflow_dispatch", "schedule"):
        runs[event] = engine.run(root, "build.yml", event, EVENTS["build.yml"][event])
    return runs


# The three later events run for real with CCO_ACT_EVERY_SET=1 too (about 7 minutes in CI,
# whose time limit the release's reproduce builds took): CI runs their dry runs.
@pytest.mark.skipif(
    os.environ.get("CCO_ACT_EVERY_SET") != "1",
    reason="the pull request, dispatch and schedule runs under act run with CCO_ACT_EVERY_SET=1 (CI: time limit)",
)
@pytest.mark.parametrize("event", ["pull_request", "workflow_dispatch", "schedule"])
def test_each_other_event_runs_its_linux_jobs_from_mains_caches(
    later_runs: dict[str, Run], default_repository: Project, event: str
) -> None:
    ran = later_runs[event]
    assert ran.ran() == expected_jobs(default_repository, "build.yml", event, real=True), ran.output()[-5000:]
    assert ran.returncode == 0
    if event == "schedule":
        assert "Scanning Cargo.lock for vulnerabilities" in ran.output("audit")
        return
    # The Cargo.lock is main's: each job's cache is an exact hit on the entry main's push
    # saved, and none is saved again (a key is never overwritten).
    for job in ("test", "msrv", "build"):
        keys = cache_keys(ran, job, "key")
        assert keys and sorted(cache_keys(ran, job, "restored")) == sorted(keys), ran.output(job)[-3000:]
        assert not cache_keys(ran, job, "saved")


# ---------------------------------------------------------------- every other answer set's push


OTHER_SETS = [name for name in ANSWER_SETS if name != "default"]
# CI leaves the other answer sets' pushes to CCO_ACT_EVERY_SET=1: about 16 minutes more,
# which CI's time limit cannot take. Their differences are checked in CI all the same: every
# job and step dry, minimal's test job (no Cargo.lock) for real.
EVERY_SET_ONLY = {"crate-at-root", "minimal", "nested-musl-bookworm"}


@pytest.fixture(scope="module")
def pushes(engine: Act, answer_set_projects: dict[str, Project]) -> Callable[[str], Run]:
    """Each other answer set's push to main, once, every job on ubuntu-latest to the end but
    the image scan: that job builds the image with the job's own Docker daemon and pulls
    Trivy's image and its database from the internet, none of which a job has here. Where it
    is rendered, the jobs run one by one (`act -j`), build last (whose artifacts are read).
    A build matrix that mixes runners runs its ubuntu-latest legs alone (`act --matrix`):
    act decides "unsupported platform" for a leg from another leg's matrix now and then
    (nektos/act#5971), so its other legs are left to the dry runs."""
    done: dict[str, Run] = {}

    def push(name: str) -> Run:
        if name not in done:
            needs_audit_tool()
            project = answer_set_projects[name]
            parsed = yaml.safe_load((project.root / ".github" / "workflows" / "build.yml").read_text())
            jobs = ["audit", "msrv", "build"] if "image-scan" in parsed["jobs"] else [None]
            legs = {leg["target"]: leg["os"] for leg in parsed["jobs"]["build"]["strategy"]["matrix"]["include"]}
            matrix = {"target": [t for t, runner in legs.items() if runner == "ubuntu-latest"]}
            payload, repository = EVENTS["build.yml"]["push"], repository_of(name)
            runs = [
                engine.run(project.root, "build.yml", "push", payload, job=j, repository=repository, matrix=matrix)
                for j in jobs
            ]
            done[name] = Run(max(r.returncode for r in runs), [j for r in runs for j in r.jobs],
                             [line for r in runs for line in r.lines])  # fmt: skip
        return done[name]

    return push


@pytest.mark.parametrize("answers", OTHER_SETS)
def test_each_answer_sets_push_runs_its_linux_jobs_to_the_end(
    engine: Act, pushes: Callable[[str], Run], answer_set_projects: dict[str, Project], answers: str
) -> None:
    if answers in EVERY_SET_ONLY and os.environ.get("CCO_ACT_EVERY_SET") != "1":
        pytest.skip(f"{answers}'s push under act runs with CCO_ACT_EVERY_SET=1 (CI leaves it out: time limit)")
    project = answer_set_projects[answers]
    musl = "x86_64-unknown-linux-musl"
    rustlib = Path(run(["rustc", "--print", "sysroot"], ROOT).stdout.strip()) / "lib" / "rustlib" / musl / "lib"
    if musl in project.answers["build_targets"] and not (rustlib / "self-contained" / "libunwind.a").is_file():
        # The runner image carries this machine's toolchain: without libunwind.a, the musl
        # leg's link fails with "cannot find -lunwind".
        pytest.skip(
            f"this toolchain's {musl} standard library has no self-contained/libunwind.a, which rustup's "
            "rust-std component carries (.ci/cross-targets compiles it with zig: pip install ziglang)"
        )
    ran = pushes(answers)
    wanted = expected_jobs(project, "build.yml", "push", real=True)
    wanted.pop("image-scan", None)
    wanted = {job: result for job, result in wanted.items() if result == "success"}  # the legs kept
    assert ran.ran() == wanted, ran.output()[-5000:]
    assert ran.returncode == 0
    built = [t for t in project.answers["build_targets"] if f"build ({t})" in wanted]
    assert built, "no build leg ran"
    check_artifacts(engine, project, repository_of(answers), built)


def test_without_a_committed_lockfile_the_cache_key_still_follows_the_versions(
    engine: Act, answer_set_projects: dict[str, Project]
) -> None:
    """The minimal answer set commits no Cargo.lock: its test job resolves one before its cache
    step, so the key hashes it (a key hashing no file would be a constant, never refreshed)."""
    project = answer_set_projects["minimal"]
    payload, repository = EVENTS["build.yml"]["push"], repository_of("minimal")
    ran = engine.run(project.root, "build.yml", "push", payload, job="test", repository=repository)
    assert ran.ran() == {"test": "success"}, ran.output()[-5000:]
    version = re.escape(run(["rustc", "--version"], ROOT).stdout.split()[1])
    (key,) = cache_keys(ran, "test", "key")
    assert re.fullmatch(rf"Linux-cargo-test-{version}-[0-9a-f]{{64}}", key), key


# ---------------------------------------------------------------- release.yml


@pytest.fixture(scope="module")
def tag_run(engine: Act, default_repository: Project) -> Run:
    run(["git", "tag", TAG], default_repository.root)
    try:
        return engine.run(default_repository.root, "release.yml", "push", EVENTS["release.yml"]["push"])
    finally:
        run(["git", "tag", "-d", TAG], default_repository.root)


DEB = "cco_0.1.0_amd64.deb"  # the default targets' one Debian package: x86_64-unknown-linux-gnu's


def test_a_version_tag_publishes_a_complete_release(engine: Act, tag_run: Run, default_repository: Project) -> None:
    assert tag_run.ran() == expected_jobs(default_repository, "release.yml", "push", real=True), tag_run.output()[
        -5000:
    ]
    assert tag_run.returncode == 0
    release = engine.github / f"{REPOSITORY}.releases" / TAG
    names = sorted(os.listdir(release))
    archives = [f"cco-{target}.tar.gz" for target in default_repository.answers["build_targets"]]
    assert names == sorted([*archives, "cco-universal2-apple-darwin.tar.gz", DEB, "SHA256SUMS", "cco.rb"])
    assert run(["sha256sum", "--check", "--strict", "SHA256SUMS"], release).stdout.count(": OK") == len(names) - 2
    # The provenance names exactly what SHA256SUMS lists.
    statements = list((engine.github / f"{REPOSITORY}.attestations").glob("*-publish.json"))
    assert len(statements) == 1
    subjects = {s["name"]: s["digest"]["sha256"] for s in json.loads(statements[0].read_text())["subject"]}
    listed = {
        name: digest
        for digest, name in (line.split("  ") for line in (release / "SHA256SUMS").read_text().splitlines())
    }
    assert subjects == listed
    # Created as a draft with every file, then published; the notes say it is unsigned (the
    # default answers publish no minisign key).
    calls = [json.loads(line) for line in (engine.github / "gh.log").read_text().splitlines()]
    releases = [call for call in calls if call["arguments"][:2] in (["release", "create"], ["release", "edit"])]
    assert [call["arguments"][:3] for call in releases[-2:]] == [["release", "create", TAG], ["release", "edit", TAG]]
    create, publish = (call["arguments"] for call in releases[-2:])
    assert "--draft" in create and "--verify-tag" in create and publish[3:] == ["--draft=false"]
    assert "**This release is not signed**" in releases[-2]["notes"]
    assert not (release.parent / f"{TAG}.DRAFT").exists(), "the release was published"
    # Each leg built its target twice, in two directories, and found the same bytes.
    for target in default_repository.answers["build_targets"]:
        log = tag_run.output("build", target)
        assert f"✓ cco-{target}.tar.gz: the same bytes from both builds" in log, log[-3000:]
        assert f"✓ cco-{target}/cco: the same bytes from both builds" in log
        assert f"✓ cco-{target}/cco.cdx.json: the same bytes from both builds" in log
        # Built with cargo-auditable, its bill of materials inside (the stand-in install-action
        # put both tools on PATH, as the real one does).
        with tarfile.open(release / f"cco-{target}.tar.gz") as archive:
            assert f"cco-{target}/cco.cdx.json" in archive.getnames()
        # The Linux leg made the .deb (dpkg-deb and readelf on the runner) and rebuilt it too.
        assert (f"✓ {DEB}: the same bytes from both builds" in log) == (target == "x86_64-unknown-linux-gnu"), log[
            -3000:
        ]


def test_a_tag_that_is_not_the_crates_version_fails_in_the_version_job(
    engine: Act, default_repository: Project
) -> None:
    run(["git", "tag", "v9.9.9"], default_repository.root)
    try:
        ran = engine.run(default_repository.root, "release.yml", "push", {"ref": "refs/tags/v9.9.9"})
    finally:
        run(["git", "tag", "-d", "v9.9.9"], default_repository.root)
    assert ran.returncode != 0
    assert ran.ran() == {"version": "failure"}, "nothing may build after the version job fails"
    log = ran.output("version")
    assert "v9.9.9" in log and "0.1.0" in log, log[-2000:]
    assert not (engine.github / f"{REPOSITORY}.releases" / "v9.9.9").exists()


# ---------------------------------------------------------------- template-update.yml

UPDATING = "acme/cco-updating"


@pytest.fixture(scope="module")
def behind(engine: Act, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A repository generated from this template's 0.1.0, on the stand-in GitHub, whose
    template (https://github.com/acme/cco-template, there too) has released 0.2.0."""
    folder = tmp_path_factory.mktemp("behind")
    template = released_template(folder / "template", RECORD_ENVIRONMENT)
    engine.publish(template, "acme/cco-template")
    project = folder / "project"
    # This machine's git reaches the stand-in GitHub as the runner's does (url.insteadOf).
    env = {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"url.file://{engine.github}/.insteadOf",
           "GIT_CONFIG_VALUE_0": "https://github.com/"}  # fmt: skip
    with local.env(**env):  # Copier runs git through plumbum, which has its own environment
        copier.run_copy(
            "https://github.com/acme/cco-template.git", project, defaults=True, unsafe=True, vcs_ref="0.1.0", quiet=True
        )
    git_init(project)
    yield project


def pushed_branch(engine: Act, branch: str) -> str:
    found = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
                           cwd=engine.bare(UPDATING), capture_output=True, text=True)  # fmt: skip
    return found.stdout.strip()


UPDATE_TOKEN = "github_pat_stand-in-for-TEMPLATE_UPDATE_TOKEN"


@pytest.mark.parametrize("event", ["workflow_dispatch", "schedule"])
def test_the_template_update_opens_one_pull_request_against_main(engine: Act, behind: Path, event: str) -> None:
    """On its schedule (from main), and started by hand from another branch: the update starts
    from main either way, pushes template-update and opens a pull request against main. The
    template's migration recorded the environment of every process it could read: neither
    token is in any, though the publish job pushed and opened the pull request with one."""
    branch = "feature" if event == "workflow_dispatch" else "main"
    run(["git", "switch", "--quiet", "-C", branch, "main"], behind)
    if branch == "feature":
        (behind / "NOTES.md").write_text("work in progress\n")
        commit(behind, "Work in progress")
    (engine.github / "gh.log").unlink(missing_ok=True)
    try:
        ran = engine.run(
            behind, "template-update.yml", event, EVENTS["template-update.yml"][event], repository=UPDATING,
            secrets={"TEMPLATE_UPDATE_TOKEN": UPDATE_TOKEN},
        )  # fmt: skip
    finally:
        run(["git", "switch", "--quiet", "main"], behind)
    assert ran.ran() == {"update": "success", "publish": "success"}, ran.output()[-5000:]
    pushed = pushed_branch(engine, "template-update")
    main = run(["git", "rev-parse", "main"], behind).stdout.strip()
    assert run(["git", "rev-parse", f"{pushed}^"], engine.bare(UPDATING)).stdout.strip() == main
    changed = run(["git", "show", "--name-only", "--format=", pushed], engine.bare(UPDATING)).stdout.split()
    assert ".copier-answers.yml" in changed and "NOTES.md" not in changed
    recorded = json.loads(run(["git", "show", f"{pushed}:template-environment.json"], engine.bare(UPDATING)).stdout)
    variables = [entry for environ in recorded.values() for entry in environ]
    assert len(recorded) >= 3 and any(entry.startswith("PATH=") for entry in variables)  # the migration and above
    for secret in (UPDATE_TOKEN, TOKEN):
        assert not [entry for entry in variables if secret in entry], f"a token reached the template's code: {secret}"
    assert not [entry for entry in variables if entry.startswith(("GH_TOKEN=", "GITHUB_TOKEN="))]
    calls = [json.loads(line)["arguments"] for line in (engine.github / "gh.log").read_text().splitlines()]
    create = [call for call in calls if call[:2] == ["pr", "create"]]
    assert len(create) == 1 and create[0][create[0].index("--base") + 1] == "main", calls


# ---------------------------------------------------------------- the stand-ins themselves


def test_the_stand_in_actions_behave_as_the_workflows_depend_on(engine: Act, tmp_path: Path) -> None:
    """tests/act/stand-ins.yml under act: checkout's fetch-depth, tags and persist-credentials;
    cache by key, by restore-key and never across path lists; artifacts by name and pattern,
    merged, without file modes, and failing on no files or an unknown name; install-action's
    tool on PATH; attestation subjects from a checksums file."""
    if not (TOOLS / "cargo-audit").is_file():
        pytest.skip(f"cargo-audit is not built: .ci/run builds it into {TOOLS}")
    repository = tmp_path / "stand-ins"
    (repository / ".github" / "workflows").mkdir(parents=True)
    (repository / ".github" / "workflows" / "stand-ins.yml").write_text((ACT / "stand-ins.yml").read_text())
    git_init(repository)
    run(["git", "tag", "v1"], repository)
    (repository / "second").write_text("a second commit\n")
    commit(repository, "Second")
    ran = engine.run(repository, "stand-ins.yml", "push", {"ref": "refs/heads/main"}, repository="acme/stand-ins")
    jobs = ["checkout", "cache-save", "cache-restore", "upload", "download", "tools", "attest"]
    assert ran.ran() == dict.fromkeys(jobs, "success"), ran.output()[-5000:]
