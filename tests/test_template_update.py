"""A generated repository keeps itself current: .github/scripts/template_update.py, which the
template-update workflow runs, against a local template with two tagged versions (0.1.0 and
0.2.0, each with its CHANGELOG section): already current, behind, behind with a conflict.

Everything runs for real (Copier, git, a pushed branch in a bare `origin`) but GitHub's API:
`gh` is a stand-in on PATH that records each call (and the pull request body it was given)
and answers `gh pr list` with what the test sets. It does not check the arguments against
GitHub's API beyond that; the real gh is what the workflow runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import copier
import pytest

from helpers import GIT_IDENTITY, GitHubCli, commit, commit_template, git_init, run, snapshot_template, tool
from test_update import NEW_MAKEFILE_LINE, release_next_version

pytestmark = pytest.mark.slow

SCRIPT = ".github/scripts/template_update.py"
CHANGELOG_010 = "# Changelog\n\n## 0.1.0\n\n- The first release.\n"
CHANGELOG_020 = "# Changelog\n\n## 0.2.0\n\n- The Makefile gains a line.\n\n## 0.1.0\n\n- The first release.\n"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return released_template(tmp_path_factory.mktemp("template") / "template")


# A migration of 0.2.0 that writes the environment of its own process and of each process
# above it (/proc/PID/environ, readable by the same user) to template-environment.json in the
# project, which the update then commits: what the template's code could read.
RECORD_ENVIRONMENT = """  - version: "0.2.0"
    when: "{{ _stage == 'after' }}"
    command:
      - "{{ _copier_python }}"
      - "-c"
      - |
        import json, os
        seen, pid = {}, os.getpid()
        while pid > 0:
            try:
                environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\\0")
                status = open(f"/proc/{pid}/status").read().splitlines()
            except OSError:
                break
            seen[str(pid)] = [entry.decode(errors="replace") for entry in environ if entry]
            pid = int(next(line for line in status if line.startswith("PPid:")).split()[1])
        open("template-environment.json", "w").write(json.dumps(seen, indent=1))
"""


def released_template(template: Path, migrations: str = "") -> Path:
    """This template released as 0.1.0, then as 0.2.0 (with `migrations`), each with its changelog."""
    snapshot_template(template, tag=None)
    (template / "CHANGELOG.md").write_text(CHANGELOG_010)
    commit_template(template, "release 0.1.0", "0.1.0")
    (template / "CHANGELOG.md").write_text(CHANGELOG_020)
    release_next_version(template, migrations)
    return template


def generate(template: Path, root: Path, version: str) -> Path:
    """A repository generated at `version`, committed and pushed to a bare `origin` beside it."""
    project = root / "project"
    copier.run_copy(str(template), project, defaults=True, unsafe=True, vcs_ref=version, quiet=True)
    git_init(project)
    run(["git", "init", "-q", "--bare", "-b", "main", str(root / "origin.git")], root)
    run(["git", "remote", "add", "origin", str(root / "origin.git")], project)
    run(["git", "push", "-q", "origin", "main"], project)
    return project


def update(project: Path, tmp_path: Path, **env: str) -> tuple[str, list[dict[str, Any]]]:
    """Runs the script as the workflow's two jobs do: `update` in the checkout, with no token,
    then, when it made a commit, `publish` with GH_TOKEN in a fresh clone of origin (the next
    job's runner), from the artifact folder; returns what they printed and the gh calls."""
    gh = GitHubCli(tmp_path)
    runs = len(list(tmp_path.glob("artifact-*")))
    artifact, clone = tmp_path / f"artifact-{runs}", tmp_path / f"publish-{runs}"
    updated = run([sys.executable, SCRIPT, "update", str(artifact)], project, env=gh.env(BASE="main", **GIT_IDENTITY))
    if not artifact.exists():
        return updated.stdout, gh.calls()
    run(["git", "clone", "--quiet", str(project.parent / "origin.git"), str(clone)], tmp_path)
    published = run([sys.executable, SCRIPT, "publish", str(artifact)], clone,
                    env=gh.env(BASE="main", GH_TOKEN="a-write-token", **GIT_IDENTITY, **env))  # fmt: skip
    return updated.stdout + published.stdout, gh.calls()


def branch_file(project: Path, name: str) -> str:
    """A file as the pushed template-update branch has it."""
    return run(
        ["git", "--git-dir", str(project.parent / "origin.git"), "show", f"template-update:{name}"], project
    ).stdout


def test_a_current_repository_is_left_alone(template: Path, tmp_path: Path) -> None:
    project = generate(template, tmp_path, "0.2.0")
    printed, calls = update(project, tmp_path)
    assert printed == "up to date: 0.2.0 is the template's newest version on main; nothing to do\n"
    assert calls == []
    origin = ["git", "--git-dir", str(tmp_path / "origin.git")]
    assert run([*origin, "for-each-ref", "--format=%(refname:short)", "refs/heads"], tmp_path).stdout == "main\n"


def test_a_repository_behind_gets_one_pull_request_with_the_changelog(template: Path, tmp_path: Path) -> None:
    project = generate(template, tmp_path, "0.1.0")
    printed, calls = update(project, tmp_path)
    assert printed == "opened https://github.com/acme/cco/pull/1\n"
    assert [call["arguments"][:2] for call in calls] == [["pr", "list"], ["pr", "create"]]
    create = calls[1]
    assert "--draft" not in create["arguments"]
    assert create["arguments"][create["arguments"].index("--title") + 1] == "Update the template to 0.2.0"
    assert create["body"].startswith("This pull request takes the template from 0.1.0 to 0.2.0")
    assert "### 0.2.0\n\n- The Makefile gains a line." in create["body"]
    assert "0.1.0\n\n- The first release" not in create["body"]
    assert "conflict" not in create["body"]
    assert "_commit: 0.2.0" in branch_file(project, ".copier-answers.yml")
    assert NEW_MAKEFILE_LINE in branch_file(project, "cco/Makefile")

    # The next run (a fresh checkout of main), with that pull request open, refreshes it.
    run(["git", "checkout", "-q", "main"], project)
    printed, calls = update(project, tmp_path, GH_PR_LIST='[{"number": 7}]')
    assert printed == "refreshed pull request #7\n"
    assert [call["arguments"] for call in calls][1:] == [
        ["pr", "edit", "7", "--title", "Update the template to 0.2.0", "--body-file", calls[1]["arguments"][-1]],
        ["pr", "ready", "7"],
    ]


def test_a_conflict_makes_a_draft_that_names_the_file_and_fails_ci(template: Path, tmp_path: Path) -> None:
    project = generate(template, tmp_path, "0.1.0")
    readme = project / "README.md"
    readme.write_text(readme.read_text().replace("# cco\n", "# Our orchestra\n", 1))
    commit(project, "Our own title")
    run(["git", "push", "-q", "origin", "main"], project)

    printed, calls = update(project, tmp_path)
    assert printed.splitlines() == [
        "opened https://github.com/acme/cco/pull/1",
        "conflicts to resolve in 1 files: README.md",
    ]
    create = calls[-1]
    assert "--draft" in create["arguments"]
    title = create["arguments"][create["arguments"].index("--title") + 1]
    assert title == "Update the template to 0.2.0 (1 conflicts to resolve)"
    assert "**1 files have conflicts**" in create["body"] and "- `README.md`" in create["body"]
    assert "<<<<<<< before updating" in branch_file(project, "README.md")

    # The generated CI's first step fails on that branch, naming the file and line.
    run(["git", "checkout", "-q", "template-update"], project)
    check = run(["cco/scripts/check-merge.sh"], project, check=False)
    assert check.returncode == 1
    assert check.stderr.startswith("error: conflict markers left by a merge")
    assert "  README.md:1\n" in check.stderr


def test_check_update_reports_the_newer_version_then_none(template: Path, tmp_path: Path) -> None:
    """`copier check-update` (Copier 9.19) in a repository rendered from a tagged version."""
    project = generate(template, tmp_path, "0.1.0")
    check = [sys.executable, "-m", "copier", "check-update", "--output-format", "json"]
    assert json.loads(run(check, project).stdout) == {
        "update_available": True,
        "current_version": "0.1.0",
        "latest_version": "0.2.0",
    }
    plain = run([sys.executable, "-m", "copier", "check-update"], project)
    assert "Current version is 0.1.0, latest version is 0.2.0." in plain.stdout + plain.stderr
    run([sys.executable, "-m", "copier", "update", "--trust", "--defaults"], project, env={"CCO_VALIDATE": "none"})
    commit(project, "Template 0.2.0")
    assert json.loads(run(check, project).stdout)["update_available"] is False


def test_run_by_hand_it_updates_and_publishes_in_one_go(template: Path, tmp_path: Path) -> None:
    """No argument: both steps in one process, as a person with their own gh login runs it."""
    project = generate(template, tmp_path, "0.1.0")
    gh = GitHubCli(tmp_path)
    result = run([sys.executable, SCRIPT], project, env=gh.env(BASE="main", **GIT_IDENTITY))
    assert result.stdout == "opened https://github.com/acme/cco/pull/1\n"
    assert [call["arguments"][:2] for call in gh.calls()] == [["pr", "list"], ["pr", "create"]]
    assert "_commit: 0.2.0" in branch_file(project, ".copier-answers.yml")
    refused = run([sys.executable, SCRIPT, "publish"], project, check=False)
    assert refused.returncode == 1 and "usage: template_update.py [update DIR | publish DIR]" in refused.stderr


def test_the_script_is_what_the_workflow_runs(template: Path, tmp_path: Path) -> None:
    project = generate(template, tmp_path, "0.2.0")
    workflow = (project / ".github" / "workflows" / "template-update.yml").read_text()
    assert f'python {SCRIPT} update "$RUNNER_TEMP/template-update"' in workflow
    assert f'python3 {SCRIPT} publish "$RUNNER_TEMP/template-update"' in workflow
    run([tool("ruff", "-e '.[lint]'"), "check", "--isolated", "--line-length", "120", SCRIPT], project)
