//! The proxy's response cache, kept in `$CCO_HOME/cache`: one file per answer, named by the
//! SHA-256 of what makes a request the same one (method, path and query, body, and the
//! headers in VARY), at most CCO_CACHE_SIZE MB of them, each for CCO_CACHE_TTL hours.
//!
//! The least recently used answers go first when a new one needs room. A file that is not an
//! entry of this version for the name it has (damaged, foreign, cut short) is set aside
//! (renamed `*.set-aside`) with one warning, and the request goes to the upstream.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use axum::body::Bytes;
use hyper::{HeaderMap, Method};
use serde::{Deserialize, Serialize};

/// The cache's folder in CCO_HOME.
pub const DIRECTORY: &str = "cache";
/// The first line of every entry names this format; any other is set aside.
const FORMAT: &str = "cco-cache/1";
const SUFFIX: &str = ".entry";
/// How stale an entry's time of use may get before a hit writes it again.
const TOUCH_AFTER: Duration = Duration::from_secs(60);
/// Request headers that change the answer, so they are part of the key. So are the client's
/// own credentials (x-api-key, Authorization), when it sends them: an answer fetched with one
/// key is never given to a request with another, which the upstream might refuse. Requests
/// without credentials, which the proxy sends with ANTHROPIC_API_KEY, share their answers.
/// Only the SHA-256 of it all is kept: no credential reaches the cache.
const VARY: [&str; 6] = [
    "accept",
    "anthropic-beta",
    "anthropic-version",
    "authorization",
    "content-type",
    "x-api-key",
];

/// What identifies one request: the SHA-256 of its method, path, query, body and VARY headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key([u8; 32]);

impl Key {
    pub fn of(method: &Method, path_and_query: &str, headers: &HeaderMap, body: &[u8]) -> Self {
        let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
        for part in [FORMAT, method.as_str(), path_and_query] {
            digest.update(part.as_bytes());
            digest.update(b"\n");
        }
        for name in VARY {
            for value in headers.get_all(name) {
                digest.update(name.as_bytes());
                digest.update(b": ");
                digest.update(value.as_bytes());
                digest.update(b"\n");
            }
        }
        digest.update(b"\n");
        digest.update(body);
        let mut key = [0; 32];
        key.copy_from_slice(digest.finish().as_ref());
        Self(key)
    }

    fn hex(&self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 64 {
            return None;
        }
        let mut key = [0; 32];
        for (index, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(text.get(2 * index..2 * index + 2)?, 16).ok()?;
        }
        Some(Self(key))
    }
}

/// One cached answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// How long the upstream took to give it.
    pub upstream_ms: u64,
    /// When it was stored, in seconds since the Unix epoch.
    pub stored_at: u64,
}

/// An entry file's first line; the body follows it.
#[derive(Deserialize, Serialize)]
struct Header {
    format: String,
    key: String,
    status: u16,
    headers: Vec<(String, String)>,
    stored_at: u64,
    upstream_ms: u64,
    body_length: u64,
}

struct Slot {
    size: u64,
    stored_at: u64,
    used: u64,
}

/// Which entries there are, their sizes, and the order they were last used in.
#[derive(Default)]
struct Index {
    slots: HashMap<Key, Slot>,
    /// Use counter -> key, oldest first.
    order: BTreeMap<u64, Key>,
    bytes: u64,
    clock: u64,
}

impl Index {
    fn touch(&mut self, key: Key) {
        self.clock += 1;
        let clock = self.clock;
        if let Some(slot) = self.slots.get_mut(&key) {
            self.order.remove(&slot.used);
            slot.used = clock;
            self.order.insert(clock, key);
        }
    }

    fn insert(&mut self, key: Key, size: u64, stored_at: u64) {
        self.remove(key);
        self.clock += 1;
        self.slots.insert(
            key,
            Slot {
                size,
                stored_at,
                used: self.clock,
            },
        );
        self.order.insert(self.clock, key);
        self.bytes += size;
    }

    fn remove(&mut self, key: Key) -> bool {
        match self.slots.remove(&key) {
            Some(slot) => {
                self.order.remove(&slot.used);
                self.bytes -= slot.size;
                true
            }
            None => false,
        }
    }

    /// The least recently used keys to drop so that `incoming` more bytes fit in `capacity`.
    fn evict_for(&mut self, incoming: u64, capacity: u64) -> Vec<Key> {
        let mut evicted = Vec::new();
        while self.bytes + incoming > capacity {
            let Some((_, key)) = self.order.pop_first() else {
                break;
            };
            if let Some(slot) = self.slots.remove(&key) {
                self.bytes -= slot.size;
            }
            evicted.push(key);
        }
        evicted
    }
}

pub struct Cache {
    directory: PathBuf,
    capacity: u64,
    ttl: Duration,
    index: Mutex<Index>,
    /// One lock per key being fetched: identical requests at once reach the upstream once.
    in_flight: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

/// Held while one request fetches what `key` names; see `Cache::fetching`.
pub struct Fetching<'a> {
    cache: &'a Cache,
    key: Key,
    lock: Arc<tokio::sync::Mutex<()>>,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for Fetching<'_> {
    fn drop(&mut self) {
        let mut in_flight = self.cache.in_flight();
        // Forget the lock once no one else waits for it: the map, `lock` and the guard hold
        // the only references.
        if Arc::strong_count(&self.lock) <= 3 {
            in_flight.remove(&self.key);
        }
    }
}

impl Cache {
    /// Opens (creating) the cache in `directory`: indexes the entries there, oldest use first
    /// (by file time), removes expired ones and sets aside what is not an entry.
    pub fn open(directory: &Path, capacity: u64, ttl: Duration) -> Result<Self> {
        fs::create_dir_all(directory)
            .with_context(|| format!("cannot create {}", directory.display()))?;
        let cache = Self {
            directory: directory.to_path_buf(),
            capacity,
            ttl,
            index: Mutex::new(Index::default()),
            in_flight: Mutex::new(HashMap::new()),
        };
        let mut found = Vec::new();
        let entries = fs::read_dir(directory)
            .with_context(|| format!("cannot read {}", directory.display()))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(&path);
                continue;
            }
            let Some(stem) = name.strip_suffix(SUFFIX) else {
                continue;
            };
            match Key::from_hex(stem)
                .ok_or_else(|| "its name is not a key".to_string())
                .and_then(|key| read_header(&path, key).map(|header| (key, header)))
            {
                Ok((key, header)) => {
                    let size = entry.metadata().map(|meta| meta.len()).unwrap_or(0);
                    let used = entry
                        .metadata()
                        .and_then(|meta| meta.modified())
                        .unwrap_or(UNIX_EPOCH);
                    found.push((used, key, size, header.stored_at));
                }
                Err(reason) => set_aside(&path, &reason),
            }
        }
        found.sort();
        let mut index = cache.index();
        for (_, key, size, stored_at) in found {
            if cache.expired(stored_at) {
                let _ = fs::remove_file(cache.path(key));
            } else {
                index.insert(key, size, stored_at);
            }
        }
        for key in index.evict_for(0, capacity) {
            let _ = fs::remove_file(cache.path(key));
        }
        drop(index);
        Ok(cache)
    }

    /// The fresh answer stored for `key`, if any. An expired one is removed, never served.
    pub async fn get(&self, key: Key) -> Option<Answer> {
        {
            let mut index = self.index();
            let stored_at = index.slots.get(&key)?.stored_at;
            if self.expired(stored_at) {
                index.remove(key);
                drop(index);
                let _ = fs::remove_file(self.path(key));
                return None;
            }
            index.touch(key);
        }
        let path = self.path(key);
        let read = tokio::task::spawn_blocking(move || read_entry(&path, key)).await;
        match read {
            Ok(Ok(answer)) if !self.expired(answer.stored_at) => Some(answer),
            Ok(Ok(_)) => {
                self.forget(key);
                None
            }
            Ok(Err(reason)) => {
                // Gone meanwhile (evicted), or damaged since it was indexed.
                if self.index().remove(key) && !reason.is_empty() {
                    set_aside(&self.path(key), &reason);
                }
                None
            }
            Err(_) => None,
        }
    }

    /// Stores `answer` for `key`, evicting the least recently used answers to make room. An
    /// answer larger than the whole cache is not stored.
    pub async fn put(&self, key: Key, answer: Answer) -> Result<()> {
        let header = Header {
            format: FORMAT.to_string(),
            key: key.hex(),
            status: answer.status,
            headers: answer.headers,
            stored_at: answer.stored_at,
            upstream_ms: answer.upstream_ms,
            body_length: answer.body.len() as u64,
        };
        let mut line = serde_json::to_vec(&header)?;
        line.push(b'\n');
        let size = (line.len() + answer.body.len()) as u64;
        if size > self.capacity {
            return Ok(());
        }
        let path = self.path(key);
        let body = answer.body;
        tokio::task::spawn_blocking(move || write_entry(&path, &line, &body)).await??;
        let evicted = {
            let mut index = self.index();
            index.remove(key);
            let evicted = index.evict_for(size, self.capacity);
            index.insert(key, size, header.stored_at);
            evicted
        };
        for key in evicted {
            let _ = fs::remove_file(self.path(key));
        }
        Ok(())
    }

    /// Waits until no other request is fetching `key`, then marks this one as fetching it
    /// until the returned value is dropped.
    pub async fn fetching(&self, key: Key) -> Fetching<'_> {
        let lock = self.in_flight().entry(key).or_default().clone();
        let guard = lock.clone().lock_owned().await;
        Fetching {
            cache: self,
            key,
            lock,
            _guard: guard,
        }
    }

    /// The most bytes the cache holds: a bigger answer is never stored.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Entries and bytes held now.
    pub fn usage(&self) -> (usize, u64) {
        let index = self.index();
        (index.slots.len(), index.bytes)
    }

    fn forget(&self, key: Key) {
        self.index().remove(key);
        let _ = fs::remove_file(self.path(key));
    }

    fn expired(&self, stored_at: u64) -> bool {
        now().saturating_sub(stored_at) >= self.ttl.as_secs()
    }

    fn path(&self, key: Key) -> PathBuf {
        self.directory.join(format!("{}{SUFFIX}", key.hex()))
    }

    fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index
            .lock()
            .expect("no thread panics while holding the cache index")
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Arc<tokio::sync::Mutex<()>>>> {
        self.in_flight
            .lock()
            .expect("no thread panics while holding the in-flight map")
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// An entry's header, checked against its name and its file's length.
fn read_header(path: &Path, key: Key) -> Result<Header, String> {
    let file = fs::File::open(path).map_err(|error| error.to_string())?;
    let length = file.metadata().map_err(|error| error.to_string())?.len();
    let mut line = Vec::new();
    BufReader::new(file.take(1 << 20))
        .read_until(b'\n', &mut line)
        .map_err(|error| error.to_string())?;
    check_header(&line, key, length)
}

/// `line`, an entry's first line with its newline, as the header of `key`'s entry of `length`
/// bytes, or why it is not one.
fn check_header(line: &[u8], key: Key, length: u64) -> Result<Header, String> {
    let header: Header = serde_json::from_slice(line)
        .map_err(|_| format!("not a cache entry (its first line is not a {FORMAT} header)"))?;
    if header.format != FORMAT {
        return Err(format!("format {:?}, not {FORMAT}", header.format));
    }
    if header.key != key.hex() {
        return Err("it holds the answer of another request than its name says".to_string());
    }
    let promised = line.len() as u64 + header.body_length;
    if promised != length {
        return Err(format!(
            "{length} bytes, not the {promised} its header promises"
        ));
    }
    Ok(header)
}

/// The entry at `path`, read once; an error "" when it is gone, else why it is not an entry.
fn read_entry(path: &Path, key: Key) -> Result<Answer, String> {
    let bytes = match fs::read(path) {
        Ok(bytes) => Bytes::from(bytes),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Err(String::new()),
        Err(error) => return Err(error.to_string()),
    };
    let line_end = bytes
        .iter()
        .position(|&byte| byte == b'\n')
        .map_or(bytes.len(), |newline| newline + 1);
    let header = check_header(&bytes[..line_end], key, bytes.len() as u64)?;
    // Its time of use, so that a restart knows which entries were used last: to the minute,
    // so that a hit writes to the disk at most once a minute per entry.
    let now = SystemTime::now();
    let stale = fs::metadata(path)
        .and_then(|meta| meta.modified())
        .map_or(true, |used| {
            now.duration_since(used).unwrap_or_default() > TOUCH_AFTER
        });
    let file = stale.then(|| fs::File::options().write(true).open(path));
    if let Some(Ok(file)) = file {
        let _ = file.set_modified(now);
    }
    Ok(Answer {
        status: header.status,
        headers: header.headers,
        body: bytes.slice(line_end..),
        upstream_ms: header.upstream_ms,
        stored_at: header.stored_at,
    })
}

/// Writes beside the entry, syncs, renames: a crash leaves no half entry under its name.
fn write_entry(path: &Path, header: &[u8], body: &[u8]) -> Result<()> {
    let mut temporary = path.as_os_str().to_os_string();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let write = || -> std::io::Result<()> {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(header)?;
        file.write_all(body)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    };
    write().with_context(|| format!("cannot write {}", path.display()))
}

/// Renames what is not a usable entry out of the cache's way, and says so once.
fn set_aside(path: &Path, reason: &str) {
    let mut aside = path.as_os_str().to_os_string();
    aside.push(".set-aside");
    let aside = PathBuf::from(aside);
    match fs::rename(path, &aside) {
        Ok(()) => tracing::warn!(
            "{}: {reason}; set aside as {} and not used",
            path.display(),
            aside.display()
        ),
        Err(error) => tracing::warn!("{}: {reason}; cannot set it aside: {error}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::Scratch;

    fn answer(body: &str) -> Answer {
        Answer {
            status: 200,
            headers: vec![("content-type".to_string(), "application/json".to_string())],
            body: Bytes::from(body.to_string()),
            upstream_ms: 5,
            stored_at: now(),
        }
    }

    fn key(body: &str) -> Key {
        Key::of(
            &Method::POST,
            "/v1/messages",
            &HeaderMap::new(),
            body.as_bytes(),
        )
    }

    #[test]
    fn the_key_changes_with_what_changes_the_answer_and_with_credentials() {
        let mut headers = HeaderMap::new();
        let plain = Key::of(&Method::POST, "/v1/messages", &headers, b"{}");
        headers.insert("user-agent", "one".parse().unwrap());
        assert_eq!(
            Key::of(&Method::POST, "/v1/messages", &headers, b"{}"),
            plain
        );
        headers.insert("x-api-key", "one".parse().unwrap());
        assert_ne!(
            Key::of(&Method::POST, "/v1/messages", &headers, b"{}"),
            plain
        );
        headers.insert("anthropic-beta", "tools".parse().unwrap());
        assert_ne!(
            Key::of(&Method::POST, "/v1/messages", &headers, b"{}"),
            plain
        );
        assert_ne!(
            Key::of(&Method::GET, "/v1/messages", &HeaderMap::new(), b"{}"),
            plain
        );
        assert_ne!(
            Key::of(&Method::POST, "/v1/messages?x", &HeaderMap::new(), b"{}"),
            plain
        );
        assert_eq!(Key::from_hex(&plain.hex()), Some(plain));
    }

    #[tokio::test]
    async fn an_answer_survives_a_reopen() {
        let directory = Scratch::new("cache-reopen");
        let cache = Cache::open(&directory, 1 << 20, Duration::from_secs(3600)).unwrap();
        cache.put(key("a"), answer("first")).await.unwrap();
        drop(cache);
        let cache = Cache::open(&directory, 1 << 20, Duration::from_secs(3600)).unwrap();
        assert_eq!(cache.get(key("a")).await.unwrap().body, "first");
        assert!(cache.get(key("b")).await.is_none());
    }

    #[tokio::test]
    async fn the_least_recently_used_answer_goes_first() {
        let directory = Scratch::new("cache-evict");
        let probe = Cache::open(&directory, 1 << 20, Duration::from_secs(3600)).unwrap();
        probe.put(key("probe"), answer("0123456789")).await.unwrap();
        let size = probe.usage().1;
        drop(probe);
        let _ = fs::remove_dir_all(&directory);
        let cache = Cache::open(&directory, 2 * size, Duration::from_secs(3600)).unwrap();
        cache.put(key("a"), answer("aaaaaaaaaa")).await.unwrap();
        cache.put(key("b"), answer("bbbbbbbbbb")).await.unwrap();
        assert!(cache.get(key("a")).await.is_some());
        cache.put(key("c"), answer("cccccccccc")).await.unwrap();
        assert!(
            cache.get(key("b")).await.is_none(),
            "b was used least recently"
        );
        assert!(cache.get(key("a")).await.is_some());
        assert!(cache.get(key("c")).await.is_some());
        assert_eq!(cache.usage(), (2, 2 * size));
    }

    #[tokio::test]
    async fn an_expired_answer_is_never_served() {
        let directory = Scratch::new("cache-expired");
        let cache = Cache::open(&directory, 1 << 20, Duration::from_secs(60)).unwrap();
        let mut old = answer("old");
        old.stored_at = now() - 61;
        cache.put(key("a"), old).await.unwrap();
        assert!(cache.get(key("a")).await.is_none());
        assert_eq!(cache.usage(), (0, 0));
    }

    #[tokio::test]
    async fn a_damaged_or_foreign_file_is_set_aside() {
        let directory = Scratch::new("cache-damaged");
        let cache = Cache::open(&directory, 1 << 20, Duration::from_secs(3600)).unwrap();
        cache.put(key("a"), answer("whole")).await.unwrap();
        cache.put(key("b"), answer("other")).await.unwrap();
        drop(cache);
        let path_a = directory.join(format!("{}{SUFFIX}", key("a").hex()));
        let path_b = directory.join(format!("{}{SUFFIX}", key("b").hex()));
        let mut bytes = fs::read(&path_a).unwrap();
        bytes.truncate(bytes.len() - 2);
        fs::write(&path_a, bytes).unwrap();
        // b's file under c's name: a wrong answer, were it served.
        let path_c = directory.join(format!("{}{SUFFIX}", key("c").hex()));
        fs::copy(&path_b, &path_c).unwrap();
        let cache = Cache::open(&directory, 1 << 20, Duration::from_secs(3600)).unwrap();
        assert!(cache.get(key("a")).await.is_none());
        assert!(cache.get(key("c")).await.is_none());
        assert_eq!(cache.get(key("b")).await.unwrap().body, "other");
        let set_aside = directory.join(format!("{}{SUFFIX}.set-aside", key("c").hex()));
        assert!(set_aside.exists());
    }
}
