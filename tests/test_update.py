"""`copier update`: a repository generated from one template version takes the next one's
changes and keeps its own edits. Both versions are made by the tests from the working tree,
committed and tagged in a temporary repository, as releases would be.

The owner's everyday update runs through the copier command line, as they would type it;
the other cases call Copier's Python API (the same code, without starting an interpreter
and importing Copier for every call), and the 0.1.0 repository most tests start from is
generated once per session and copied.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import copier
import pytest

from helpers import (
    DEFAULT_ANSWERS,
    ROOT,
    answers,
    commit,
    commit_template,
    copier_cli,
    files_of,
    git_init,
    run,
    snapshot_template,
    validation,
)
from terminal import asked_questions, drive_in_terminal

NEW_MAKEFILE_LINE = "# Template 0.2.0: a line the new version adds.\n"
NEW_README_TITLE = "# {{ project_name }} (template 0.2.0)\n"


NEW_QUESTION = "log_level:\n  type: str\n  help: The log level cco starts with\n  default: info\n\n"


def release_next_version(template: Path, migrations: str = "") -> None:
    """Version 0.2.0: a new Makefile line, a changed README title, a new question, and any migrations."""
    makefile = template / "includes" / "makefile.jinja"  # the Makefile's body
    text = makefile.read_text()
    makefile.write_text(text.replace(".DEFAULT_GOAL := build\n", NEW_MAKEFILE_LINE + ".DEFAULT_GOAL := build\n"))
    readme = template / "template" / "README.md.jinja"
    readme.write_text(readme.read_text().replace("# {{ project_name }}\n", NEW_README_TITLE, 1))
    copier_yml = template / "copier.yml"
    marker = "# ---------------------------------------------------------------- validation"
    text = copier_yml.read_text().replace(marker, NEW_QUESTION + marker, 1)
    copier_yml.write_text(text.replace("_migrations:\n", "_migrations:\n" + migrations, 1))
    commit_template(template, "version 0.2.0", "0.2.0")


def generate(template: Path, project: Path, **data: Any) -> Path:
    """A repository generated at 0.1.0 and committed, as its owner would have it."""
    copier.run_copy(str(template), project, data=data, defaults=True, unsafe=True, vcs_ref="0.1.0", quiet=True)
    git_init(project)
    return project


def update(project: Path, capfd: pytest.CaptureFixture[str], validate: str = "none", **options: Any) -> str:
    """`copier update --trust --defaults` with these options; returns what it and its tasks printed."""
    capfd.readouterr()
    with validation(validate):
        copier.run_update(project, defaults=True, unsafe=True, overwrite=True, **options)
    printed = capfd.readouterr()
    return printed.out + printed.err


@pytest.fixture(scope="session")
def released(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template released as 0.1.0, then as 0.2.0 with release_next_version's changes."""
    template = snapshot_template(tmp_path_factory.mktemp("released") / "template", tag="0.1.0")
    release_next_version(template)
    return template


@pytest.fixture(scope="session")
def generated(released: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default repository generated from `released` at 0.1.0; tests work on copies of it."""
    return generate(released, tmp_path_factory.mktemp("generated") / "project")


@pytest.fixture
def project(generated: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(generated, copy, symlinks=True)
    return copy


def test_answers_file_records_every_answer_and_the_template(generated: Path, released: Path) -> None:
    recorded = answers(generated)
    assert recorded["_src_path"] == str(released)
    assert recorded["_commit"] == "0.1.0"
    # The first copy recorded that no file was there before it.
    assert {name: recorded[name] for name in DEFAULT_ANSWERS} == {**DEFAULT_ANSWERS, "owned_files": []}
    assert not any(name in recorded for name in ("crate_to_root", "apple_targets", "size_limit_bytes"))


def test_update_keeps_edits_takes_changes_reports_conflicts_and_validates_once(project: Path) -> None:
    crate = project / "cco"
    # The owner's edits: a Makefile line and a dependency (neither touches what 0.2.0 changes),
    # a README title of their own (the line 0.2.0 changes: a conflict), a deleted file.
    makefile = crate / "Makefile"
    makefile.write_text(makefile.read_text() + "\n# my own target notes\n")
    cargo_toml = crate / "Cargo.toml"
    cargo_toml.write_text(cargo_toml.read_text().replace("[build-dependencies]", 'itoa = "1"\n\n[build-dependencies]'))
    readme = project / "README.md"
    readme.write_text(readme.read_text().replace("# cco\n", "# My orchestra\n", 1))
    (crate / "docs" / "CROSS_COMPILE.md").unlink()
    commit(project, "my edits")

    # As the owner types it.
    result = copier_cli(
        "update", "--trust", "--defaults", "--data", "proxy_port=9000", cwd=project, validate="quick", check=False
    )
    output = result.stdout + result.stderr

    assert NEW_MAKEFILE_LINE in makefile.read_text(), "the new version's change is there"
    assert "# my own target notes" in makefile.read_text(), "the owner's edit survives"
    assert 'itoa = "1"' in cargo_toml.read_text()
    assert not (crate / "docs" / "CROSS_COMPILE.md").exists(), "a deleted file stays deleted"
    merged = readme.read_text()
    assert "<<<<<<< before updating" in merged and ">>>>>>> after updating" in merged
    assert "# My orchestra" in merged and "(template 0.2.0)" in merged, "both sides of the conflict are kept"
    assert "UU README.md" in run(["git", "status", "--porcelain"], project).stdout

    recorded = answers(project)
    assert recorded["_commit"] == "0.2.0"
    assert recorded["proxy_port"] == 9000
    assert recorded["log_level"] == "info", "a new question takes its default without prompting"
    assert json.loads((project / "config" / "orchestra-config.json").read_text())["server"]["proxy_port"] == 9000

    assert output.count("validating ") == 1, output
    assert f"validating {project}" in output
    assert "cco/docs/CROSS_COMPILE.md: deleted in the repository before this update, which keeps them deleted" in output
    # The conflict is the one failure, and it fails the update until the owner resolves it.
    assert "✗ conflicts: conflict markers in README.md:1 (edit each to what you want), then commit" in output
    assert "validation (quick): " in output and " 1 failed" in output, output
    assert result.returncode != 0


def test_conflicts_can_go_to_rej_files(project: Path, capfd: pytest.CaptureFixture[str]) -> None:
    readme = project / "README.md"
    readme.write_text(readme.read_text().replace("# cco\n", "# My orchestra\n", 1))
    commit(project, "my title")
    update(project, capfd, conflict="rej")
    assert readme.read_text().startswith("# cco (template 0.2.0)\n"), "the file takes the new version"
    rejected = (project / "README.md.rej").read_text()
    assert "+# My orchestra" in rejected, "the owner's change is kept beside it, to apply by hand"


def test_update_from_the_old_version_equals_a_fresh_render_of_the_new_one(
    released: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    data = {"crate_name": "orchestra", "proxy_port": 9100, "lto": "thin"}
    updated = generate(released, tmp_path / "updated", **data)
    update(updated, capfd)
    fresh = tmp_path / "fresh"
    copier.run_copy(str(released), fresh, data=data, defaults=True, unsafe=True, quiet=True)
    assert files_of(updated) == files_of(fresh)


def test_a_dirty_repository_is_refused(project: Path) -> None:
    (project / "README.md").write_text("uncommitted\n")
    result = copier_cli("update", "--trust", "--defaults", cwd=project, check=False)
    assert result.returncode != 0
    assert "Destination repository is dirty; cannot continue" in result.stdout + result.stderr
    assert (project / "README.md").read_text() == "uncommitted\n", "nothing of the owner's is touched"


MIGRATIONS = """  - version: "0.2.0"
    when: "{{ _stage == 'before' }}"
    command: ["{{ _copier_python }}", "{{ _copier_conf.src_path }}/hooks/migrate.py", ".",
              "adopt-default", "cache_size_mb", "200", "256"]
  - version: "0.2.0"
    when: "{{ _stage == 'before' }}"
    command: ["{{ _copier_python }}", "{{ _copier_conf.src_path }}/hooks/migrate.py", ".",
              "rename-question", "cache_ttl_hours", "cache_ttl"]
  - version: "0.2.0"
    when: "{{ true }}"
    command: ["{{ _copier_python }}", "{{ _copier_conf.src_path }}/hooks/migrate.py", ".",
              "move-file", "{crate_dir}/docs/CROSS_COMPILE.md", "{crate_dir}/docs/cross-compile.md",
              "--stage", "{{ _stage }}"]
"""


def release_with_migrations(template: Path) -> None:
    """0.2.0 renames cache_ttl_hours to cache_ttl, defaults cache_size_mb to 256 and moves the
    cross-compile guide: changes a merge cannot make alone."""
    copier_yml = template / "copier.yml"
    text = copier_yml.read_text().replace("cache_ttl_hours", "cache_ttl")
    copier_yml.write_text(re.sub(r"(cache_size_mb:\n(?:  .*\n)*?  default: )200", r"\g<1>256", text))
    for path in (template / "template").rglob("*"):
        if path.is_file():
            path.write_text(path.read_text().replace("cache_ttl_hours", "cache_ttl"))
    docs = template / "template" / "{{ crate_dir }}" / "docs"
    (docs / "CROSS_COMPILE.md.jinja").rename(docs / "cross-compile.md.jinja")
    release_next_version(template, migrations=MIGRATIONS)


def test_migrations_run_once_and_carry_answers_and_files_forward(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    template = snapshot_template(tmp_path / "template", tag="0.1.0")
    kept_default = generate(template, tmp_path / "defaults", cache_ttl_hours=12)
    guide = kept_default / "cco" / "docs" / "CROSS_COMPILE.md"
    guide.write_text(guide.read_text() + "\nMy own note on signing.\n")
    commit(kept_default, "a note in the guide")
    release_with_migrations(template)

    output = update(kept_default, capfd, validate="quick")
    # Three migrations, the move at both stages: each ran once per stage.
    assert output.count("migration: ") == 5, output
    assert "migration: adopt-default owned_files: kept [] (not the old default None)" in output
    recorded = answers(kept_default)
    assert recorded["cache_ttl"] == 12 and "cache_ttl_hours" not in recorded, "the renamed question keeps its answer"
    assert recorded["cache_size_mb"] == 256, "an untouched old default adopts the new one"
    config = json.loads((kept_default / "config" / "orchestra-config.json").read_text())
    assert config["cache"] == {"size_mb": 256, "ttl_hours": 12}
    moved = kept_default / "cco" / "docs" / "cross-compile.md"
    assert moved.exists() and not guide.exists()
    assert "My own note on signing." in moved.read_text(), output

    # adopt-default leaves an answer the owner chose.
    customised = tmp_path / "customised"
    customised.mkdir()
    (customised / ".copier-answers.yml").write_text("cache_size_mb: 512\n")
    migrate = str(template / "hooks" / "migrate.py")
    kept = run(["python3", migrate, str(customised), "adopt-default", "cache_size_mb", "200", "256"], customised)
    assert "kept 512" in kept.stdout, kept.stdout
    assert answers(customised)["cache_size_mb"] == 512, "a user's own choice is kept"

    # Idempotent: run again on the migrated repository, each finds nothing to do.
    for command in (
        ["rename-question", "cache_ttl_hours", "cache_ttl"],
        ["adopt-default", "cache_size_mb", "200", "256"],
        ["move-file", "cco/docs/CROSS_COMPILE.md", "cco/docs/cross-compile.md", "--stage", "before"],
        ["move-file", "cco/docs/CROSS_COMPILE.md", "cco/docs/cross-compile.md", "--stage", "after"],
    ):
        again = run(["python3", migrate, str(kept_default), *command], kept_default)
        assert "nothing to do" in again.stdout or "kept" in again.stdout


def test_changing_crate_dir_carries_the_owners_edits(project: Path) -> None:
    """The crate moves to the root: every edit of the owner's goes with it, and a file they had
    deleted stays deleted, each said in a line."""
    crate = project / "cco"
    (crate / "Makefile").write_text((crate / "Makefile").read_text() + "\n# my own target notes\n")
    cargo_toml = crate / "Cargo.toml"
    cargo_toml.write_text(cargo_toml.read_text().replace("[build-dependencies]", 'itoa = "1"\n\n[build-dependencies]'))
    (crate / "src" / "main.rs").write_text("// my comment\n" + (crate / "src" / "main.rs").read_text())
    (crate / "docs" / "CROSS_COMPILE.md").unlink()
    commit(project, "my edits")

    result = copier_cli("update", "--trust", "--defaults", "--data", "crate_dir=.", cwd=project, validate="quick")
    assert not crate.exists()
    assert "# my own target notes" in (project / "Makefile").read_text()
    assert NEW_MAKEFILE_LINE in (project / "Makefile").read_text(), "and the new version's change"
    assert 'itoa = "1"' in (project / "Cargo.toml").read_text()
    assert (project / "src" / "main.rs").read_text().startswith("// my comment\n")
    assert not (project / "docs" / "CROSS_COMPILE.md").exists(), "a file the owner deleted stays deleted"
    for line in [
        "update: cco/Makefile moved to Makefile with your edits",
        "update: cco/Cargo.toml moved to Cargo.toml with your edits",
        "update: cco/src/main.rs moved to src/main.rs with your edits",
        "update: docs/CROSS_COMPILE.md kept deleted (you had deleted cco/docs/CROSS_COMPILE.md)",
    ]:
        assert line in result.stdout, result.stdout
    assert " 0 failed" in result.stdout


@pytest.fixture(scope="module")
def dropping(released: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The template at 0.1.0, then a 0.2.0 that no longer renders the scripts (the Makefile's
    scripts/make.sh among them) nor the cross-compiling guide."""
    template = shutil.copytree(released, tmp_path_factory.mktemp("dropping") / "template", symlinks=True)
    run(["git", "tag", "-d", "0.2.0"], template)
    run(["git", "reset", "-q", "--hard", "0.1.0"], template)
    shutil.rmtree(template / "template" / "{{ crate_dir }}" / "scripts")
    (template / "template" / "{{ crate_dir }}" / "docs" / "CROSS_COMPILE.md.jinja").unlink()
    commit_template(template, "version 0.2.0 drops the scripts and the guide", "0.2.0")
    return template


REMOVED_WITH_EDITS = (
    "update: cco/scripts/analyze-size.sh was removed by this update, and it had edits of yours: "
    "`git checkout HEAD -- cco/scripts/analyze-size.sh` brings it back"
)


def test_a_file_the_template_drops_is_never_dropped_silently(
    generated: Path, released: Path, dropping: Path, tmp_path: Path
) -> None:
    """A new version no longer renders a file the owner edited: the update says which, and how
    to get it back; an unedited one goes without a word."""
    project = shutil.copytree(generated, tmp_path / "project", symlinks=True)
    answers_file = project / ".copier-answers.yml"
    answers_file.write_text(answers_file.read_text().replace(str(released), str(dropping)))
    script = project / "cco" / "scripts" / "analyze-size.sh"
    script.write_text(script.read_text() + "# my addition\n")
    commit(project, "my edit of the size analysis")

    result = copier_cli("update", "--trust", "--defaults", cwd=project, check=False)
    assert not script.exists()
    assert REMOVED_WITH_EDITS in result.stdout
    assert "CROSS_COMPILE.md" not in result.stdout.split("validating")[0], "unedited: no word"
    run(["git", "checkout", "HEAD", "--", "cco/scripts/analyze-size.sh"], project)
    assert script.read_text().endswith("# my addition\n")


def test_an_edit_in_the_first_commit_counts_and_validation_names_what_the_update_removed(
    dropping: Path, tmp_path: Path
) -> None:
    """The most common history: `copier copy`, an edit, then one first commit of both. The edit
    is measured from what the template rendered, so the update names the file it removes; the
    validation says the update removed the files (not the owner), and fails the Makefile whose
    recipes run a script that is gone."""
    project = tmp_path / "project"
    copier.run_copy(str(dropping), project, defaults=True, unsafe=True, vcs_ref="0.1.0", quiet=True)
    script = project / "cco" / "scripts" / "analyze-size.sh"
    script.write_text(script.read_text() + "# my addition\n")
    git_init(project)  # the render and the edit in one commit

    result = copier_cli("update", "--trust", "--defaults", cwd=project, validate="quick", check=False)
    output = result.stdout + result.stderr
    assert not script.exists()
    assert REMOVED_WITH_EDITS in result.stdout, output
    assert "deleted in the repository before this update" not in output, "the owner deleted nothing"
    structure = next(line for line in output.splitlines() if "structure:" in line)
    assert "cco/docs/CROSS_COMPILE.md" in structure and "cco/scripts/analyze-size.sh" in structure
    assert structure.endswith(": removed by this update (the template no longer renders them)"), structure
    makefile = next(line for line in output.splitlines() if "makefile:" in line)
    assert makefile.startswith(
        "✗ makefile: cco/Makefile: cco/scripts/make.sh is not there (removed by this update: "
        "`git checkout HEAD -- cco/scripts/make.sh` brings it back), and `make install`"
    ), makefile
    assert result.returncode != 0


def test_the_guard_stops_an_update_it_cannot_measure_edits_for(generated: Path, tmp_path: Path) -> None:
    """Without the template at the recorded version the guard cannot tell an edit from the
    template's text: it stops the update, naming why, before anything changed."""
    project = shutil.copytree(generated, tmp_path / "project", symlinks=True)
    answers_file = project / ".copier-answers.yml"
    answers_file.write_text(re.sub(r"_commit: .*", "_commit: no-such-version", answers_file.read_text()))
    result = run([sys.executable, str(ROOT / "hooks" / "migrate.py"), ".", "guard", "--stage", "before"], project,
                 check=False)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith(
        "error: update guard: could not render the template at the version .copier-answers.yml records ("
    ), result.stderr
    assert result.stderr.rstrip().endswith("the update stops here, before it changed anything")


def template_path(path: str) -> str:
    """A template file's path as migrations name the rendered file: {crate_dir} for the crate's
    folder, without conditional parts or the .jinja suffix."""
    path = re.sub(r"\{% if [^%]*%\}|\{% endif %\}", "", path).replace("{{ crate_dir }}", "{crate_dir}")
    return path.removesuffix(".jinja")


def test_no_template_file_disappears_without_a_migration(copier_yml: dict[str, Any]) -> None:
    listed = [
        line for line in (ROOT / "tests" / "released-template-files.txt").read_text().splitlines() if line.strip()
    ]
    entries = [line.partition(" # ") for line in listed if not line.startswith("#")]
    released = {path.strip() for path, _, _ in entries}
    dropped = {path.strip() for path, _, note in entries if note.startswith("dropped:")}
    current = {
        path.relative_to(ROOT / "template").as_posix() for path in (ROOT / "template").rglob("*") if path.is_file()
    }
    moved = {
        template_path(command[command.index("move-file") + 1])
        for command in (migration.get("command", []) for migration in copier_yml["_migrations"])
        if "move-file" in command
    }
    # A file whose rendered path stays (only its .jinja suffix came or went) is not gone.
    kept = {template_path(path) for path in current}
    gone = sorted(path for path in released - current - dropped if template_path(path) not in moved | kept)
    assert not gone, f"{gone}: gone from template/ with no move-file migration (docs/UPDATING.md) nor 'dropped:'"
    new = sorted(current - released)
    assert not new, f"{new}: add to tests/released-template-files.txt"


def test_a_relative_template_path_is_recorded_so_that_update_finds_it(released: Path, tmp_path: Path) -> None:
    """`copier copy --trust template my-cco` from where the template is: Copier records the
    path as typed, and `copier update` runs from inside the project, where it means nothing."""
    shutil.copytree(released, tmp_path / "cco-template", symlinks=True)
    copier_cli("copy", "--trust", "--defaults", "--vcs-ref", "0.1.0", "cco-template", "my-cco", cwd=tmp_path)
    project = tmp_path / "my-cco"
    assert answers(project)["_src_path"] == str(tmp_path / "cco-template")
    git_init(project)
    copier_cli("update", "--trust", "--defaults", cwd=project)
    assert answers(project)["_commit"] == "0.2.0"


def test_recopy_without_a_terminal_keeps_what_is_there(project: Path) -> None:
    """Without --overwrite, recopy asks nothing and replaces nothing (the answers file included);
    it only adds what is missing."""
    makefile = project / "cco" / "Makefile"
    makefile.write_text(makefile.read_text() + "\n# mine\n")
    (project / "cco" / "install.sh").unlink()
    commit(project, "my edits")
    recorded = (project / ".copier-answers.yml").read_text()
    copier_cli("recopy", "--trust", "--defaults", cwd=project)
    assert makefile.read_text().endswith("\n# mine\n")
    assert (project / "cco" / "install.sh").is_file(), "what is missing is rendered"
    assert (project / ".copier-answers.yml").read_text() == recorded


@pytest.mark.slow  # a prompt at a time, half a second each
def test_the_interactive_update_asks_again_with_the_recorded_answers(project: Path, copier_yml: dict[str, Any]) -> None:
    """`copier update --trust` at a terminal: every question again, the recorded answer as its
    default, so Enter throughout keeps them all and takes the new version."""
    recorded = answers(project)
    status, shown = drive_in_terminal(
        [sys.executable, "-m", "copier", "update", "--trust"],
        project,
        {"CCO_VALIDATE": "quick", "TERM": "xterm", "COLUMNS": "200"},
    )
    assert status == 0, shown
    assert "owned_files" not in asked_questions(shown, copier_yml)
    assert {"project_name", "proxy_port", "crate_dir"} <= asked_questions(shown, copier_yml)
    after = answers(project)
    assert after["_commit"] == "0.2.0"
    assert {name: after[name] for name in DEFAULT_ANSWERS if name != "owned_files"} == {
        name: recorded[name] for name in DEFAULT_ANSWERS if name != "owned_files"
    }
