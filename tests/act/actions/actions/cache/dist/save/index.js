"use strict";
const { lines, expand, entryFile, execFileSync, fs, path } = require("../cache.js");

try {
  const key = process.env.STATE_CACHE_KEY;
  if (process.env.STATE_CACHE_RESULT === key) {
    console.log(`Cache hit occurred on the primary key ${key}, not saving cache.`);
    process.exit(0);
  }
  const file = entryFile(process.env.GITHUB_REF, key);
  if (fs.existsSync(file)) {
    console.log(`::warning::Failed to save: Unable to reserve cache with key ${key}, another job may be creating this cache.`);
    process.exit(0);
  }
  const paths = lines("path").map(expand).filter((entry) => fs.existsSync(entry));
  if (!paths.length) {
    console.log("::warning::Path Validation Error: Path(s) specified in the action for caching do(es) not exist, hence no cache is being saved.");
    process.exit(0);
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  execFileSync("tar", ["-cPf", `${file}.partial`, "--use-compress-program", "zstd -T0", ...paths], { stdio: "inherit" });
  fs.renameSync(`${file}.partial`, file);
  console.log(`Cache saved with key: ${key}`);
} catch (error) {
  console.log(`::warning::${error.message}`);
}
