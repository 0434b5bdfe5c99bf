// actions/cache's stand-in (see action.yml), written from the real one's README: entries
// live in the stand-in GitHub (/srv/github/OWNER/REPO.caches/), one per key and version (the
// version hashes the path list, so another list never restores it); restore takes the exact
// key, else the newest entry whose key starts with a restore-key, in order, searching the
// run's own ref and then the default branch (a pull request's base branch too), as GitHub's
// cache scoping does; save, after a successful job, writes a new entry unless the exact key
// was restored or exists already (an entry is never overwritten). Differs: no size limit or
// eviction, no cross-OS archive, no upload chunks; entries are zstd tar files of absolute paths;
// restore also prints the primary key ("Cache key: ...").
"use strict";
const { execFileSync } = require("child_process");
const crypto = require("crypto");
const fs = require("fs");
const os = require("os");
const path = require("path");

const input = (name) => (process.env[`INPUT_${name.replace(/ /g, "_").toUpperCase()}`] || "").trim();
const lines = (name) => input(name).split("\n").map((line) => line.trim()).filter(Boolean);
const store = () => path.join(process.env.GITHUB_STAND_IN || "/srv/github", `${process.env.GITHUB_REPOSITORY}.caches`);
const scope = (ref) => ref.replace(/[^A-Za-z0-9._-]/g, "_");
const version = () => crypto.createHash("sha256").update(lines("path").join("\n") + "|zstd").digest("hex").slice(0, 16);
const expand = (entry) => path.resolve(process.env.GITHUB_WORKSPACE, entry.replace(/^~(?=\/|$)/, os.homedir()));
const entryFile = (ref, key) => path.join(store(), scope(ref), version(), `${encodeURIComponent(key)}.tzst`);

function refs() {
  const own = process.env.GITHUB_REF;
  const found = [own];
  if (process.env.GITHUB_BASE_REF) found.push(`refs/heads/${process.env.GITHUB_BASE_REF}`);
  const event = JSON.parse(fs.readFileSync(process.env.GITHUB_EVENT_PATH, "utf8") || "{}");
  const main = (event.repository && event.repository.default_branch) || "main";
  found.push(`refs/heads/${main}`);
  return [...new Set(found)];
}

function find(key, restoreKeys) {
  for (const ref of refs()) {
    const exact = entryFile(ref, key);
    if (fs.existsSync(exact)) return { file: exact, key, exact: true };
  }
  for (const prefix of restoreKeys) {
    for (const ref of refs()) {
      const folder = path.dirname(entryFile(ref, "x"));
      if (!fs.existsSync(folder)) continue;
      const matches = fs.readdirSync(folder).map((name) => ({ name: decodeURIComponent(name.replace(/\.tar\.gz$/, "")), file: path.join(folder, name) }))
        .filter((entry) => entry.name.startsWith(prefix))
        .sort((a, b) => fs.statSync(b.file).mtimeMs - fs.statSync(a.file).mtimeMs);
      if (matches.length) return { file: matches[0].file, key: matches[0].name, exact: false };
    }
  }
  return null;
}

module.exports = { input, lines, expand, entryFile, find, execFileSync, fs, path };
