//! A folder of its own for a test, in the system's temporary folder: absent when the test
//! starts (what is in it, the code under test makes) and removed when the test ends, passed
//! or failed. The unit tests use it; tests/cli.rs includes this file too.

use std::path::{Path, PathBuf};

pub struct Scratch(PathBuf);

impl Scratch {
    /// `<temporary folder>/cco-<name>-<process id>`: tests running at once in one process
    /// take different names, and so do test processes running at once.
    pub fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("cco-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        Self(path)
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
