"""Releasing the template: .ci/release_from_changelog.py, which .github/workflows/release.yml
runs on main, against a scratch clone with a bare `origin`: the first release, a second one,
an unchanged changelog, and refused headings. `gh` (GitHub's API) is a stand-in on PATH that
records its arguments and the notes it was given; the tags are real and really pushed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import GIT_IDENTITY, ROOT, GitHubCli, run

SCRIPT = ROOT / ".ci" / "release_from_changelog.py"


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    origin = tmp_path / "origin.git"
    run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], tmp_path)
    run(["git", "clone", "-q", str(origin), "clone"], tmp_path)
    return tmp_path / "clone"


def change_log(clone: Path, text: str) -> None:
    (clone / "CHANGELOG.md").write_text(text)
    run(["git", "add", "CHANGELOG.md"], clone)
    run(["git", "commit", "-q", "-m", "changelog"], clone, env=GIT_IDENTITY)
    run(["git", "push", "-q", "origin", "HEAD:main"], clone)


def release(clone: Path, check: bool = True) -> tuple[Any, list[dict[str, Any]]]:
    gh = GitHubCli(clone.parent)
    result = run([sys.executable, str(SCRIPT)], clone, env=gh.env(), check=check)
    return result, gh.calls()


def origin_tags(clone: Path) -> list[str]:
    return run(["git", "ls-remote", "--tags", "--refs", "origin"], clone).stdout.split()[1::2]


def test_first_and_second_release_then_nothing_when_unchanged(clone: Path) -> None:
    change_log(clone, "# Changelog\n\n## Unreleased\n\n- Not yet.\n")
    result, calls = release(clone)
    assert result.stdout == "CHANGELOG.md has no version heading yet; nothing to release\n"
    assert calls == [] and origin_tags(clone) == []

    change_log(clone, "# Changelog\n\n## 0.1.0 (2026-11-01)\n\n- The first release.\n")
    result, calls = release(clone)
    assert result.stdout == (
        "released 0.1.0: tag pushed, GitHub Release https://github.com/acme/cco-template/releases/tag/0.1.0\n"
    )
    assert origin_tags(clone) == ["refs/tags/0.1.0"]
    first = run(["git", "rev-parse", "0.1.0^{commit}"], clone).stdout
    assert first == run(["git", "rev-parse", "HEAD"], clone).stdout
    assert run(["git", "cat-file", "-t", "0.1.0"], clone).stdout == "tag\n"  # annotated
    (call,) = calls
    assert call["arguments"][:5] == ["release", "create", "0.1.0", "--verify-tag", "--title"]
    assert call["notes"] == "- The first release.\n"

    result, calls = release(clone)  # the same changelog again
    assert result.stdout == "0.1.0 is released already (tag 0.1.0); nothing to do\n"
    assert calls == []

    change_log(
        clone,
        "# Changelog\n\n## Unreleased\n\n- Later.\n\n"
        "## 0.2.0\n\n- Second.\n- More.\n\n"
        "## 0.1.0 (2026-11-01)\n\n- First.\n",
    )
    result, calls = release(clone)
    assert result.stdout.startswith("released 0.2.0: ")
    assert origin_tags(clone) == ["refs/tags/0.1.0", "refs/tags/0.2.0"]
    assert calls[0]["notes"] == "- Second.\n- More.\n"
    # Copier reads the newest PEP 440 tag as the template's release.
    assert run(["git", "describe", "--tags", "--abbrev=0"], clone).stdout == "0.2.0\n"


@pytest.mark.parametrize(
    ("changelog", "message"),
    [
        ("## v0.2.0\n", "CHANGELOG.md:3: '## v0.2.0' is not a version heading"),
        ("## 0.2\n", "CHANGELOG.md:3: '## 0.2' is not a version heading"),
        ("## 0.2.0 - soon\n", "CHANGELOG.md:3: '## 0.2.0 - soon' is not a version heading"),
        ("## Release notes\n", "CHANGELOG.md:3: '## Release notes' is not a version heading"),
        (
            "## 0.1.0\n\n- a\n\n## 0.2.0\n\n- b\n",
            "CHANGELOG.md:3: 0.1.0 must be newer than 0.2.0 below it (line 7): the newest version comes first",
        ),
        ("## 0.2.0rc1\n\n- a\n\n## 0.2.0\n", "CHANGELOG.md:3: 0.2.0rc1 must be newer than 0.2.0 below it (line 7)"),
    ],
)
def test_a_malformed_heading_is_refused_naming_the_line_and_nothing_is_tagged(
    clone: Path, changelog: str, message: str
) -> None:
    change_log(clone, "# Changelog\n\n" + changelog)
    result, calls = release(clone, check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {message}"), result.stderr
    assert calls == [] and origin_tags(clone) == []


def test_a_heading_older_than_a_released_tag_is_refused(clone: Path) -> None:
    change_log(clone, "# Changelog\n\n## 0.2.0\n\n- b\n")
    release(clone)
    change_log(clone, "# Changelog\n\n## 0.1.5\n\n- a\n")
    result, calls = release(clone, check=False)
    assert result.returncode == 1
    assert "error: CHANGELOG.md's newest version, 0.1.5, is older than the tag 0.2.0" in result.stderr
    assert calls == [] and origin_tags(clone) == ["refs/tags/0.2.0"]


def test_the_release_workflow_runs_the_script_on_main() -> None:
    workflow = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    assert "run: python3 .ci/release_from_changelog.py" in workflow
    assert "branches: [main]" in workflow and "fetch-depth: 0" in workflow


def test_this_repositorys_changelog_is_one_the_script_reads() -> None:
    """A heading the release script refuses would stop the next release on main: caught here."""
    code = (
        "import pathlib, release_from_changelog as r; print(len(r.sections(pathlib.Path('CHANGELOG.md').read_text())))"
    )
    result = run([sys.executable, "-c", code], ROOT, env={"PYTHONPATH": str(ROOT / ".ci")})
    assert int(result.stdout) >= 1
