"""Fixtures shared by the template's tests: renders, a shared Cargo target directory, the
default project and its binary. Helpers are in helpers.py.

Renders go through pytest-copie (``copie``, ``copie_session``), which calls Copier with
``vcs_ref="HEAD"`` so the working tree is rendered, not the newest tag. Compiling Rust is
the slow part, so every build shares one target directory: dependencies compile once per
machine, and each render only compiles its own crate.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import (
    ALL_TARGETS,
    CROSS,
    ROOT,
    Project,
    Renders,
    Validated,
    cargo_build,
    copy_template,
    files_of,
    git_init,
    render,
    set_validation,
    validate_through_a_pipe,
)


def pytest_configure(config: pytest.Config) -> None:
    # Renders in tests validate nothing unless a test asks for it (tests/test_hooks.py does):
    # pytest-copie always runs the template's tasks, and full validation compiles.
    set_validation("none")
    # pytest-copie renders the template named by --template. A plain copy of the working
    # tree renders what a git template at HEAD would (uncommitted changes included), without
    # Copier cloning the repository for every render; tests that need versions and commits
    # use snapshot_template.
    plain = Path(tempfile.mkdtemp(prefix="cco-template-"))
    config.option.template = str(copy_template(plain))
    config.add_cleanup(lambda: shutil.rmtree(plain, ignore_errors=True))


@pytest.fixture(scope="session")
def renders(copie_session: Any) -> Iterator[Renders]:
    made = Renders(copie_session)
    yield made
    made.close()


@pytest.fixture(scope="session")
def cargo_env() -> dict[str, str]:
    """Environment for cargo: one target directory for every build of the session.

    CCO_TEST_TARGET_DIR moves it; by default it is .test-target/ in this repository, so
    dependencies stay compiled between runs on one machine. Under pytest-xdist each worker
    builds in its own subdirectory.
    """
    target = Path(os.environ.get("CCO_TEST_TARGET_DIR", ROOT / ".test-target")).resolve()
    if worker := os.environ.get("PYTEST_XDIST_WORKER"):
        # Parallel workers (pytest -n) must not overwrite each other's target/<profile>/<bin>.
        target = target / worker
    target.mkdir(parents=True, exist_ok=True)
    return {"CARGO_TARGET_DIR": str(target), "CARGO_TERM_COLOR": "never"}


@pytest.fixture(scope="session")
def copier_yml() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "copier.yml").read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="session")
def default_project(copie_session: Any) -> Project:
    """The default render, committed to git as a user's new repository would be."""
    project = render(copie_session)
    git_init(project.root)
    return project


@pytest.fixture(scope="session")
def default_binary(
    default_project: Project, cargo_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The default render's debug binary."""
    return cargo_build(default_project, cargo_env, tmp_path_factory.mktemp("default-debug"))


@pytest.fixture(scope="session")
def fully_validated(renders: Renders, cargo_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Validated:
    """A render choosing every target, committed and fully validated once: full validation
    builds each target's release binary, the slowest thing the suite does, so the tests of the
    hooks (tests/test_hooks.py) and of the targets (tests/test_targets.py) read this one run.
    A target this machine cannot build says "-" and why, and the tests that need it skip."""
    project = renders.copy(tmp_path_factory.mktemp("all-targets") / "repository", build_targets=ALL_TARGETS)
    git_init(project.root)
    before = files_of(project.root)
    # zig and cargo-zigbuild on PATH, as the owner's shell has them after `pip install` (activated).
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]])
    result, silence = validate_through_a_pipe(
        project, "full", env={"CCO_VALIDATE_TARGET_DIR": cargo_env["CARGO_TARGET_DIR"], "PATH": path}
    )
    kept = tmp_path_factory.mktemp("all-targets-binaries")
    for target in CROSS:
        built = Path(cargo_env["CARGO_TARGET_DIR"]) / target / "release" / project.name
        if built.is_file():
            (kept / target).mkdir()
            shutil.copy2(built, kept / target / project.name)
    return Validated(project=project, before=before, result=result, binaries=kept, longest_silence=silence)
