"""The template repository itself: its Python is linted and typed, its docs name what exists."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import ROOT, git_init, run, snapshot_template, tool


def test_python_is_ruff_clean() -> None:
    ruff = tool("ruff", "-e '.[lint]'")
    run([ruff, "check", "."], ROOT)
    run([ruff, "format", "--check", "."], ROOT)


def test_python_is_typed() -> None:
    mypy = tool("mypy", "-e '.[lint]'")
    run([mypy], ROOT)


def test_readme_documents_every_question(copier_yml: dict[str, Any]) -> None:
    readme = (ROOT / "README.md").read_text()
    for name, spec in copier_yml.items():
        if not name.startswith("_") and spec.get("when") is not False:
            assert f"| `{name}` |" in readme, f"README's questions table lacks {name}"


def test_readme_links_the_benchmarks_and_the_update_guide() -> None:
    readme = (ROOT / "README.md").read_text()
    for document in ("docs/BENCHMARKS.md", "docs/UPDATING.md", "CHANGELOG.md", "ARCHITECTURE.md"):
        assert f"]({document})" in readme
        assert (ROOT / document).is_file() or document == "docs/BENCHMARKS.md"


def test_readme_test_command_is_what_ci_runs() -> None:
    assert "bash .ci/run\n" in (ROOT / "README.md").read_text()
    assert (ROOT / ".ci/run").stat().st_mode & 0o111


def test_architecture_names_every_template_file_and_no_other() -> None:
    """The table "What renders what": each template file is one row's template path (or glob),
    and each row's path names files that exist."""
    architecture = (ROOT / "ARCHITECTURE.md").read_text()
    table = architecture.split("| generated | template |", 1)[1].split("\n\n", 1)[0]
    patterns = [
        re.match(r"`([^`]+)`", row.split("|")[2].strip()).group(1)  # type: ignore[union-attr]
        for row in table.splitlines()[2:]
    ]
    files = sorted(
        path.relative_to(ROOT / "template").as_posix() for path in (ROOT / "template").rglob("*") if path.is_file()
    )
    for file in files:
        matching = [pattern for pattern in patterns if fnmatch.fnmatchcase(file, pattern)]
        assert len(matching) == 1, f"ARCHITECTURE.md's table names {file} {len(matching)} times (once, please)"
    for pattern in patterns:
        assert any(fnmatch.fnmatchcase(file, pattern) for file in files), (
            f"ARCHITECTURE.md names {pattern}, not in template/"
        )


@pytest.mark.slow
def test_readme_render_command_works_as_written_and_the_update_after_it(tmp_path: Path) -> None:
    """The README's first command, verbatim, in a fresh checkout of the template (a new
    virtualenv, its own relative paths), then the repository's first `copier update`."""
    readme = (ROOT / "README.md").read_text()
    command = re.search(r"Render a new cco repository.*?```sh\n(.*?)\n```", readme, re.DOTALL)
    assert command is not None, "README lost its render command"
    checkout = snapshot_template(tmp_path / "cco-template", tag=None)
    # Quick validation: the command's hook runs for real; the builds are proven elsewhere.
    result = run(["bash", "-c", command.group(1)], checkout, env={"CCO_VALIDATE": "quick"})
    assert "validation (quick): " in result.stdout and " 0 failed" in result.stdout
    for linter in ["shellcheck", "hadolint", "actionlint"]:  # the command installs what validation runs
        assert f"✓ {linter}: " in result.stdout, result.stdout
    assert "for want of a tool" not in result.stdout
    project = tmp_path / "my-cco"
    assert (project / "cco" / "Cargo.toml").is_file()
    assert yaml.safe_load((project / ".copier-answers.yml").read_text())["_src_path"] == str(checkout)

    git_init(project)
    updated = run(
        [str(checkout / ".venv" / "bin" / "copier"), "update", "--trust", "--defaults"],
        project,
        env={"CCO_VALIDATE": "quick"},
    )
    assert "validation (quick): " in updated.stdout and " 0 failed" in updated.stdout
