// actions/checkout's stand-in (see action.yml). As the real one: the repository at the
// event's commit in $GITHUB_WORKSPACE/<path>, fetched from <server>/<repository> with git;
// fetch-depth N fetches N commits of that ref only (no tags unless fetch-tags), 0 fetches
// every branch (refs/remotes/origin/*) and tag; a branch is checked out as a local branch
// tracking origin, a tag or pull request's merge ref detached; with persist-credentials the
// token is kept in the repository's git config as AUTHORIZATION extraheader (removed by the
// post step), without it nothing is kept. Differs: no REST API fallback, no ssh-key,
// sparse-checkout, filter, lfs or submodules (it fails if asked for them), no
// safe.directory changes (the stand-in image trusts every directory).
"use strict";
const { execFileSync } = require("child_process");
const fs = require("fs");
const path = require("path");

const input = (name) => (process.env[`INPUT_${name.replace(/ /g, "_").toUpperCase()}`] || "").trim();
const output = (name, value) => fs.appendFileSync(process.env.GITHUB_OUTPUT, `${name}=${value}\n`);
const git = (cwd, ...args) => execFileSync("git", args, { cwd, stdio: ["ignore", "pipe", "inherit"] }).toString().trim();
const state = (name) => process.env[`STATE_${name}`];
const server = () => (input("github-server-url") || process.env.GITHUB_SERVER_URL || "https://github.com").replace(/\/$/, "");
const header = () => `http.${server()}/.extraheader`;

function post() {
  const where = state("repositoryPath");
  if (where && fs.existsSync(path.join(where, ".git"))) {
    try { git(where, "config", "--local", "--unset-all", header()); } catch { /* nothing kept */ }
  }
}

function main() {
  for (const unsupported of ["ssh-key", "sparse-checkout", "filter", "submodules", "lfs"]) {
    const value = input(unsupported);
    if (value && value !== "false" && value !== "null") throw new Error(`stand-in: ${unsupported} is not supported`);
  }
  const workspace = process.env.GITHUB_WORKSPACE;
  const where = path.resolve(workspace, input("path") || ".");
  const repository = input("repository") || process.env.GITHUB_REPOSITORY;
  const ownRepository = repository.toLowerCase() === process.env.GITHUB_REPOSITORY.toLowerCase();
  let ref = input("ref") || (ownRepository ? process.env.GITHUB_REF : "");
  let sha = ownRepository && !input("ref") ? process.env.GITHUB_SHA : "";
  const depth = parseInt(input("fetch-depth") || "1", 10);
  fs.appendFileSync(process.env.GITHUB_STATE, `repositoryPath=${where}\n`);

  fs.mkdirSync(where, { recursive: true });
  if (input("clean") !== "false" && fs.existsSync(path.join(where, ".git"))) {
    git(where, "clean", "-ffdx");
    git(where, "reset", "--hard", "HEAD");
  } else {
    for (const entry of fs.readdirSync(where)) fs.rmSync(path.join(where, entry), { recursive: true, force: true });
    git(where, "init", "--quiet");
    git(where, "remote", "add", "origin", `${server()}/${repository}`);
  }
  const token = input("token");
  if (input("persist-credentials") !== "false" && token) {
    const basic = Buffer.from(`x-access-token:${token}`).toString("base64");
    git(where, "config", "--local", header(), `AUTHORIZATION: basic ${basic}`);
  }
  if (!ref) ref = "refs/heads/" + git(where, "ls-remote", "--symref", "origin", "HEAD").split("\n")[0].split("\t")[0].replace("ref: refs/heads/", "");
  if (!ref.startsWith("refs/") && !/^[0-9a-f]{40}$/.test(ref)) {
    // A short name: a branch if the remote has one, else a tag.
    const heads = git(where, "ls-remote", "--heads", "origin", ref);
    ref = heads ? `refs/heads/${ref}` : `refs/tags/${ref}`;
  }
  let local;
  if (/^[0-9a-f]{40}$/.test(ref)) { sha = ref; local = `refs/remotes/origin/sha`; }
  else if (ref.startsWith("refs/heads/")) local = `refs/remotes/origin/${ref.slice(11)}`;
  else if (ref.startsWith("refs/pull/")) local = `refs/remotes/pull/${ref.slice(10)}`;
  else local = ref;
  const fetched = sha || ref;
  if (depth === 0) {
    git(where, "fetch", "--quiet", "--prune", "--no-recurse-submodules", "origin",
      "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*");
    if (!ref.startsWith("refs/heads/") && !ref.startsWith("refs/tags/")) git(where, "fetch", "--quiet", "origin", `+${fetched}:${local}`);
  } else {
    const tags = input("fetch-tags") === "true" ? [] : ["--no-tags"];
    git(where, "fetch", "--quiet", ...tags, "--prune", "--no-recurse-submodules", `--depth=${depth}`, "origin", `+${fetched}:${local}`);
  }
  if (ref.startsWith("refs/heads/")) {
    const branch = ref.slice(11);
    git(where, "checkout", "--quiet", "--force", "-B", branch, local);
    git(where, "branch", "--quiet", `--set-upstream-to=origin/${branch}`, branch);
  } else {
    git(where, "checkout", "--quiet", "--force", "--detach", local);
  }
  const commit = git(where, "rev-parse", "HEAD");
  console.log(`Checked out ${repository} ${ref} at ${commit} into ${where} (fetch-depth ${depth})`);
  output("ref", ref);
  output("commit", commit);
}

try {
  if (state("isPost") === "true") post();
  else { fs.appendFileSync(process.env.GITHUB_STATE, "isPost=true\n"); main(); }
} catch (error) {
  console.log(`::error::${error.message}`);
  process.exit(1);
}
