"""The generated docs/TROUBLESHOOTING.md has an entry for every ✗ the build system can print:
each check validation runs (the names are read from the hooks' source, so a new check without
an entry fails here), each ✗ of the Makefile and of scripts/make.sh. That validation's ✗ lines
link their entries is tested with each failure in test_hooks.py.
"""

from __future__ import annotations

import re
from pathlib import Path

from cco_validate import checks
from helpers import ROOT, Renders

CHECKS_SOURCE = (ROOT / "hooks" / "cco_validate" / "checks.py").read_text()


def check_names() -> set[str]:
    """Every check name a ✗ line can carry."""
    literal = set(re.findall(r'(?:failed|passed|skipped)\(\s*"([^"]+)"', CHECKS_SOURCE))
    linters = set(re.findall(r'lint\(project, "([a-z]+)"', CHECKS_SOURCE))
    builds = set(re.findall(r'\("(cargo build[^"]*)", \[', CHECKS_SOURCE))
    targets = {"target x86_64-apple-darwin"} if 'check = f"target {target}"' in CHECKS_SOURCE else set()
    return literal | linters | builds | targets


def test_every_validation_check_has_an_entry(renders: Renders) -> None:
    guide = (renders().crate / checks.TROUBLESHOOTING).read_text()
    names = check_names()
    assert {"structure", "conflicts", "shellcheck", "cargo build --release", "glibc"} <= names
    for name in sorted(names):
        assert f'<a id="{checks.anchor(name)}"></a>' in guide, f"no entry for ✗ {name}"


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
    guide = " ".join((project.crate / checks.TROUBLESHOOTING).read_text().split())  # as rendered: lines joined
    failures = make_failures(project.crate)
    assert len(failures) >= 15, failures
    for message in failures:
        assert fixed_text(message) in guide, f"no entry quotes ✗ {message!r} ({fixed_text(message)!r})"
