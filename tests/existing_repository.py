"""A realistic existing cco repository, as the specification's author had it before adopting
the template: a crate in cco/ with a hand-written manifest (22 dependencies, one of which
compiles C: libz-sys builds zlib from source), `[[bin]]`, `[lib]`, `[package.metadata]` and
`[build-dependencies]`, a build.rs that embeds GIT_HASH, BUILD_DATE and variables of its own,
the owner's Makefile (six of the specification's targets and two of its own), install.sh,
README.md and a .gitignore that ignores Cargo.lock (the specification's §10), and a
configuration that is an agent roster in a shape of its own.
"""

from __future__ import annotations

import os
from pathlib import Path

CARGO_TOML = """\
# cco: Claude Code Orchestra. Hand-written; every line here is the owner's.
[package]
name = "cco"
version = "0.3.1"
edition = "2024"
rust-version = "1.85"
description = "Claude Code Orchestra: agents, a proxy and a dashboard"
license = "MIT"
publish = false
default-run = "cco"

[lib]
name = "orchestra"
path = "src/lib.rs"

[[bin]]
name = "cco"
path = "src/main.rs"

[package.metadata.orchestra]
roster = "../config/orchestra-config.json" # read by build.rs
min-agents = 2

[dependencies]
tokio = { version = "1", features = ["full"] }
serde = { version = "1", features = ["derive"] }
serde_json = "1"
anyhow = "1"
thiserror = "1"
clap = { version = "4", features = ["derive"] }
axum = "0.7"
hyper = "1"
tracing = "0.1"
tracing-subscriber = "0.3"
# zlib, compiled from its C sources by the cc crate: the roster snapshots are compressed.
libz-sys = { version = "1", features = ["static"] }
bytes = "1"
once_cell = "1"
itoa = "1"
memchr = "2"
hex = "0.4"
base64 = "0.22"
humantime = "2"
semver = "1"
either = "1"
smallvec = "1"
fnv = "1"

[build-dependencies]
serde_json = "1"

# The owner's own release profile; the template's answers take over through .cargo/config.toml.
[profile.release]
lto = "thin"
codegen-units = 16
"""

BUILD_RS = r"""//! The owner's build script: checks the roster and embeds the commit, the date and the
//! number of agents.
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-changed=../config/orchestra-config.json");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let roster = std::fs::read_to_string("../config/orchestra-config.json").expect("the roster");
    let roster: serde_json::Value = serde_json::from_str(&roster).expect("the roster is JSON");
    let agents = roster["orchestra"]["agents"].as_object().map_or(0, |agents| agents.len());
    println!("cargo:rustc-env=CCO_AGENT_COUNT={agents}");
    println!("cargo:rustc-env=CCO_ROSTER_VERSION={}", roster["version"]);

    let hash = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .map(|hash| hash.trim().to_string())
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=GIT_HASH={hash}");

    let seconds = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|epoch| epoch.parse::<u64>().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs());
    println!("cargo:rustc-env=BUILD_DATE={}", civil_date(seconds / 86_400));
}

/// Days since 1970-01-01 as YYYY-MM-DD (Howard Hinnant's civil_from_days).
fn civil_date(days: u64) -> String {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
"""

LIB_RS = """\
//! The orchestra: who plays, and how their snapshots are compressed.
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Agent {
    pub role: String,
    pub model: String,
}

/// The zlib version the C library reports: proof that it was compiled and linked.
pub fn zlib_version() -> String {
    // SAFETY: zlibVersion returns a static, NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(libz_sys::zlibVersion()) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn zlib_is_linked() {
        assert!(super::zlib_version().starts_with('1'));
    }
}
"""

MAIN_RS = """\
use clap::Parser;

const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("GIT_HASH"),
    ", built ",
    env!("BUILD_DATE"),
    ", ",
    env!("CCO_AGENT_COUNT"),
    " agents)"
);

/// Claude Code Orchestra.
#[derive(Parser)]
#[command(name = "cco", version = VERSION)]
struct Cli {
    /// Print the zlib version and exit.
    #[arg(long)]
    zlib: bool,
}

fn main() {
    let cli = Cli::parse();
    if cli.zlib {
        println!("zlib {}", orchestra::zlib_version());
    } else {
        println!("cco: the orchestra has {} agents", env!("CCO_AGENT_COUNT"));
    }
}
"""

MAKEFILE = """\
# The owner's Makefile: six of the specification's targets, written by hand, and two of their own.
CARGO ?= cargo
PREFIX ?= /usr/local

.PHONY: build test release install clean fmt deploy roster

build:
\t$(CARGO) build

test:
\t$(CARGO) test

release:
\t$(CARGO) build --release

install: release
\tinstall -m 755 target/release/cco $(PREFIX)/bin/cco

clean:
\t$(CARGO) clean

fmt:
\t$(CARGO) fmt

# The owner's own targets.
deploy: release
\tscp target/release/cco orchestra.example.invalid:/opt/cco/bin/

roster:
\t@python3 -m json.tool ../config/orchestra-config.json
"""

INSTALL_SH = """\
#!/bin/sh
# The owner's installer: builds and copies cco to $PREFIX/bin.
set -eu
PREFIX=${PREFIX:-/usr/local}
cd "$(dirname "$0")"
cargo build --release
install -m 755 target/release/cco "$PREFIX/bin/cco"
echo "cco installed in $PREFIX/bin"
"""

README = """\
# cc-orchestra

The owner's README: how the orchestra is set up, who to ask, and the roster's format.

Run `make roster` to print the roster.
"""

GITIGNORE = """\
# The owner's ignores: Cargo.lock too, as the specification's §10 has it.
target/
Cargo.lock
*.log
.env
"""

CONFIG = """\
{
  "version": 2,
  "orchestra": {
    "conductor": "architect",
    "agents": {
      "architect": {"role": "design", "model": "opus"},
      "coder": {"role": "implementation", "model": "sonnet"},
      "reviewer": {"role": "review", "model": "sonnet"}
    }
  }
}
"""

FILES = {
    "README.md": README,
    ".gitignore": GITIGNORE,
    "config/orchestra-config.json": CONFIG,
    "cco/Cargo.toml": CARGO_TOML,
    "cco/build.rs": BUILD_RS,
    "cco/src/lib.rs": LIB_RS,
    "cco/src/main.rs": MAIN_RS,
    "cco/Makefile": MAKEFILE,
    "cco/install.sh": INSTALL_SH,
}

# The files of the owner's that the template also renders: kept as they are, and recorded.
OWNED = sorted({"README.md", ".gitignore", "cco/Makefile", "cco/install.sh"})
DEPENDENCIES = 22


def write_repository(root: Path) -> None:
    """Writes the owner's files under `root` (Cargo.lock is the caller's: it needs cargo)."""
    for name, text in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "cco" / "install.sh").chmod(0o755)
    assert os.access(root / "cco" / "install.sh", os.X_OK)
