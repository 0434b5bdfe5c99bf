"""attest-build-provenance's stand-in (action.yml says where it differs from the real one)."""

import glob
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any


def fail(message: str) -> None:
    print(f"::error::{message}")
    sys.exit(1)


inputs = ("SUBJECT_PATH", "SUBJECT_DIGEST", "SUBJECT_CHECKSUMS")
given = [name for name in inputs if os.environ.get(name, "").strip()]
if len(given) != 1:
    fail("One of subject-path, subject-digest, or subject-checksums must be provided")
workspace = Path(os.environ["GITHUB_WORKSPACE"])
subjects: list[dict[str, Any]] = []
if given == ["SUBJECT_PATH"]:
    for line in os.environ["SUBJECT_PATH"].replace(",", "\n").splitlines():
        for match in sorted(glob.glob(str(workspace / line.strip()))):
            path = Path(match)
            if path.is_file():
                subjects.append(
                    {"name": path.name, "digest": {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()}}
                )
    if not subjects:
        fail(f"Could not find subject at path {os.environ['SUBJECT_PATH']}")
elif given == ["SUBJECT_DIGEST"]:
    algorithm, _, digest = os.environ["SUBJECT_DIGEST"].partition(":")
    if algorithm != "sha256" or len(digest) != 64 or not os.environ.get("SUBJECT_NAME"):
        fail('subject-digest must be "sha256:<hex>" and subject-name must be given')
    subjects.append({"name": os.environ["SUBJECT_NAME"], "digest": {"sha256": digest}})
else:
    checksums = workspace / os.environ["SUBJECT_CHECKSUMS"]
    if not checksums.is_file():
        fail(f"subject checksums file not found: {checksums}")
    for line in checksums.read_text().splitlines():
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        name = name.lstrip("*")
        if len(digest) != 64 or not name:
            fail(f"malformed line in {checksums}: {line}")
        subject = checksums.parent / name
        if not subject.is_file() or hashlib.sha256(subject.read_bytes()).hexdigest() != digest:
            fail(f"stand-in: {name} in {checksums.name} is not the file beside it")
        subjects.append({"name": name, "digest": {"sha256": digest}})
if len(subjects) > 1024:
    fail("Too many subjects specified. The maximum number of subjects is 1024.")
server, repository = os.environ["GITHUB_SERVER_URL"], os.environ["GITHUB_REPOSITORY"]
workflow = {
    "ref": os.environ["GITHUB_REF"],
    "repository": f"{server}/{repository}",
    "path": os.environ.get("GITHUB_WORKFLOW_REF", ""),
}
statement = {
    "_type": "https://in-toto.io/Statement/v1",
    "subject": subjects,
    "predicateType": "https://slsa.dev/provenance/v1",
    "predicate": {
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {"workflow": workflow},
            "resolvedDependencies": [
                {
                    "uri": f"git+{server}/{repository}@{os.environ['GITHUB_REF']}",
                    "digest": {"gitCommit": os.environ["GITHUB_SHA"]},
                }
            ],
        },
        "runDetails": {
            "builder": {"id": "https://github.com/actions/runner"},
            "metadata": {"invocationId": os.environ["GITHUB_RUN_ID"]},
        },
    },
}
bundle = Path(os.environ["RUNNER_TEMP"]) / "attestation.json"
bundle.write_text(json.dumps(statement, indent=2))
store = Path(os.environ.get("GITHUB_STAND_IN", "/srv/github")) / f"{repository}.attestations"
store.mkdir(parents=True, exist_ok=True)
(store / f"{os.environ['GITHUB_RUN_ID']}-{os.environ['GITHUB_JOB']}.json").write_text(json.dumps(statement, indent=2))
with open(os.environ["GITHUB_OUTPUT"], "a") as out:
    out.write(f"bundle-path={bundle}\nattestation-id=1\n")
    out.write(f"attestation-url={server}/{repository}/attestations/1\nstorage-record-ids=\n")
print(f"attested {len(subjects)} subject(s): {', '.join(str(s['name']) for s in subjects)}")
