//! What `run` served, kept in `$CCO_HOME/stats.json`: requests by service, route and status,
//! and for the proxy, per model, the cache's hits and misses, what they saved, the
//! upstream's errors and the tokens it reported.
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

/// What the proxy did for one model (`-` for requests that name none).
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct ModelCounts {
    pub requests: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub upstream_errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Response bytes the cache answered instead of the upstream.
    pub bytes_saved: u64,
    /// The upstream's time those cached answers took when they were first fetched.
    pub upstream_ms_saved: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ModelEntry {
    pub model: String,
    #[serde(flatten)]
    pub counts: ModelCounts,
}

/// How the cache took part in one proxied request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// Answered from the cache: `bytes` of body the upstream first took `upstream_ms` for.
    Hit { bytes: u64, upstream_ms: u64 },
    /// Could have been cached, and went to the upstream.
    Miss,
    /// Not a request the cache answers (streaming, asked not to, not GET or POST).
    Bypass,
}

/// One proxied request, as the proxy reports it once its answer has been sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub model: String,
    pub cache: CacheUse,
    /// The upstream could not be reached, timed out, or answered 4xx or 5xx.
    pub upstream_error: bool,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    counts: BTreeMap<(String, String, u16), u64>,
    models: BTreeMap<String, ModelCounts>,
}

#[derive(Deserialize, Serialize)]
struct StatsFile {
    version: u32,
    requests: Vec<Entry>,
    /// Absent from version 1 files, written before the proxy forwarded anything.
    #[serde(default)]
    models: Vec<ModelEntry>,
}

impl Stats {
    pub fn record(&mut self, service: &str, route: &str, status: u16) {
        *self
            .counts
            .entry((service.to_string(), route.to_string(), status))
            .or_default() += 1;
    }

    pub fn record_exchange(&mut self, exchange: &Exchange) {
        let counts = self.models.entry(exchange.model.clone()).or_default();
        counts.requests += 1;
        match exchange.cache {
            CacheUse::Hit { bytes, upstream_ms } => {
                counts.cache_hits += 1;
                counts.bytes_saved += bytes;
                counts.upstream_ms_saved += upstream_ms;
            }
            CacheUse::Miss => counts.cache_misses += 1,
            CacheUse::Bypass => {}
        }
        counts.upstream_errors += u64::from(exchange.upstream_error);
        counts.input_tokens += exchange.input_tokens;
        counts.output_tokens += exchange.output_tokens;
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

    pub fn models(&self) -> Vec<ModelEntry> {
        self.models
            .iter()
            .map(|(model, counts)| ModelEntry {
                model: model.clone(),
                counts: counts.clone(),
            })
            .collect()
    }

    /// Every model's counts added up.
    pub fn proxied(&self) -> ModelCounts {
        let mut sum = ModelCounts::default();
        for counts in self.models.values() {
            sum.requests += counts.requests;
            sum.cache_hits += counts.cache_hits;
            sum.cache_misses += counts.cache_misses;
            sum.upstream_errors += counts.upstream_errors;
            sum.input_tokens += counts.input_tokens;
            sum.output_tokens += counts.output_tokens;
            sum.bytes_saved += counts.bytes_saved;
            sum.upstream_ms_saved += counts.upstream_ms_saved;
        }
        sum
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
        Ok(Some(Self::from_file(file)))
    }

    /// The counts as the dashboard's `/api/stats` serves them.
    pub fn from_api(text: &str) -> Result<Self> {
        let served: StatsFile =
            serde_json::from_str(text).context("/api/stats did not answer with counts")?;
        Ok(Self::from_file(served))
    }

    /// What `/api/stats` serves: the file's form, with the totals.
    pub fn to_api(&self) -> serde_json::Value {
        serde_json::json!({
            "version": 2,
            "total": self.total(),
            "requests": self.entries(),
            "models": self.models(),
            "proxied": self.proxied(),
        })
    }

    fn from_file(file: StatsFile) -> Self {
        let mut stats = Self::default();
        for entry in file.requests {
            *stats
                .counts
                .entry((entry.service, entry.route, entry.status))
                .or_default() += entry.count;
        }
        for entry in file.models {
            stats.models.insert(entry.model, entry.counts);
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
            version: 2,
            requests: self.entries(),
            models: self.models(),
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

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", std::process::id()));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::Scratch;

    #[test]
    fn counts_survive_a_save_and_a_load() {
        let directory = Scratch::new("stats-roundtrip");
        let path = directory.join(FILE_NAME);
        let mut stats = Stats::default();
        stats.record("proxy", "/health", 200);
        stats.record("proxy", "/health", 200);
        stats.record("dashboard", "unmatched", 404);
        stats.record_exchange(&Exchange {
            model: "claude-sonnet-4-5".to_string(),
            cache: CacheUse::Hit {
                bytes: 300,
                upstream_ms: 1200,
            },
            upstream_error: false,
            input_tokens: 0,
            output_tokens: 0,
        });
        stats.save(&path).unwrap();
        let loaded = Stats::load(&path).unwrap().unwrap();
        assert_eq!(loaded, stats);
        assert_eq!(loaded.total(), 3);
        assert_eq!(loaded.proxied().upstream_ms_saved, 1200);
        assert!(!temporary_path(&path).exists());
    }

    #[test]
    fn a_first_version_file_still_loads() {
        let directory = Scratch::new("stats-version1");
        let path = directory.join(FILE_NAME);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(
            &path,
            r#"{"version":1,"requests":[{"service":"proxy","route":"/health","status":200,"count":4}]}"#,
        )
        .unwrap();
        let loaded = Stats::load(&path).unwrap().unwrap();
        assert_eq!(loaded.total(), 4);
        assert!(loaded.models().is_empty());
    }

    #[test]
    fn exchanges_add_up_per_model() {
        let mut stats = Stats::default();
        let exchange = |cache, upstream_error, input_tokens| Exchange {
            model: "m".to_string(),
            cache,
            upstream_error,
            input_tokens,
            output_tokens: 1,
        };
        stats.record_exchange(&exchange(CacheUse::Miss, false, 10));
        stats.record_exchange(&exchange(CacheUse::Bypass, true, 0));
        let counts = &stats.models()[0].counts;
        assert_eq!((counts.requests, counts.cache_misses), (2, 1));
        assert_eq!((counts.upstream_errors, counts.input_tokens), (1, 10));
        assert_eq!(counts.output_tokens, 2);
    }

    #[test]
    fn a_missing_file_is_no_counts_and_a_corrupt_one_an_error() {
        let directory = Scratch::new("stats-corrupt");
        let path = directory.join(FILE_NAME);
        assert!(Stats::load(&path).unwrap().is_none());
        fs::create_dir_all(&directory).unwrap();
        fs::write(&path, "{ half a file").unwrap();
        let error = Stats::load(&path).unwrap_err();
        assert!(format!("{error:#}").contains("is not a statistics file"));
    }
}
