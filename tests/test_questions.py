"""copier.yml: defaults, help texts, validators, and what is never asked."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from helpers import DEFAULT_ANSWERS, ROOT, copier_cli


def questions(copier_yml: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The questions a person is asked (settings and computed values left out)."""
    return {
        name: spec for name, spec in copier_yml.items() if not name.startswith("_") and spec.get("when") is not False
    }


def test_defaults_are_the_specifications_values(copie: Any) -> None:
    result = copie.copy()
    assert result.exception is None, result.exception
    assert result.answers == DEFAULT_ANSWERS


def test_every_question_has_a_type_help_and_default(copier_yml: dict[str, Any]) -> None:
    for name, spec in questions(copier_yml).items():
        assert spec.get("type") in {"str", "int", "float", "bool", "yaml"}, name
        assert len(str(spec.get("help", ""))) > 15, f"{name} needs a help text"
        # At a terminal a help is one to three lines; reasons belong in the generated docs.
        assert len(textwrap.wrap(str(spec["help"]), 100)) <= 3, f"{name}'s help is over three lines"
        assert "default" in spec, f"{name} needs a default so --defaults never prompts"


def test_every_free_text_or_number_question_has_a_validator(copier_yml: dict[str, Any]) -> None:
    for name, spec in questions(copier_yml).items():
        if spec["type"] in {"str", "int", "float"} and "choices" not in spec and name != "author":
            assert "validator" in spec, name


def test_no_secret_is_ever_asked(copier_yml: dict[str, Any]) -> None:
    for name, spec in questions(copier_yml).items():
        assert not spec.get("secret"), name
        # A public key is what gets published; its secret half goes in a repository secret.
        words = name.removesuffix("public_key")
        assert not any(word in words for word in ("key", "token", "secret", "password")), name


def test_compose_is_asked_only_with_docker(copie: Any) -> None:
    result = copie.copy(extra_answers={"docker": False})
    assert result.exception is None, result.exception
    assert "compose" not in result.answers or result.answers["compose"] is not True


BAD_ANSWERS = [
    ({"crate_name": "my crate"}, "crate_name", "must start with a lowercase letter"),
    ({"crate_name": "Cco"}, "crate_name", "must start with a lowercase letter"),
    ({"proxy_port": 70000}, "proxy_port", "must be from 1 to 65535"),
    ({"dashboard_port": 0}, "dashboard_port", "must be from 1 to 65535"),
    ({"proxy_port": 9000, "dashboard_port": 9000}, "dashboard_port", "must differ from proxy_port"),
    ({"build_targets": []}, "build_targets", "at least one target"),
    ({"crate_dir": "../elsewhere"}, "crate_dir", "relative path of plain names"),
    ({"crate_dir": "/abs"}, "crate_dir", "relative path of plain names"),
    ({"crate_dir": "config"}, "crate_dir", "belongs to the repository layout"),
    ({"rust_version": "1.75"}, "rust_version", "1.89 or newer"),
    ({"rust_version": "1.88"}, "rust_version", "std's file locks"),
    ({"rust_version": "stable"}, "rust_version", "must look like 1.95"),
    ({"size_limit_mb": 0}, "size_limit_mb", "above 0 and at most 100000"),
    ({"macos_deployment_target": "10.11"}, "macos_deployment_target", "from 10.12 on"),
    ({"macos_deployment_target": "eleven"}, "macos_deployment_target", "such as 10.12, 11.0 or 14.5"),
    ({"codegen_units": 0}, "codegen_units", "from 1 to 256"),
    ({"cache_ttl_hours": 0}, "cache_ttl_hours", "positive whole number"),
    ({"install_dir": "bin"}, "install_dir", "absolute path"),
    ({"repository_url": "not a url"}, "repository_url", "must be an https URL of at most 500 characters"),
    ({"repository_url": "http://example.com/me/cco"}, "repository_url", "a download over plain http can be changed"),
    ({"description": 'say "hi"'}, "description", "without double quotes"),
    ({"description": "a {{ 7 * 7 }} orchestra"}, "description", "(template syntax)"),
    ({"project_name": "cco {% if x %}"}, "project_name", "(template syntax)"),
    ({"author": "{# me #}"}, "author", "(template syntax)"),
    ({"crate_name": "build"}, "crate_name", "cargo refuses Rust keywords, its own folder names"),
    ({"crate_name": "async"}, "crate_name", "cargo refuses Rust keywords"),
    ({"crate_name": "test"}, "crate_name", "the standard library's names"),
    ({"release_toolchain": "stable"}, "release_toolchain", "an exact Rust version such as 1.95.0"),
    ({"release_toolchain": "1.95"}, "release_toolchain", "three numbers: a channel like stable moves"),
    ({"release_toolchain": "1.94.1"}, "release_toolchain", "not be older than rust_version 1.95"),
    ({"minisign_public_key": "untrusted comment: 1234"}, "minisign_public_key", "the key line of a minisign key"),
    ({"minisign_public_key": "RWQ" + "a" * 40}, "minisign_public_key", "RW followed by 54 base64 characters"),
]


@pytest.mark.parametrize(("answers", "question", "rule"), BAD_ANSWERS, ids=[q for _, q, _ in BAD_ANSWERS])
def test_bad_answer_is_refused_naming_question_and_rule(
    copie: Any, answers: dict[str, Any], question: str, rule: str
) -> None:
    result = copie.copy(extra_answers=answers)
    assert isinstance(result.exception, ValueError), result
    message = str(result.exception)
    assert f"question '{question}'" in message
    assert rule in message
    rendered = [path for path in Path(copie.test_dir).rglob("*") if path.is_file()]
    assert rendered == [], "nothing may be rendered from a refused answer"


@pytest.mark.parametrize(
    ("project_name", "crate_name"),
    [("My Project ü", "my-project"), ("CCO 2.0", "cco-2-0"), ("Acme's CCO", "acme-s-cco"), ("2024 ü", "cco")],
)
def test_any_project_name_gives_a_valid_crate_name(copie: Any, project_name: str, crate_name: str) -> None:
    """The derived default passes its own validator, so --defaults never stops on it."""
    result = copie.copy(extra_answers={"project_name": project_name})
    assert result.exception is None, result.exception
    assert result.answers["crate_name"] == crate_name
    assert f"# {project_name}\n" in (Path(result.project_dir) / "README.md").read_text()


def test_command_line_refuses_a_bad_answer(tmp_path: Path) -> None:
    destination = tmp_path / "out"
    result = copier_cli(
        "copy", "--trust", "--defaults", "--vcs-ref", "HEAD", "--data", "proxy_port=70000",
        str(ROOT), str(destination),
        cwd=tmp_path, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Validation error for question 'proxy_port': proxy_port must be from 1 to 65535" in result.stderr
    assert not destination.exists()
