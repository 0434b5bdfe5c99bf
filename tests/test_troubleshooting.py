"""The generated docs/TROUBLESHOOTING.md has an entry for every ✗ the build system can print:
each check validation runs (`model.CHECKS`: a result of a check not listed there is an error,
so a new check without an entry fails here), each ✗ of the Makefile and of scripts/make.sh.
That validation's ✗ lines link their entries is tested with each failure in test_hooks.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cco_validate import model
from helpers import Renders


def test_every_validation_check_has_an_entry(renders: Renders) -> None:
    guide = (renders().crate / model.TROUBLESHOOTING).read_text()
    for name in model.CHECKS:  # a Result of a check not listed there is an error
        assert f'<a id="{model.anchor(name)}"></a>' in guide, f"no entry for ✗ {name}"


def test_a_check_that_is_not_listed_is_an_error() -> None:
    with pytest.raises(ValueError, match="'no-such-check' is not a check of CHECKS"):
        model.failed("no-such-check", "what it found")
    assert model.passed("target aarch64-apple-darwin", "built").check == "target aarch64-apple-darwin"


def fixed_text(message: str) -> str:
    """The first literal part (8 characters or more) of a message built with shell or make
    variables, up to its first clause mark: what the guide must quote."""
    parts = re.split(r"\$\([^)]*\)|\$\{[^}]*\}|\$[A-Za-z_]+|\\\$[A-Z]+", message)
    clauses = [re.split(r"[:;,]", part.strip(" :;,"), maxsplit=1)[0].strip() for part in parts]
    return next(clause for clause in clauses if len(clause) >= 8)


def make_failures(crate: Path) -> list[str]:
    makefile = (crate / "Makefile").read_text()
    steps = re.findall(r"^\t@\$\(call step,[^,]*,([^,]*),", makefile, flags=re.MULTILINE)
    script = (crate / "scripts" / "make.sh").read_text()
    fails = [text for text in re.findall(r'fail "([^"]+)"', script) if not text.startswith(("usage:", "unknown"))]
    return steps + fails


def test_every_make_failure_has_an_entry(renders: Renders) -> None:
    project = renders()
    guide = " ".join((project.crate / model.TROUBLESHOOTING).read_text().split())  # as rendered: lines joined
    failures = make_failures(project.crate)
    assert len(failures) >= 15, failures
    for message in failures:
        assert fixed_text(message) in guide, f"no entry quotes ✗ {message!r} ({fixed_text(message)!r})"
