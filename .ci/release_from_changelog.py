"""Releases the template when CHANGELOG.md has a new version heading.

The newest `## X.Y.Z` heading (PEP 440: 0.2.0, 0.3.0rc1; optionally followed by a date,
`## 0.2.0 (2026-11-27)`) is the version to release. When its tag exists already, nothing
happens. Otherwise the current commit is tagged with it (annotated), the tag is pushed to
`origin`, and a GitHub Release is made from the section's text with the GitHub CLI. Every
`## ` heading must be `## Unreleased...` or such a version, newest first; anything else is
refused, naming the line, before anything is tagged. .github/workflows/release.yml runs it
on every push to main; docs/UPDATING.md ("Releasing the template") says how to use it.
"""

from __future__ import annotations

import base64
import itertools
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

VERSION = r"(?P<version>(?P<release>\d+(?:\.\d+){2})(?:(?P<pre>a|b|rc)(?P<number>\d+))?)"
HEADING = re.compile(rf"## {VERSION}(?: \(\d{{4}}-\d{{2}}-\d{{2}}\))?")
PRE_ORDER = {"a": 0, "b": 1, "rc": 2, None: 3}


def key(version: str) -> tuple[tuple[int, ...], int, int]:
    match = HEADING.fullmatch(f"## {version}")
    assert match, version
    release = tuple(int(part) for part in match["release"].split("."))
    return release, PRE_ORDER[match["pre"]], int(match["number"] or 0)


def sections(text: str) -> list[tuple[str, str]]:
    """(version, notes) for each version heading, in file order; SystemExit on a bad heading."""
    found: list[tuple[str, int, list[str]]] = []
    notes: list[str] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("## "):
            notes = None
            if line.startswith("## Unreleased"):
                continue
            match = HEADING.fullmatch(line)
            if match is None:
                sys.exit(
                    f"error: CHANGELOG.md:{number}: {line!r} is not a version heading: write '## X.Y.Z' or "
                    "'## X.Y.Z (YYYY-MM-DD)' (a PEP 440 version such as 0.2.0 or 0.3.0rc1), or '## Unreleased'"
                )
            notes = []
            found.append((match["version"], number, notes))
        elif notes is not None:
            notes.append(line)
    for (newer, newer_line, _), (older, older_line, _) in itertools.pairwise(found):
        if key(newer) <= key(older):
            sys.exit(
                f"error: CHANGELOG.md:{newer_line}: {newer} must be newer than {older} below it (line {older_line}): "
                "the newest version comes first"
            )
    return [(version, "\n".join(lines).strip()) for version, _, lines in found]


def git(*arguments: str) -> str:
    result = subprocess.run(["git", *arguments], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"error: git {' '.join(arguments)} exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout


def main() -> int:
    os.chdir(git("rev-parse", "--show-toplevel").strip())
    released = sections(Path("CHANGELOG.md").read_text())
    if not released:
        print("CHANGELOG.md has no version heading yet; nothing to release")
        return 0
    version, notes = released[0]
    tags = set(git("tag", "--list").split())
    if version in tags:
        print(f"{version} is released already (tag {version}); nothing to do")
        return 0
    newer = [tag for tag in tags if HEADING.fullmatch(f"## {tag}") and key(tag) > key(version)]
    if newer:
        sys.exit(f"error: CHANGELOG.md's newest version, {version}, is older than the tag {max(newer, key=key)}")

    git("-c", "user.name=github-actions[bot]", "-c", "user.email=41898282+github-actions[bot]@users.noreply.github.com",
        "tag", "--annotate", version, "--message", f"cco-template {version}")  # fmt: skip
    push = ["push", "--quiet", "origin", f"refs/tags/{version}"]
    token = os.environ.get("GH_TOKEN")
    if token and os.environ.get("GITHUB_ACTIONS") == "true":
        # The checkout keeps no credentials; the token goes to this one push only.
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        push = ["-c", f"http.https://github.com/.extraheader=AUTHORIZATION: basic {basic}", *push]
    git(*push)
    with tempfile.NamedTemporaryFile("w", suffix=".md", delete=False) as file:
        file.write(notes + "\n")
    try:
        result = subprocess.run(
            ["gh", "release", "create", version, "--verify-tag", "--title", version, "--notes-file", file.name],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        os.unlink(file.name)
    if result.returncode != 0:
        sys.exit(f"error: tag {version} is pushed, but gh release create failed: {result.stderr.strip()}")
    print(f"released {version}: tag pushed, GitHub Release {result.stdout.strip()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
