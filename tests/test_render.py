"""What the template renders, and that each answer changes what it should and nothing else.

Fast: these tests render and parse, run `make -n` and rustfmt, but compile nothing.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import tomllib
from typing import Any

import pytest

from cco_validate import model
from cco_validate.answers import ANSWERS_FILE
from helpers import DEFAULT_ANSWERS, Project, Renders, files_of, run

EXECUTABLES = {"install.sh", "analyze-size.sh", "check-merge.sh", "make.sh", "release.sh"}
MAKE_TARGETS = [
    "docker-build",
    "build",
    "test",
    "release",
    "install",
    "run",
    "clean",
    "fmt",
    "lint",
    "check-size",
    "cross-compile-macos",
]


def expected_files(crate_dir: str, app: bool = True, docker: bool = True, compose: bool = True) -> set[str]:
    answers = {"crate_dir": crate_dir, "app": app, "docker": docker, "compose": compose}
    return model.expected_files(answers)


@pytest.fixture(scope="module")
def default_files(renders: Renders) -> dict[str, bytes]:
    return files_of(renders().root)


@pytest.mark.parametrize("crate_dir", ["cco", ".", "crates/cco"])
def test_layout_puts_every_file_in_its_place(renders: Renders, crate_dir: str) -> None:
    project = renders(crate_dir=crate_dir)
    assert set(files_of(project.root)) == expected_files(crate_dir)
    build_rs = (project.crate / "build.rs").read_text()
    relative = {"cco": "../", ".": "", "crates/cco": "../../"}[crate_dir]
    assert f'const CONFIG: &str = "{relative}config/orchestra-config.json";' in build_rs
    # build.rs's path, read from the crate, reaches the one configuration file.
    assert (project.crate / relative / "config/orchestra-config.json").resolve() == (
        project.root / "config/orchestra-config.json"
    ).resolve()
    assert tomllib.loads((project.crate / "Cargo.toml").read_text())["package"]["readme"] == f"{relative}README.md"


@pytest.mark.parametrize(("docker", "compose"), [(False, False), (True, False)])
def test_docker_and_compose_answers_choose_the_container_files(renders: Renders, docker: bool, compose: bool) -> None:
    project = renders(docker=docker, compose=compose)
    assert set(files_of(project.root)) == expected_files("cco", docker=docker, compose=compose)
    readme = (project.root / "README.md").read_text()
    makefile = (project.crate / "Makefile").read_text()
    ignored = (project.root / ".gitignore").read_text().splitlines()
    assert ("docker-compose" in readme) is compose
    assert (".env" in ignored) is compose
    if not docker:
        for text in (readme, makefile):
            assert "Dockerfile" not in text and "docker" not in text.lower(), "docker off leaves no mention"
        workflow = (project.root / ".github/workflows/build.yml").read_text()
        assert "docker" not in workflow


def test_without_app_only_the_build_system_is_rendered(renders: Renders) -> None:
    project = renders(app=False)
    assert set(files_of(project.root)) == expected_files("cco", app=False)
    assert "laid over an existing `cco` crate" in (project.root / "README.md").read_text()


def test_cargo_toml_is_the_specifications(default_files: dict[str, bytes]) -> None:
    cargo = tomllib.loads(default_files["cco/Cargo.toml"].decode())
    package = cargo["package"]
    assert package["name"] == "cco"
    assert package["version"] == "0.1.0"
    assert package["edition"] == "2021"
    assert package["rust-version"] == DEFAULT_ANSWERS["rust_version"]
    assert package["description"] == "Claude Orchestration - Multi-agent development system"
    assert package["repository"] == "https://github.com/brent/cc-orchestra"
    assert package["publish"] is False and "license" not in package
    dependencies = cargo["dependencies"]
    for name in [
        "tokio",
        "serde",
        "serde_json",
        "tracing",
        "tracing-subscriber",
        "anyhow",
        "thiserror",
        "clap",
        "axum",
        "hyper",
    ]:
        assert name in dependencies, name
    assert dependencies["tokio"]["features"] == ["full"]
    assert dependencies["clap"]["features"] == ["derive"]
    assert dependencies["axum"] == "0.8"
    assert dependencies["thiserror"] == "2"
    # TLS without OpenSSL: rustls on ring, the system's roots read without an Apple framework.
    assert dependencies["rustls"]["features"] == ["ring", "std", "tls12"]
    assert dependencies["hyper-rustls"]["default-features"] is False
    linux = cargo["target"]['cfg(target_os = "linux")']["dependencies"]
    assert set(linux) == {"rustls-native-certs"}
    assert cargo["lints"]["rust"]["unsafe_code"] == "deny"
    assert dependencies["hyper"]["version"] == "1"
    assert set(cargo["build-dependencies"]) == {"chrono", "serde", "serde_json"}
    assert cargo["profile"]["release"] == {
        "strip": True,
        "opt-level": 3,
        "lto": True,
        "codegen-units": 1,
        "panic": "abort",
    }


def test_configuration_starter_is_valid_json_with_the_answers(default_files: dict[str, bytes]) -> None:
    config = json.loads(default_files["config/orchestra-config.json"])
    assert config["server"] == {"proxy_port": 8888, "dashboard_port": 3939, "upstream": "https://api.anthropic.com"}
    assert config["cache"] == {"size_mb": 200, "ttl_hours": 48}
    assert len(config["agents"]) >= 1
    for agent in config["agents"]:
        assert set(agent) == {"name", "role", "model"}


def test_nothing_is_left_unrendered(default_files: dict[str, bytes]) -> None:
    for path, content in default_files.items():
        text = content.decode()
        # The hooks' pattern, which lets GitHub's expressions (${{ ... }}) through.
        assert not model.UNRENDERED.search(text), f"unrendered Jinja in {path}"
        if not path.endswith(".py"):  # PEP 8 puts two blank lines between definitions
            assert "\n\n\n" not in text, f"stray blank lines in {path}"


def test_gitignore_keeps_the_specifications_list(default_files: dict[str, bytes]) -> None:
    lines = default_files[".gitignore"].decode().splitlines()
    for entry in [
        "target/",
        ".cco/",
        "*.swarm",
        ".vscode/",
        ".idea/",
        "*.iml",
        ".DS_Store",
        "Thumbs.db",
        "*.tmp",
        "*.backup",
    ]:
        assert entry in lines
    assert "Cargo.lock" not in lines


def changed_files(base: dict[str, bytes], other: dict[str, bytes]) -> set[str]:
    return {path for path in base.keys() | other.keys() if base.get(path) != other.get(path)} - {ANSWERS_FILE}


# Each answer, the files it may change, and what must then be in them.
RUST = DEFAULT_ANSWERS["rust_version"]
ANSWER_EFFECTS: list[tuple[dict[str, Any], set[str], dict[str, list[str]]]] = [
    ({"lto": "thin"}, {"cco/Cargo.toml"}, {"cco/Cargo.toml": ['lto = "thin"']}),
    ({"lto": "off"}, {"cco/Cargo.toml"}, {"cco/Cargo.toml": ["lto = false"]}),
    ({"opt_level": "z"}, {"cco/Cargo.toml"}, {"cco/Cargo.toml": ['opt-level = "z"']}),
    ({"codegen_units": 16}, {"cco/Cargo.toml"}, {"cco/Cargo.toml": ["codegen-units = 16"]}),
    ({"panic": "unwind"}, {"cco/Cargo.toml"}, {"cco/Cargo.toml": ['panic = "unwind"']}),
    (
        {"strip": False},
        {"cco/Cargo.toml", "cco/Makefile", ".github/workflows/build.yml", "README.md", "cco/docs/DECISIONS.md"},
        {"cco/Cargo.toml": ["strip = false"], "cco/Makefile": ["symbols kept"]},
    ),
    ({"edition": "2024"}, {"cco/Cargo.toml"}, {"cco/Cargo.toml": ['edition = "2024"']}),
    (
        {"rust_version": "1.90"},
        {
            "cco/Cargo.toml",
            "cco/Dockerfile",
            "README.md",
            ".github/workflows/build.yml",
            ".github/workflows/release.yml",  # release_toolchain follows: 1.90.0
            "cco/docs/RELEASING.md",
            "cco/docs/DECISIONS.md",
        },
        {
            "cco/Cargo.toml": ['rust-version = "1.90"'],
            "cco/Dockerfile": ["FROM rust:1.90-slim-trixie AS builder"],
            ".github/workflows/release.yml": ['RUST_TOOLCHAIN: "1.90.0"'],
        },
    ),
    (
        {"release": False},
        {
            ".github/workflows/release.yml",
            "cco/scripts/release.sh",
            "cco/docs/RELEASING.md",
            "cco/Cargo.toml",
            "cco/install.sh",
            "README.md",
            "cco/docs/DECISIONS.md",
        },
        {},
    ),
    ({"dependabot": False}, {".github/dependabot.yml", "README.md", "cco/docs/RELEASING.md"}, {}),
    (
        {"template_updates": False},
        {".github/workflows/template-update.yml", ".github/scripts/template_update.py", "README.md"},
        {},
    ),
    (
        {"license": "MIT"},
        {"cco/Cargo.toml", "cco/scripts/release.sh", "cco/docs/RELEASING.md"},
        {"cco/Cargo.toml": ['license = "MIT"'], "cco/scripts/release.sh": ['  license "MIT"\n']},
    ),
    (
        {"author": "Ada <ada@example.com>"},
        {"cco/Cargo.toml"},
        {"cco/Cargo.toml": ['authors = ["Ada <ada@example.com>"]']},
    ),
    (
        {"size_limit_mb": 2.5},
        {"cco/Makefile", "README.md"},
        {"cco/Makefile": ["SIZE_LIMIT_BYTES := 2500000", "SIZE_LIMIT_MB    := 2.5"]},
    ),
    (
        {"debian_release": "bookworm"},
        {"cco/Dockerfile", "cco/docs/DECISIONS.md", ".github/dependabot.yml"},
        {
            "cco/Dockerfile": [f"FROM rust:{RUST}-slim-bookworm AS builder", "FROM debian:bookworm-slim"],
            "cco/docs/DECISIONS.md": [f"rust:{RUST}-slim-bookworm"],
        },
    ),
    (
        {"proxy_port": 9000},
        {"config/orchestra-config.json", "README.md", "cco/Dockerfile", "cco/docker-compose.yml"},
        {
            "config/orchestra-config.json": ['"proxy_port": 9000'],
            "README.md": ["proxy on port 9000"],
            "cco/Dockerfile": ["EXPOSE 9000 3939"],
            "cco/docker-compose.yml": [':-127.0.0.1}:9000:9000"'],
        },
    ),
    (
        {"dashboard_port": 4000},
        {"config/orchestra-config.json", "README.md", "cco/Dockerfile", "cco/docker-compose.yml"},
        {
            "config/orchestra-config.json": ['"dashboard_port": 4000'],
            "cco/Dockerfile": ["EXPOSE 8888 4000"],
        },
    ),
    (
        {"cache_size_mb": 512},
        {"config/orchestra-config.json", "README.md", "cco/docker-compose.yml", "cco/.env.example"},
        {
            "config/orchestra-config.json": ['"size_mb": 512'],
            "cco/docker-compose.yml": ["${CCO_CACHE_SIZE:-512}"],
        },
    ),
    (
        {"cache_ttl_hours": 12},
        {"config/orchestra-config.json", "README.md", "cco/docker-compose.yml", "cco/.env.example"},
        {"config/orchestra-config.json": ['"ttl_hours": 12'], "cco/.env.example": ["CCO_CACHE_TTL=12"]},
    ),
    (
        {"commit_lockfile": False},
        {
            ".gitignore",
            "README.md",
            ".github/workflows/build.yml",
            "cco/scripts/release.sh",  # its build step passes --locked, or not
            "cco/Dockerfile",
            "cco/docs/RELEASING.md",
            "cco/docs/DECISIONS.md",
        },
        {".gitignore": ["\nCargo.lock\n"], "cco/Dockerfile": ["Cargo.lock* ./", "cargo build --release \\"]},
    ),
    (
        {"install_dir": "/opt/cco/bin"},
        {"cco/Makefile", "cco/install.sh", "README.md", "cco/docs/DECISIONS.md"},
        {
            "cco/Makefile": ["BINDIR           ?= /opt/cco/bin"],
            "cco/install.sh": ["install_dir='/opt/cco/bin'"],
        },
    ),
    (
        {"build_targets": ["x86_64-unknown-linux-gnu", "aarch64-apple-darwin"]},
        {
            "cco/Makefile",
            ".github/workflows/build.yml",
            ".github/workflows/release.yml",
            "cco/docs/CROSS_COMPILE.md",
            "cco/docs/DECISIONS.md",
            "cco/docs/RELEASING.md",
            "README.md",
            "cco/deny.toml",
        },
        {
            "cco/Makefile": ["MACOS_TARGETS    ?= aarch64-apple-darwin\n"],
            "cco/deny.toml": ['targets = [\n    "x86_64-unknown-linux-gnu",\n    "aarch64-apple-darwin",\n]'],
        },
    ),
    (
        {"apple_builds_on": "macos"},
        {
            ".github/workflows/build.yml",
            ".github/workflows/release.yml",
            "cco/docs/CROSS_COMPILE.md",
            "cco/docs/DECISIONS.md",
        },
        {".github/workflows/build.yml": ["            os: macos-latest\n            build: build\n"]},
    ),
    (
        {"macos_deployment_target": "12.0"},
        {
            "cco/Makefile",
            ".github/workflows/build.yml",
            ".github/workflows/release.yml",
            "cco/docs/CROSS_COMPILE.md",
            "cco/docs/DECISIONS.md",
        },
        {"cco/Makefile": ["MACOS_MIN_aarch64-apple-darwin ?= 12.0\n", "MACOS_MIN_x86_64-apple-darwin ?= 12.0\n"]},
    ),
    (
        {"image_scan": True},
        {".github/workflows/build.yml", "README.md"},
        {".github/workflows/build.yml": ["image-scan:", "aquasec/trivy:0.68.2@sha256:"]},
    ),
    (
        {"description": "My orchestra"},
        {"cco/Cargo.toml", "README.md", "cco/scripts/release.sh"},
        {"cco/Cargo.toml": ['description = "My orchestra"']},
    ),
    (
        {"repository_url": "https://example.com/me/cco"},
        {"cco/Cargo.toml", "cco/install.sh", "cco/scripts/release.sh", "cco/docs/RELEASING.md", "README.md"},
        {"cco/Cargo.toml": ['repository = "https://example.com/me/cco"']},
    ),
    ({"project_name": "Orchestra", "crate_name": "cco"}, {"README.md"}, {"README.md": ["# Orchestra\n"]}),
]


@pytest.mark.parametrize(
    ("answers", "files", "contents"),
    ANSWER_EFFECTS,
    ids=["-".join(f"{k}={v}" for k, v in a.items()) for a, _, _ in ANSWER_EFFECTS],
)
def test_each_answer_changes_what_it_should_and_nothing_else(
    renders: Renders,
    default_files: dict[str, bytes],
    answers: dict[str, Any],
    files: set[str],
    contents: dict[str, list[str]],
) -> None:
    rendered = files_of(renders(**answers).root)
    assert changed_files(default_files, rendered) == files
    for path, needles in contents.items():
        for needle in needles:
            assert needle in rendered[path].decode(), f"{needle!r} not in {path}"


def test_crate_name_names_the_package_the_binary_and_the_docs(renders: Renders) -> None:
    project = renders(crate_name="orchestra")
    assert tomllib.loads((project.crate / "Cargo.toml").read_text())["package"]["name"] == "orchestra"
    assert "BIN              := orchestra" in (project.crate / "Makefile").read_text()
    # tests/cli.rs is plain Rust: the binary's path comes from the package's name, at compile time.
    assert 'env!(concat!("CARGO_BIN_EXE_", env!("CARGO_PKG_NAME")))' in (project.crate / "tests/cli.rs").read_text()
    assert "`orchestra run`" in (project.root / "README.md").read_text()


def test_makefile_lists_and_plans_every_target(renders: Renders) -> None:
    project = renders()
    help_text = run(["make", "help"], project.crate).stdout
    for target in MAKE_TARGETS:
        assert re.search(rf"^  {re.escape(target)} ", help_text, re.MULTILINE), f"{target} missing from make help"
        run(["make", "-n", target], project.crate)
    phony = re.search(r"^\.PHONY: (.*)$", (project.crate / "Makefile").read_text(), re.MULTILINE)
    assert phony is not None
    assert set(MAKE_TARGETS) | {"help"} == set(phony.group(1).split())


def test_makefile_install_directory_overrides(renders: Renders) -> None:
    project = renders()
    plan = run(["make", "-n", "install", "PREFIX=/tmp/prefix"], project.crate).stdout
    assert 'scripts/make.sh install "target/release/cco" "/tmp/prefix/bin"' in plan
    plan = run(["make", "-n", "install", "DESTDIR=/tmp/stage"], project.crate).stdout
    assert 'scripts/make.sh install "target/release/cco" "/tmp/stage/usr/local/bin"' in plan


@pytest.mark.skipif(shutil.which("rustfmt") is None, reason="rustfmt is not installed")
@pytest.mark.parametrize(
    "answers",
    [
        {},
        {"edition": "2024"},
        {"crate_name": "a-much-longer-orchestra-name", "crate_dir": "crates/orchestra"},
    ],
    ids=["default", "edition-2024", "long-name-nested"],
)
def test_rendered_rust_is_rustfmt_clean(renders: Renders, answers: dict[str, Any]) -> None:
    """The generated CI runs `cargo fmt -- --check`: the render must pass it as it is."""
    project = renders(**answers)
    edition = project.answers["edition"]
    sources = [str(path) for path in project.crate.rglob("*.rs")]
    run(["rustfmt", "--check", "--edition", edition, *sources], project.crate)


def test_only_the_scripts_are_executable(renders: Renders) -> None:
    project: Project = renders()
    for path in project.root.rglob("*"):
        if path.is_file():
            executable = bool(path.stat().st_mode & stat.S_IXUSR)
            assert executable == (path.name in EXECUTABLES), f"{path}: executable is {executable}"
