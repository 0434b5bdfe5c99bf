"""Hostile and odd answers: every free-text and number question against a corpus of values a
careless or malicious user could give. Each is refused with the question's rule, or rendered
so that every generated file still parses, with the types intended, and nothing runs.

Slow only in number: a few hundred Copier calls and some sixty renders, nothing compiled.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from cco_validate.answers import ANSWERS_FILE
from helpers import DEFAULT_ANSWERS, homebrew_formula, run

pytestmark = pytest.mark.slow

# `{marker}` stands for a file that must never come to exist: a command that ran made it.
TEXTS = [
    'say "hi"',
    "it's",
    "back\\slash",
    "two\nlines",
    "carriage\rreturn",
    "bell\x07",
    "escape\x1b[31m",
    "delete\x7f",
    "tab\there",
    "$(touch {marker})",
    "`touch {marker}`",
    "; touch {marker}",
    "| touch {marker}",
    "& touch {marker} &",
    "<in >{marker}",
    ";:>{marker}",
    "&&:>{marker}",
    "|:>{marker}",
    "# not a comment",
    "${{ github.token }}",
    "{{ 7 * 7 }}",
    "{% if true %}x{% endif %}",
    "{# note #}",
    "x" * 10_000,
    "ünïcödé ✓ 日本",
    "true",
    "null",
    "010",
    "yes",
    "~",
    "",
    " leading space",
]
NUMBERS = ["nan", "inf", "-inf", "-1", "0", "1e309", "99999999999999999999", "1.5", "0x10", "8 ", "", "true", "null"]
FREE_TEXT = [
    "project_name",
    "crate_name",
    "description",
    "repository_url",
    "author",
    "crate_dir",
    "rust_version",
    "install_dir",
    "macos_deployment_target",
    "release_toolchain",
    "minisign_public_key",
]
NUMERIC = ["codegen_units", "size_limit_mb", "proxy_port", "dashboard_port", "cache_size_mb", "cache_ttl_hours"]
MAKE_TARGETS = ["build", "test", "release", "install", "run", "clean", "fmt", "lint", "check-size", "docker-build"]

# Questions whose rule wants a shape (a URL, an absolute path, a version, a folder): the corpus
# again behind a valid beginning, so the rest of the value meets the rule's other half.
VALID_BEGINNINGS = {
    "repository_url": "https://example.invalid/",
    "install_dir": "/opt/",
    "rust_version": DEFAULT_ANSWERS["rust_version"],
    "crate_dir": "cco/",
    "macos_deployment_target": DEFAULT_ANSWERS["macos_deployment_target"],
    "release_toolchain": DEFAULT_ANSWERS["release_toolchain"],
    "minisign_public_key": "RWSgoUGIynsS9cwQIfjcVVr1DALpI+My6sG2Pi+XHO4c/gZlpcBzSJ/0",  # a key minisign -G made
}
CASES = (
    [(question, value) for question in FREE_TEXT for value in TEXTS]
    + [(question, start + value) for question, start in VALID_BEGINNINGS.items() for value in TEXTS]
    + [(question, value) for question in NUMERIC for value in NUMBERS]
)


def case_id(case: tuple[str, str]) -> str:
    question, value = case
    shown = value if len(value) < 24 else f"{value[:12]}...({len(value)})"
    return f"{question}={shown.encode('unicode_escape').decode()}"


def assert_every_file_parses(root: Path, answers: dict[str, Any], marker: Path) -> None:
    crate_dir = str(answers["crate_dir"])
    crate = root / crate_dir
    cargo = tomllib.loads((crate / "Cargo.toml").read_text())
    assert cargo["package"]["name"] == answers["crate_name"]
    assert cargo["package"]["description"] == answers["description"]
    if answers["author"]:
        assert cargo["package"]["authors"] == [answers["author"]]
    json.loads((root / "config" / "orchestra-config.json").read_text())

    recorded = yaml.safe_load((root / ANSWERS_FILE).read_text())
    for question in FREE_TEXT + NUMERIC:
        assert recorded[question] == answers[question], f"{question} changed type or value in {ANSWERS_FILE}"
    workflow = yaml.safe_load((root / ".github" / "workflows" / "build.yml").read_text())
    for job in workflow["jobs"].values():
        directory = job.get("defaults", {}).get("run", {}).get("working-directory")
        assert directory is None or directory == crate_dir, f"working-directory is {directory!r}"
    compose = yaml.safe_load((crate / "docker-compose.yml").read_text())
    assert list(compose["services"]) == [answers["crate_name"]], "the service name stays a string"

    for generated in [".github/workflows/release.yml", ".github/dependabot.yml"]:
        assert isinstance(yaml.safe_load((root / generated).read_text()), dict)

    for script in ["install.sh", "scripts/analyze-size.sh", "scripts/release.sh"]:
        run(["bash", "-n", str(crate / script)], crate)
    run(["bash", str(crate / "install.sh"), "--help"], crate)
    assert_the_formula_carries_the_answers(crate, answers, marker.parent / "dist")
    for target in MAKE_TARGETS:
        run(["make", "-n", target], crate)
    assert not marker.exists(), "an answer ran a command"


def assert_the_formula_carries_the_answers(crate: Path, answers: dict[str, Any], dist: Path) -> None:
    """The release's Homebrew formula, written by scripts/release.sh and read by a stand-in of
    Homebrew's DSL (tests/homebrew/formula.rb): the answers arrive as plain strings."""
    dist.mkdir()
    (dist / f"{answers['crate_name']}-x86_64-unknown-linux-gnu.tar.gz").write_bytes(b"archive")
    run(["bash", "scripts/release.sh", "checksums", str(dist)], crate)
    run(["bash", "scripts/release.sh", "formula", str(dist), "v0.1.0"], crate)
    shown = homebrew_formula(dist / f"{answers['crate_name']}.rb", "linux", "intel")
    if shown is None:
        return  # no ruby: tests/test_release.py skips, naming the package
    assert shown["desc"] == answers["description"]
    assert shown["homepage"] == answers["repository_url"]
    assert shown["url"].startswith(answers["repository_url"] + "/releases/download/v0.1.0/")


@pytest.mark.parametrize("case", CASES, ids=[case_id(case) for case in CASES])
def test_a_hostile_answer_is_refused_or_rendered_harmless(copie: Any, tmp_path: Path, case: tuple[str, str]) -> None:
    question, value = case
    marker = tmp_path / "ran"
    value = value.replace("{marker}", str(marker))
    result = copie.copy(extra_answers={question: value})
    if result.exception is not None:
        assert isinstance(result.exception, ValueError), repr(result.exception)
        message = str(result.exception)
        # Copier casts a number before any validator runs, and its cast error names the value only.
        cast = question in NUMERIC and message.startswith(("invalid literal for int()", "could not convert"))
        assert f"question '{question}'" in message or cast, message[:300]
        rendered = [path for path in Path(copie.test_dir).rglob("*") if path.is_file()]
        assert rendered == [], "nothing may be rendered from a refused answer"
    else:
        assert result.project_dir is not None
        answers = {**DEFAULT_ANSWERS, **result.answers}
        assert_every_file_parses(Path(result.project_dir), answers, marker)
    assert not marker.exists(), "an answer ran a command"


def test_the_corpus_covers_every_free_text_and_number_question(copier_yml: dict[str, Any]) -> None:
    asked = {
        name
        for name, details in copier_yml.items()
        if isinstance(details, dict) and "help" in details and details.get("ask", True) is not False
    }
    free = {name for name in asked if copier_yml[name]["type"] == "str" and "choices" not in copier_yml[name]}
    numbers = {name for name in asked if copier_yml[name]["type"] in {"int", "float"}}
    assert free == set(FREE_TEXT)
    assert numbers == set(NUMERIC)
    assert subprocess.run(["make", "--version"], capture_output=True, check=False).returncode == 0
