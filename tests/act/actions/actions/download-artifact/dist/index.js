// actions/download-artifact's stand-in (see action.yml), written from the real one's README:
// `name` puts that artifact's files in `path` (default: the workspace) and fails when the run
// has no such artifact; otherwise every artifact whose name matches `pattern` (all without
// one) goes to path/<name>/, or straight into `path` with merge-multiple. Differs: only the
// current run's artifacts (no github-token/repository/run-id lookups, no artifact-ids), no
// digests to check (the stand-in's artifacts are not zipped).
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");

const input = (name) => (process.env[`INPUT_${name.replace(/ /g, "_").toUpperCase()}`] || "").trim();
const glob = (text) => new RegExp(`^${text.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);

try {
  if (input("artifact-ids")) throw new Error("stand-in: artifact-ids is not supported");
  const run = input("run-id") || process.env.GITHUB_RUN_ID;
  if (run !== process.env.GITHUB_RUN_ID) throw new Error("stand-in: artifacts of other runs are not supported");
  const runs = path.join(process.env.GITHUB_STAND_IN || "/srv/github", `${process.env.GITHUB_REPOSITORY}.runs`, run);
  const destination = path.resolve(process.env.GITHUB_WORKSPACE, (input("path") || ".").replace(/^~(?=\/|$)/, os.homedir()));
  const available = fs.existsSync(runs) ? fs.readdirSync(runs).sort() : [];
  const name = input("name");
  let chosen;
  if (name) {
    if (!available.includes(name)) throw new Error(`Unable to download artifact(s): Artifact not found for name: ${name}`);
    chosen = [[name, destination]];
  } else {
    const matcher = input("pattern") ? glob(input("pattern")) : /.*/;
    const merge = input("merge-multiple") === "true";
    chosen = available.filter((entry) => matcher.test(entry)).map((entry) => [entry, merge ? destination : path.join(destination, entry)]);
    if (!chosen.length) console.log(`No artifacts found matching pattern '${input("pattern")}'`);
  }
  for (const [artifact, into] of chosen) {
    fs.mkdirSync(into, { recursive: true });
    fs.cpSync(path.join(runs, artifact), into, { recursive: true });
    console.log(`Artifact ${artifact} downloaded to ${into}`);
  }
  fs.appendFileSync(process.env.GITHUB_OUTPUT, `download-path=${destination}\n`);
} catch (error) {
  console.log(`::error::${error.message}`);
  process.exit(1);
}
