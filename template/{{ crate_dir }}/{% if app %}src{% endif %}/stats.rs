//! Request counts by service, route and status, kept in `$CCO_HOME/stats.json`.
//!
//! The file is replaced atomically (written beside it, synced, then renamed over
//! it), so a crash leaves either the old counts or the new ones, never half a file.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

pub const FILE_NAME: &str = "stats.json";

/// One row: how often `service` answered `route` with `status`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Entry {
    pub service: String,
    pub route: String,
    pub status: u16,
    pub count: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    counts: BTreeMap<(String, String, u16), u64>,
}

#[derive(Deserialize, Serialize)]
struct StatsFile {
    version: u32,
    requests: Vec<Entry>,
}

impl Stats {
    pub fn record(&mut self, service: &str, route: &str, status: u16) {
        *self
            .counts
            .entry((service.to_string(), route.to_string(), status))
            .or_default() += 1;
    }

    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    pub fn entries(&self) -> Vec<Entry> {
        self.counts
            .iter()
            .map(|((service, route, status), count)| Entry {
                service: service.clone(),
                route: route.clone(),
                status: *status,
                count: *count,
            })
            .collect()
    }

    /// Reads the counts; a missing file is no counts yet, a corrupt one is an error
    /// (it is never overwritten, so nothing recorded is lost).
    pub fn load(path: &Path) -> Result<Option<Self>> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        let file: StatsFile = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a statistics file; move it aside to start afresh",
                path.display()
            )
        })?;
        Ok(Some(Self::from_entries(file.requests)))
    }

    /// The counts as the dashboard's `/api/stats` serves them.
    pub fn from_api(text: &str) -> Result<Self> {
        #[derive(Deserialize)]
        struct Served {
            requests: Vec<Entry>,
        }
        let served: Served =
            serde_json::from_str(text).context("/api/stats did not answer with counts")?;
        Ok(Self::from_entries(served.requests))
    }

    fn from_entries(entries: Vec<Entry>) -> Self {
        let mut stats = Self::default();
        for entry in entries {
            *stats
                .counts
                .entry((entry.service, entry.route, entry.status))
                .or_default() += entry.count;
        }
        stats
    }

    /// Writes the counts atomically: a temporary file in the same directory, synced, renamed.
    pub fn save(&self, path: &Path) -> Result<()> {
        let directory = path
            .parent()
            .context("the statistics file has no parent directory")?;
        fs::create_dir_all(directory)
            .with_context(|| format!("cannot create {}", directory.display()))?;
        let temporary = temporary_path(path);
        let text = serde_json::to_string_pretty(&StatsFile {
            version: 1,
            requests: self.entries(),
        })?;
        let write = || -> std::io::Result<()> {
            let mut file = fs::File::create(&temporary)?;
            file.write_all(text.as_bytes())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            fs::rename(&temporary, path)?;
            // The rename is durable once the directory entry is.
            fs::File::open(directory)?.sync_all()
        };
        write().with_context(|| format!("cannot write {}", path.display()))
    }
}

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
            if name.starts_with(&format!("{FILE_NAME}.")) && name.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    Ok(file)
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let directory =
            std::env::temp_dir().join(format!("cco-stats-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&directory);
        directory
    }

    #[test]
    fn counts_survive_a_save_and_a_load() {
        let path = scratch("roundtrip").join(FILE_NAME);
        let mut stats = Stats::default();
        stats.record("proxy", "/health", 200);
        stats.record("proxy", "/health", 200);
        stats.record("dashboard", "unmatched", 404);
        stats.save(&path).unwrap();
        let loaded = Stats::load(&path).unwrap().unwrap();
        assert_eq!(loaded, stats);
        assert_eq!(loaded.total(), 3);
        assert!(!temporary_path(&path).exists());
    }

    #[test]
    fn a_missing_file_is_no_counts_and_a_corrupt_one_an_error() {
        let directory = scratch("corrupt");
        let path = directory.join(FILE_NAME);
        assert!(Stats::load(&path).unwrap().is_none());
        fs::create_dir_all(&directory).unwrap();
        fs::write(&path, "{ half a file").unwrap();
        let error = Stats::load(&path).unwrap_err();
        assert!(format!("{error:#}").contains("is not a statistics file"));
    }
}
