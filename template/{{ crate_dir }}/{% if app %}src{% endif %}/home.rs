//! `$CCO_HOME`, the data directory: `run` claims it for itself while it serves, so that a
//! second `run` cannot overwrite its statistics and cache, and an unusable one fails at start.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// The file a running `run` holds locked in CCO_HOME, with its process id inside.
pub const LOCK_NAME: &str = "run.lock";

/// Claims `home` for one `run`: proves it can be written (an unusable CCO_HOME is an error at
/// start, not counts lost later) and keeps a second `run` from overwriting this one's totals.
/// The claim lasts as long as the returned file is open; the system releases it when the
/// process ends, however it ends. Temporary files a killed `run` left behind are removed.
pub fn claim(home: &Path) -> Result<fs::File> {
    fs::create_dir_all(home)
        .with_context(|| format!("CCO_HOME={} cannot be created", home.display()))?;
    let path = home.join(LOCK_NAME);
    let mut file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("CCO_HOME={} is not writable", home.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let holder = fs::read_to_string(&path).unwrap_or_default();
            anyhow::bail!(
                "another `run` (process {}) is using CCO_HOME={}: stop it, or give this one its own CCO_HOME",
                holder.trim(),
                home.display()
            );
        }
        Err(fs::TryLockError::Error(error)) => {
            return Err(error).with_context(|| format!("cannot lock {}", path.display()));
        }
    }
    file.set_len(0)
        .and_then(|()| writeln!(file, "{}", std::process::id()))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("CCO_HOME={} is not writable", home.display()))?;
    if let Ok(entries) = fs::read_dir(home) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("{}.", crate::stats::FILE_NAME)) && name.ends_with(".tmp")
            {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    Ok(file)
}
