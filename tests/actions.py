"""Runs a rendered GitHub Actions job's `run` steps here, in order, as the runner would.

What only a GitHub runner can do is the boundary, and is left out by name: `uses:` steps
(checkout, cache, artifacts, attestations: GitHub's services), toolchain installs through
rustup (this machine cannot reach rustup's server; the toolchain is already here) and
apt-get installs (the packages the workflow installs are for targets this machine does
not build). Everything else runs, with the job's working directory and environment and
the matrix values substituted.

The workflows themselves run under act (tests/act.py, test_act.py); this stays for two
uses act does not fit: the release the install tests download (test_release.py), whose
build must share the session's target directory, and the render job of the template's
own CI (test_template_ci.py), which is not a generated workflow and which GitHub runs on
every pull request of this repository.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

BOUNDARY = ("rustup ", "sudo apt-get ")
EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")


def load(path: Path) -> dict[Any, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict), f"{path} is not a YAML mapping"
    return loaded


def substitute(text: str, context: Mapping[str, str]) -> str:
    """Replaces ${{ name }} expressions the test knows (matrix.*, github.*); fails on any other."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in context:
            raise AssertionError(f"no value for the expression ${{{{ {name} }}}} in {text!r}")
        return context[name]

    return EXPRESSION.sub(value, text)


def matrix_values(spec: dict[str, Any], context: Mapping[str, str]) -> dict[str, str]:
    """The `include` entry of the job's matrix for the context's matrix.target, as expressions."""
    entries = spec.get("strategy", {}).get("matrix", {}).get("include", [])
    entry = next((entry for entry in entries if entry.get("target") == context.get("matrix.target")), None)
    if entry is None:
        return {}
    keys = {key for other in entries for key in other}
    return {f"matrix.{key}": str(entry.get(key, "")) for key in keys}


def holds(condition: str, context: Mapping[str, str]) -> bool:
    if suffix := re.fullmatch(r"endsWith\(matrix\.target, '([^']*)'\)", condition):
        return context["matrix.target"].endswith(suffix.group(1))
    if equal := re.fullmatch(r"(matrix\.[a-z-]+) == '([^']*)'", condition):
        return context.get(equal.group(1), "") == equal.group(2)
    if re.fullmatch(r"matrix\.[a-z-]+", condition):  # a key the entry lacks is null: false
        return context.get(condition, "") not in ("", "False", "false", "0")
    raise AssertionError(f"a condition the runner here does not evaluate: {condition}")


def job_steps(workflow: dict[Any, Any], job: str) -> list[dict[str, Any]]:
    steps = workflow["jobs"][job]["steps"]
    assert isinstance(steps, list)
    return steps


def run_job(
    root: Path,
    workflow: dict[Any, Any],
    job: str,
    context: Mapping[str, str],
    env: Mapping[str, str],
    timeout: float = 1800,
) -> list[str]:
    """Runs the job's steps in order from the repository `root`; returns the commands run.

    `context` holds the expressions' values (e.g. {"matrix.target": ...}); `env` is added to
    the workflow's and the job's own environment (cargo's target directory, GITHUB_REF_NAME).
    The other matrix values come from the job's `include` entry for `matrix.target` (a key
    the entry lacks is empty, as on GitHub). A step's `if:` is evaluated in three forms only:
    endsWith(matrix.target, '...'), matrix.NAME == '...' and matrix.NAME (false when missing).
    """
    spec = workflow["jobs"][job]
    context = {**matrix_values(spec, context), **context}
    directory = root / spec.get("defaults", {}).get("run", {}).get("working-directory", ".")
    declared = {**workflow.get("env", {}), **spec.get("env", {})}
    variables = {key: substitute(str(value), context) for key, value in declared.items()}
    # A runner sets no CARGO_TARGET_DIR: the job builds in the crate's target/.
    inherited = {key: value for key, value in os.environ.items() if key != "CARGO_TARGET_DIR"}
    ran = []
    for step in spec["steps"]:
        command = step.get("run")
        if command is None or command.startswith(BOUNDARY):
            continue
        condition = step.get("if")
        if condition and not holds(condition, context):
            continue
        command = substitute(command, context)
        step_env = {k: substitute(str(v), context) for k, v in step.get("env", {}).items()}
        result = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", command],
            cwd=directory,
            env={**inherited, **variables, **env, **step_env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"{job} step {command!r} exited {result.returncode} in {directory}\n"
                f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
            )
        ran.append(command)
    return ran
