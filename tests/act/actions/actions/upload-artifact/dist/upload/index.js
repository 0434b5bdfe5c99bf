// actions/upload-artifact's stand-in (see action.yml), written from the real one's README: the
// files `path` names (lines; `*`, `**` and `?` wildcards; `!` excludes) are stored as the
// run's artifact `name` in the stand-in GitHub (/srv/github/OWNER/REPO.runs/RUN_ID/NAME/),
// relative to the least common ancestor of the paths, as the real one lays them out; hidden
// files are left out unless include-hidden-files; no file found warns, fails (error) or says
// nothing (ignore); a second upload of a name fails unless overwrite. Differs: files are
// copied, not zipped (compression-level is accepted and unused; as with the zip, file modes
// are not kept: every file comes back 0644), nothing expires.
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const os = require("os");
const path = require("path");

const input = (name) => (process.env[`INPUT_${name.replace(/ /g, "_").toUpperCase()}`] || "").trim();
const output = (name, value) => fs.appendFileSync(process.env.GITHUB_OUTPUT, `${name}=${value}\n`);

function pattern(glob) {
  let regex = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === "*" && glob[i + 1] === "*") { regex += ".*"; i++; if (glob[i + 1] === "/") i++; }
    else if (c === "*") regex += "[^/]*";
    else if (c === "?") regex += "[^/]";
    else regex += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${regex}$`);
}

function walk(root, hidden, found = []) {
  if (!fs.existsSync(root)) return found;
  if (fs.statSync(root).isFile()) { found.push(root); return found; }
  for (const entry of fs.readdirSync(root)) {
    if (!hidden && entry.startsWith(".")) continue;
    walk(path.join(root, entry), hidden, found);
  }
  return found;
}

function search(lines, hidden) {
  const include = [], exclude = [], roots = [];
  for (const line of lines) {
    const negated = line.startsWith("!");
    const absolute = path.resolve(process.env.GITHUB_WORKSPACE, (negated ? line.slice(1) : line).replace(/^~(?=\/|$)/, os.homedir()));
    (negated ? exclude : include).push(absolute);
    if (!negated) {
      const literal = absolute.split("/").filter((part, index, parts) => !/[*?]/.test(parts.slice(0, index + 1).join("/")));
      roots.push(literal.join("/") || "/");
    }
  }
  const files = new Set();
  include.forEach((glob, index) => {
    const base = roots[index];
    const matcher = pattern(glob);
    for (const file of walk(base, hidden)) {
      if (matcher.test(file) || file.startsWith(glob + "/") || file === glob) files.add(file);
    }
  });
  const excluded = exclude.map(pattern);
  return { files: [...files].filter((file) => !excluded.some((m) => m.test(file))).sort(), roots };
}

function ancestor(paths) {
  const split = paths.map((p) => p.split("/"));
  const common = [];
  for (let i = 0; split.every((parts) => i < parts.length - 0 && parts[i] === split[0][i]); i++) common.push(split[0][i]);
  return common.join("/") || "/";
}

try {
  const name = input("name") || "artifact";
  const lines = input("path").split("\n").map((l) => l.trim()).filter(Boolean);
  if (!lines.length) throw new Error("Input required and not supplied: path");
  const { files, roots } = search(lines, input("include-hidden-files") === "true");
  if (!files.length) {
    const message = `No files were found with the provided path: ${lines.join("\n")}. No artifacts will be uploaded.`;
    const mode = input("if-no-files-found") || "warn";
    if (mode === "error") throw new Error(message);
    if (mode === "warn") console.log(`::warning::${message}`);
    process.exit(0);
  }
  // The root: the least common ancestor of the search paths (a single file: its folder).
  let root = ancestor(roots);
  if (files.length === 1 && root === files[0]) root = path.dirname(root);
  else if (fs.existsSync(root) && fs.statSync(root).isFile()) root = path.dirname(root);
  const store = path.join(process.env.GITHUB_STAND_IN || "/srv/github", `${process.env.GITHUB_REPOSITORY}.runs`, process.env.GITHUB_RUN_ID, name);
  if (fs.existsSync(store)) {
    if (input("overwrite") !== "true") throw new Error(`Failed to CreateArtifact: Received non-retryable error: Failed request: (409) Conflict: an artifact with this name already exists on the workflow run`);
    fs.rmSync(store, { recursive: true, force: true });
  }
  const digest = crypto.createHash("sha256");
  for (const file of files) {
    const relative = path.relative(root, file);
    fs.mkdirSync(path.dirname(path.join(store, relative)), { recursive: true });
    fs.copyFileSync(file, path.join(store, relative));
    fs.chmodSync(path.join(store, relative), 0o644); // as the real zip: permissions are not kept
    digest.update(relative).update(fs.readFileSync(file));
  }
  console.log(`Uploaded artifact ${name}: ${files.length} file(s) from ${root}`);
  output("artifact-id", String(Date.now() % 1e9));
  output("artifact-url", `${process.env.GITHUB_SERVER_URL}/${process.env.GITHUB_REPOSITORY}/actions/runs/${process.env.GITHUB_RUN_ID}/artifacts`);
  output("artifact-digest", digest.digest("hex"));
} catch (error) {
  console.log(`::error::${error.message}`);
  process.exit(1);
}
