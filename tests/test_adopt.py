"""Adopting: the template laid over a repository that already has a crate, its own Makefile,
README, .gitignore, configuration and lock file (tests/existing_repository.py), the way its
owner would: `copier copy --trust --defaults --data app=false TEMPLATE .` in the checkout.

Nothing of the owner's may change, validation judges the crate by the specification, the
release profile of the answers is what cargo uses, and `copier update` later brings template
changes into the files the template manages while leaving the owner's alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from cco_validate import builds, checks, model, targets
from existing_repository import DEPENDENCIES, OWNED, write_repository
from helpers import (
    DEFAULT_ANSWERS,
    ROOT,
    Project,
    Renders,
    answers,
    commit,
    commit_template,
    copier_cli,
    files_of,
    run,
    snapshot_template,
    validate,
)
from terminal import asked_questions, drive_in_terminal

ADOPT = ("copy", "--trust", "--defaults", "--data", "app=false")
# What the template adds to the owner's repository (app: false, the other answers' defaults).
ADDED = {
    ".copier-answers.yml",
    ".cargo/config.toml",
    ".dockerignore",
    ".github/workflows/build.yml",
    ".github/workflows/release.yml",
    ".github/dependabot.yml",
    ".github/workflows/template-update.yml",
    ".github/scripts/template_update.py",
    "cco/Dockerfile",
    "cco/GNUmakefile",
    "cco/specification.mk",
    "cco/deny.toml",
    "cco/docker-compose.yml",
    "cco/.env.example",
    "cco/project/.gitignore",
    "cco/docs/CROSS_COMPILE.md",
    "cco/docs/DECISIONS.md",
    "cco/docs/TROUBLESHOOTING.md",
    "cco/scripts/analyze-size.sh",
    "cco/scripts/release.sh",
    "cco/scripts/check-merge.sh",
    "cco/scripts/make.sh",
    "cco/docs/RELEASING.md",
}


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This template, released as 0.1.0."""
    return snapshot_template(tmp_path_factory.mktemp("adopt-template") / "template", tag="0.1.0")


@pytest.fixture(scope="module")
def existing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The owner's repository, committed with its Cargo.lock: tests adopt copies of it."""
    root = tmp_path_factory.mktemp("existing") / "cc-orchestra"
    write_repository(root)
    run(["cargo", "generate-lockfile"], root / "cco")
    run(["git", "init", "-q", "-b", "main"], root)
    commit(root, "The orchestra, before the template")
    return root


@pytest.fixture
def repository(existing: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "cc-orchestra"
    shutil.copytree(existing, copy, symlinks=True)
    return copy


def test_the_existing_repository_is_realistic(existing: Path) -> None:
    manifest = tomllib.loads((existing / "cco" / "Cargo.toml").read_text())
    assert len(manifest["dependencies"]) == DEPENDENCIES >= 20
    assert "libz-sys" in manifest["dependencies"], "one dependency compiles C"
    assert {"bin", "lib", "build-dependencies"} <= set(manifest) and "metadata" in manifest["package"]
    assert (existing / "cco" / "Cargo.lock").is_file()
    assert "cargo:rustc-env=CCO_AGENT_COUNT" in (existing / "cco" / "build.rs").read_text()
    assert "deploy:" in (existing / "cco" / "Makefile").read_text()


# ---------------------------------------------------------------- adopting, with full validation


@pytest.fixture(scope="module")
def adopted(existing: Path, template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The owner's repository adopted as the README says, with full validation (builds), for
    this machine's target only: building the owner's 20 dependencies once per target is most of
    what full validation costs, and what the Apple and Linux cross targets do with a crate is
    tests/test_targets.py's subject, not adoption's."""
    project = tmp_path_factory.mktemp("adopted") / "cc-orchestra"
    shutil.copytree(existing, project, symlinks=True)
    before = files_of(project)
    target_dir = Path(os.environ.get("CCO_TEST_TARGET_DIR", ROOT / ".test-target")).resolve() / "adopt"
    result = run(
        [
            sys.executable,
            "-m",
            "copier",
            *ADOPT,
            "--data",
            f"build_targets=[{targets.host_target()}]",
            str(template),
            ".",
        ],
        project,
        env={"CCO_VALIDATE": "full", "CCO_VALIDATE_TARGET_DIR": str(target_dir)},
        check=False,
    )
    return {"project": project, "before": before, "result": result, "target_dir": target_dir}


@pytest.mark.slow
def test_adopting_keeps_every_file_of_the_owner(adopted: dict[str, Any]) -> None:
    project, before, result = adopted["project"], adopted["before"], adopted["result"]
    assert result.returncode == 0, result.stdout + result.stderr
    after = files_of(project)
    changed = sorted(name for name, content in before.items() if after.get(name) != content)
    assert changed == [], f"the owner's files changed: {changed}"
    assert set(after) - set(before) == ADDED
    assert os.access(project / "cco" / "install.sh", os.X_OK)
    assert answers(project)["owned_files"] == OWNED
    assert "adopted: 4 files were yours and are kept as they were" in result.stdout
    status = run(["git", "status", "--porcelain"], project).stdout.splitlines()
    assert all(line.startswith("?? ") for line in status), "git sees additions only, no tracked file changed"


@pytest.mark.slow
def test_the_adopted_crate_is_validated_by_the_specification(adopted: dict[str, Any]) -> None:
    result = adopted["result"]
    commit = run(["git", "rev-parse", "--short", "HEAD"], adopted["project"]).stdout.strip()
    for line in [
        "✓ config: config/orchestra-config.json (yours) is JSON (its shape is the crate's own: app is false)",
        "✓ manifest: cco/Cargo.toml (yours) parses and builds the binary cco",
        "✓ makefile: cco/Makefile (yours) has 6 of the specification's 9 targets; lint, check-size, "
        "cross-compile-macos come from cco/specification.mk",
        "✓ gitignore: git ignores cco/target/, cco/Cargo.lock, cco/.env",
        "✓ cargo build: built",
        "✓ cargo build --release: built",
        "✓ profile: the release build used the answers' profile (opt-level 3, codegen-units 1, panic abort, "
        "lto fat, strip symbols) from .cargo/config.toml",
        "✓ symbols: nm finds no symbols",
        f"✓ version: cco 0.3.1 (commit {commit}, built ",
        "✓ target x86_64-unknown-linux-gnu: the host: built above",
    ]:
        assert line in result.stdout, result.stdout
    assert " 0 failed" in result.stdout
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "> Running task" not in line]
    assert not [line for line in ours if "/tmp/copier" in line], "nothing of ours names Copier's temporary clone"


@pytest.mark.slow
def test_the_adopted_crate_builds_with_the_answers_profile(adopted: dict[str, Any], tmp_path: Path) -> None:
    """The owner's manifest asks for thin LTO and 16 codegen units; cargo uses the answers'."""
    crate = adopted["project"] / "cco"
    env = {"CARGO_TARGET_DIR": str(adopted["target_dir"]), "CARGO_TERM_COLOR": "never"}
    (crate / "src" / "main.rs").touch()  # so cargo prints the crate's rustc command
    built = run(["cargo", "build", "--release", "--locked", "-v"], crate, env=env)
    command = next(line for line in built.stderr.splitlines() if "--crate-name cco " in line and "Running" in line)
    assert builds.used_profile(command) == builds.wanted_profile(DEFAULT_ANSWERS)
    binary = adopted["target_dir"] / "release" / "cco"
    assert run(["nm", str(binary)], tmp_path, check=False).stdout == "", "stripped"
    assert binary.stat().st_size < DEFAULT_ANSWERS["size_limit_mb"] * 1e6
    assert run([str(binary), "--zlib"], tmp_path).stdout.startswith("zlib 1.")
    assert list(adopted["target_dir"].glob("release/build/libz-sys-*/out/lib/libz.a")), "zlib compiled from C"


@pytest.mark.slow
def test_the_specifications_targets_the_owner_lacks_work_in_the_adopted_crate(adopted: dict[str, Any]) -> None:
    """lint, check-size and cross-compile-macos, which the owner's Makefile does not have, run
    for real through GNUmakefile (one Apple target: the crate's C dependency compiled by zig)."""
    crate = adopted["project"] / "cco"
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])  # cargo-zigbuild, zig
    env = {"CARGO_TARGET_DIR": str(adopted["target_dir"]), "CARGO_TERM_COLOR": "never", "PATH": path}
    assert "✓ clippy: no warnings" in run(["make", "lint"], crate, env=env).stdout
    sized = run(["make", "check-size"], crate, env=env).stdout
    assert "within the 15 MB limit" in sized, sized
    if "aarch64-apple-darwin" not in targets.installed_targets():
        pytest.skip("no standard library for aarch64-apple-darwin (bash .ci/cross-targets builds it)")
    if isinstance(linker := targets.linker_for("aarch64-apple-darwin"), str):
        pytest.skip(linker)
    made = run(["make", "cross-compile-macos", "MACOS_TARGETS=aarch64-apple-darwin"], crate, env=env)
    assert (
        f"✓ aarch64-apple-darwin: {adopted['target_dir']}/aarch64-apple-darwin/release/cco (macOS 11.0" in made.stdout
    )


# ---------------------------------------------------------------- updating an adopted repository


def release_next_version(template: Path) -> None:
    """0.2.0 changes a line of the cross-compile guide, adds one to the size analysis, and
    changes the Makefile and README (which this owner has their own of)."""
    crate = template / "template" / "{{ crate_dir }}"
    guide = crate / "docs" / "CROSS_COMPILE.md.jinja"
    text = guide.read_text()
    first = text.splitlines()[0]
    guide.write_text(text.replace(first, first + " (template 0.2.0)", 1))
    script = crate / "scripts" / "analyze-size.sh.jinja"
    script.write_text(script.read_text().replace("set -euo pipefail\n", "set -euo pipefail\n# template 0.2.0\n", 1))
    makefile = template / "includes" / "makefile.jinja"  # the Makefile's, and specification.mk's
    makefile.write_text("# template 0.2.0\n" + makefile.read_text())
    readme = template / "template" / "README.md.jinja"
    readme.write_text("<!-- template 0.2.0 -->\n" + readme.read_text())
    commit_template(template, "version 0.2.0", "0.2.0")


def test_update_changes_the_templates_files_and_none_of_the_owners(
    repository: Path, template: Path, tmp_path: Path
) -> None:
    template = shutil.copytree(template, tmp_path / "template", symlinks=True)  # this test releases 0.2.0
    copier_cli(*ADOPT, str(template), ".", cwd=repository, validate="quick")
    commit(repository, "Adopt the cco template")
    guide = repository / "cco" / "docs" / "CROSS_COMPILE.md"
    first = guide.read_text().splitlines()[0]
    guide.write_text(guide.read_text().replace(first, first + " (the owner's)", 1))
    commit(repository, "The owner edits the guide's title")
    owned_before = {name: (repository / name).read_bytes() for name in OWNED}
    crate_before = files_of(repository / "cco" / "src") | {
        name: (repository / "cco" / name).read_bytes() for name in ("Cargo.toml", "Cargo.lock", "build.rs")
    }

    release_next_version(template)
    result = copier_cli("update", "--trust", "--defaults", cwd=repository, validate="quick", check=False)
    assert result.returncode != 0, "validation fails the update until the conflict is resolved"
    assert "✗ conflicts: conflict markers in cco/docs/CROSS_COMPILE.md:1 (edit each to what you want)" in result.stdout
    assert {name: (repository / name).read_bytes() for name in OWNED} == owned_before, "the owner's files"
    assert crate_before == files_of(repository / "cco" / "src") | {
        name: (repository / "cco" / name).read_bytes() for name in ("Cargo.toml", "Cargo.lock", "build.rs")
    }
    assert "# template 0.2.0\n" in (repository / "cco" / "scripts" / "analyze-size.sh").read_text()
    merged = guide.read_text()
    assert "<<<<<<< before updating" in merged and ">>>>>>> after updating" in merged, "a visible conflict"
    assert "(the owner's)" in merged and "(template 0.2.0)" in merged
    status = run(["git", "status", "--porcelain"], repository).stdout
    assert "UU cco/docs/CROSS_COMPILE.md" in status
    assert answers(repository)["owned_files"] == OWNED
    assert answers(repository)["_commit"] == "0.2.0"


def test_a_repository_that_follows_the_specification_is_adopted_and_updated_cleanly(
    repository: Path, template: Path, tmp_path: Path
) -> None:
    """The owner's Makefile has six of the specification's targets and .gitignore ignores
    Cargo.lock: the README's command exits 0, `make` has every target (the owner's where they
    wrote one), nothing asks for a lockfile, and the next `copier update` exits 0 as well."""
    template = shutil.copytree(template, tmp_path / "template", symlinks=True)  # this test releases 0.2.0
    makefile = (repository / "cco" / "Makefile").read_text()
    result = copier_cli(*ADOPT, str(template), ".", cwd=repository, validate="quick")
    assert (
        "✓ makefile: cco/Makefile (yours) has 6 of the specification's 9 targets; lint, check-size, "
        "cross-compile-macos come from cco/specification.mk (cco/GNUmakefile, which make reads first, runs it for "
        "them)" in result.stdout
    )
    assert "✓ gitignore: git ignores cco/target/, cco/Cargo.lock, cco/.env" in result.stdout
    assert (
        "adopted: .gitignore ignores cco/Cargo.lock, so it stays uncommitted (commit_lockfile=false: the workflows "
        "and the Dockerfile need none); to commit it instead, remove that line from `.gitignore` and run "
        "`copier update --trust --defaults --data commit_lockfile=true`" in result.stdout
    )
    assert answers(repository)["commit_lockfile"] is False
    assert "--locked" not in (repository / "cco" / "Dockerfile").read_text()
    assert "--locked" not in (repository / ".github" / "workflows" / "build.yml").read_text()
    assert (repository / "cco" / "Makefile").read_text() == makefile

    # make reads GNUmakefile: the owner's recipe where there is one, the specification's else.
    crate = repository / "cco"
    assert run(["make", "-n", "build"], crate).stdout == "cargo build\n"
    assert run(["make", "-n", "deploy"], crate).stdout.splitlines()[-1].startswith("scp target/release/cco ")
    for target, command in [
        ("lint", "cargo clippy --all-targets -- -D warnings"),
        ("check-size", 'scripts/make.sh check-size "target/release/cco" 15000000 15'),
        (
            "cross-compile-macos",
            "scripts/make.sh cross-compile-macos x86_64-apple-darwin=10.12 aarch64-apple-darwin=11.0",
        ),
    ]:
        assert command in run(["make", "-n", target], crate).stdout, target
    made = run(["make", "no-such-target"], crate, check=False)
    assert made.returncode == 2 and "No rule to make target 'no-such-target'" in made.stderr

    commit(repository, "Adopt the cco template")
    release_next_version(template)
    updated = copier_cli("update", "--trust", "--defaults", cwd=repository, validate="quick")
    assert "✓ makefile: cco/Makefile (yours) has 6 of the specification's 9 targets" in updated.stdout
    assert (crate / "specification.mk").read_text().startswith("# template 0.2.0\n")
    assert (crate / "Makefile").read_text() == makefile
    assert answers(repository)["commit_lockfile"] is False


def test_an_answer_decides_the_lockfile_over_the_owners_gitignore(repository: Path, template: Path) -> None:
    """--data commit_lockfile=true: the answer stands, and validation names the line that
    contradicts it."""
    result = copier_cli(
        *ADOPT, "--data", "commit_lockfile=true", str(template), ".", cwd=repository, validate="quick", check=False
    )
    assert result.returncode == 1
    assert answers(repository)["commit_lockfile"] is True
    assert "✗ gitignore: cco/Cargo.lock is ignored: the answers commit it (.gitignore (yours))" in result.stdout
    assert "stays uncommitted" not in result.stdout


def test_without_its_gnumakefile_an_owners_makefile_lacks_the_targets(repository: Path, template: Path) -> None:
    copier_cli(*ADOPT, str(template), ".", cwd=repository, validate="quick")
    (repository / "cco" / "GNUmakefile").unlink()
    result = validate(Project(root=repository, answers=answers(repository)), "quick")
    assert result.returncode == 1
    assert (
        "✗ makefile: cco/Makefile (yours) lacks the specification's targets lint, check-size, cross-compile-macos: "
        "add them" in result.stdout
    )


def test_recopy_replaces_the_templates_files_and_none_of_the_owners(repository: Path, template: Path) -> None:
    copier_cli(*ADOPT, str(template), ".", cwd=repository, validate="quick")
    commit(repository, "Adopt the cco template")
    guide = repository / "cco" / "docs" / "CROSS_COMPILE.md"
    rendered = guide.read_text()
    guide.write_text("edited\n")
    commit(repository, "The owner edits the guide")
    owned_before = {name: (repository / name).read_bytes() for name in OWNED}

    kept = copier_cli("recopy", "--trust", "--defaults", cwd=repository, validate="quick")
    assert guide.read_text() == "edited\n", "without --overwrite, recopy keeps what is there"
    assert "validation (quick): " in kept.stdout
    copier_cli("recopy", "--trust", "--defaults", "--overwrite", cwd=repository, validate="quick")
    assert guide.read_text() == rendered, "with --overwrite, the template's files are rendered again"
    assert {name: (repository / name).read_bytes() for name in OWNED} == owned_before, "the owner's never"


# ---------------------------------------------------------------- the ways adopting can go


def test_uncommitted_work_is_kept(repository: Path, template: Path) -> None:
    makefile = repository / "cco" / "Makefile"
    makefile.write_text(makefile.read_text() + "\nwip: ## not committed yet\n\t@true\n")
    edited = makefile.read_bytes()
    copier_cli(*ADOPT, str(template), ".", cwd=repository, validate="quick")
    assert makefile.read_bytes() == edited


def test_with_the_skeleton_an_existing_crate_is_kept_and_the_copy_fails(repository: Path, template: Path) -> None:
    before = files_of(repository)
    result = copier_cli(
        "copy", "--trust", "--defaults", str(template), ".", cwd=repository, validate="quick", check=False
    )
    assert result.returncode != 0
    assert "✗ app: cco/Cargo.toml, cco/build.rs, cco/src/main.rs were already here" in result.stderr
    assert "copy again with `--data app=false`" in result.stderr
    after = files_of(repository)
    assert {name: after.get(name) for name in before} == before, "the owner's code is as it was"
    added = sorted(set(after) - set(before))
    assert "cco/src/server.rs" in added and "cco/src/server.rs" in result.stderr, "what was added is listed"
    assert {"cco/Cargo.toml", "cco/build.rs", "cco/src/main.rs"} <= set(answers(repository)["owned_files"])


OWNERS_WORKFLOW = """\
name: build
on: [push]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@8e8c483db84b4bee98b60c0593521ed34d9990e8 # v6.0.1
      - run: cargo test
      - run: cargo fmt -- --check
      - run: cargo clippy -- -D warnings
      - run: cargo build --release
"""


def test_validation_lists_what_the_owners_files_lack(
    repository: Path, template: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    makefile = repository / "cco" / "Makefile"
    # A recipe indented with spaces: make cannot read the file (the specification's targets it
    # lacks would come from specification.mk, so a missing target is no longer a defect).
    makefile.write_text(makefile.read_text().replace("\t$(CARGO) fmt", "    $(CARGO) fmt"))
    line = next(
        number for number, text in enumerate(makefile.read_text().splitlines(), 1) if "    $(CARGO) fmt" in text
    )
    (repository / ".gitignore").write_text("*.log\n")
    (repository / ".github" / "workflows").mkdir(parents=True)
    (repository / ".github" / "workflows" / "build.yml").write_text(OWNERS_WORKFLOW)
    commit(repository, "A Makefile make cannot read, target/ not ignored, a CI without the audit")
    result = copier_cli(*ADOPT, str(template), ".", cwd=repository, validate="quick", check=False)
    assert result.returncode != 0
    unreadable = f"✗ makefile: cco/Makefile (yours): make cannot read it: Makefile:{line}: *** missing separator"
    assert unreadable in result.stdout
    assert "✗ gitignore: cco/target/ is not ignored; cco/.env is not ignored (.gitignore (yours))" in result.stdout
    assert (
        "✗ workflow: .github/workflows/build.yml (yours) runs no cargo audit: the specification's CI does"
        in result.stdout
    )
    assert (repository / "cco" / "Makefile").read_text() == makefile.read_text(), "kept, even when it fails"
    # The command the failure prints works after Copier has exited, from anywhere.
    rerun = result.stderr.split("then check again: ", 1)[1].splitlines()[0]
    assert "/tmp/copier" not in rerun
    environment = {name: value for name, value in os.environ.items() if name != "CCO_VALIDATE"}
    again = subprocess.run(rerun, shell=True, cwd=Path.home(), env=environment, capture_output=True, text=True)
    assert again.returncode == 1
    assert unreadable in again.stdout


def test_the_templates_own_files_pass_the_checks_an_owners_files_get(renders: Renders) -> None:
    """What validation asks of an owner's Makefile and workflow, the template's own meet."""
    project = renders()
    as_if_owned = model.Project(
        root=project.root, answers={**project.answers, "owned_files": [model.WORKFLOW, "cco/Makefile"]}
    )
    for result in [*checks.check_owned_workflow(as_if_owned), *checks.check_makefile(as_if_owned)]:
        assert result.status == "passed", result


# ---------------------------------------------------------------- interactively, in a terminal


@pytest.mark.slow  # a prompt at a time, half a second each
def test_adopting_interactively_asks_the_questions_and_nothing_else(
    repository: Path, template: Path, copier_yml: dict[str, Any]
) -> None:
    before = files_of(repository)
    status, shown = drive_in_terminal(
        [sys.executable, "-m", "copier", "copy", "--trust", "--data", "app=false", str(template), "."],
        repository,
        {"CCO_VALIDATE": "quick", "TERM": "xterm", "COLUMNS": "200"},
    )
    assert status == 0, shown
    # The lockfile question's default at a prompt is no choice: the .gitignore decides.
    assert answers(repository)["commit_lockfile"] is False
    questions = {name for name, details in copier_yml.items() if isinstance(details, dict) and "help" in details}
    assert asked_questions(shown, copier_yml) == questions - {"app", "owned_files"}, "each question but those"
    assert "Overwrite" not in shown, "no file of the owner's is offered for overwriting"
    after = files_of(repository)
    assert {name: after.get(name) for name in before} == before


@pytest.mark.parametrize(
    ("printed", "lacking"),
    [
        ("cco 0.3.1", "it lacks the commit abc1234 and a build date (YYYY-MM-DD)"),
        ("cco 0.3.1 (built 2026-11-27)", "it lacks the commit abc1234;"),
    ],
)
def test_an_adopted_version_line_says_what_it_lacks(tmp_path: Path, printed: str, lacking: str) -> None:
    binary = tmp_path / "cco"
    binary.write_text(f"#!/bin/sh\necho '{printed}'\n")
    binary.chmod(0o755)
    project = model.Project(root=tmp_path, answers={**DEFAULT_ANSWERS, "app": False})
    result = builds.version_result(project, binary, "abc1234")
    assert result.status == "failed"
    assert f"`cco --version` printed {printed!r}: {lacking}" in result.detail
    assert "build.rs (yours) should emit them" in result.detail
    assert builds.version_result(project, binary, None).status == "failed", "no commit: 'unknown' must show"
