"use strict";
const { input, lines, find, execFileSync, fs } = require("../cache.js");

try {
  const key = input("key");
  if (!key) throw new Error("Input required and not supplied: key");
  if (!lines("path").length) throw new Error("Input required and not supplied: path");
  console.log(`Cache key: ${key}`);
  const found = find(key, lines("restore-keys"));
  fs.appendFileSync(process.env.GITHUB_STATE, `CACHE_KEY=${key}\nCACHE_RESULT=${found ? found.key : ""}\n`);
  fs.appendFileSync(process.env.GITHUB_OUTPUT, `cache-hit=${found && found.exact ? "true" : "false"}\n`);
  if (!found) {
    if (input("fail-on-cache-miss") === "true") throw new Error(`Failed to restore cache entry. Exiting as fail-on-cache-miss is set. Input key: ${key}`);
    console.log(`Cache not found for input keys: ${[key, ...lines("restore-keys")].join(", ")}`);
  } else if (input("lookup-only") === "true") {
    console.log(`Cache found and can be restored from key: ${found.key}`);
  } else {
    execFileSync("tar", ["-xPf", found.file, "--use-compress-program", "zstd -d"], { stdio: "inherit" });
    console.log(`Cache restored from key: ${found.key}`);
  }
} catch (error) {
  console.log(`::error::${error.message}`);
  process.exit(1);
}
