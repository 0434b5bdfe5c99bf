//! End-to-end tests of the binary: what its help promises, it does.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

#[path = "../src/scratch.rs"]
mod scratch;

use scratch::Scratch;

// The package's binary, which has the package's name (cargo sets CARGO_BIN_EXE_<name> for tests).
const BIN: &str = env!(concat!("CARGO_BIN_EXE_", env!("CARGO_PKG_NAME")));

/// A command with a private data directory and none of the caller's CCO_* settings.
fn command(home: &Path) -> Command {
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("CCO_")) {
        command.env_remove(name);
    }
    command.env("CCO_HOME", home);
    command
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn version_shows_the_build_metadata() {
    let output = command(&Scratch::new("cli-version"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(output.status.success());
    let expected = format!(
        "{} {} ({} {})\n",
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_VERSION"),
        env!("GIT_HASH"),
        env!("BUILD_DATE")
    );
    assert_eq!(stdout(&output), expected);
}

#[test]
fn help_lists_every_command() {
    let output = command(&Scratch::new("cli-help"))
        .arg("--help")
        .output()
        .unwrap();
    let help = stdout(&output);
    for name in ["run", "health", "stats", "config"] {
        assert!(
            help.contains(&format!("  {name} ")),
            "{name} missing from:\n{help}"
        );
    }
}

#[test]
fn a_bad_port_names_its_variable_and_exits_2() {
    let output = command(&Scratch::new("cli-bad-port"))
        .env("CCO_PROXY_PORT", "abc")
        .arg("config")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("CCO_PROXY_PORT"));
}

#[test]
fn stats_says_when_nothing_is_recorded() {
    let output = command(&Scratch::new("cli-no-stats"))
        .arg("stats")
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(stdout(&output).starts_with("No requests recorded yet"));
}

#[cfg(unix)]
#[test]
fn run_serves_health_then_stops_on_sigterm_and_keeps_its_counts() {
    let home = Scratch::new("cli-run");
    let (proxy, dashboard) = (free_port(), free_port());
    let mut server = command(&home)
        .args([
            "run",
            "--proxy-port",
            &proxy.to_string(),
            "--dashboard-port",
            &dashboard.to_string(),
        ])
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    let healthy = loop {
        let output = command(&home)
            .env("CCO_PROXY_PORT", proxy.to_string())
            .env("CCO_DASHBOARD_PORT", dashboard.to_string())
            .arg("health")
            .output()
            .unwrap();
        if output.status.success() || Instant::now() > deadline {
            break output;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(healthy.status.success(), "{}", stdout(&healthy));
    assert_eq!(stdout(&healthy).matches("\"status\":\"ok\"").count(), 2);

    let terminated = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(terminated.success());
    assert!(
        server.wait().unwrap().success(),
        "run must exit 0 on SIGTERM"
    );

    let stats = stdout(&command(&home).arg("stats").output().unwrap());
    assert!(
        stats.contains("proxy") && stats.contains("dashboard") && stats.contains("/health"),
        "{stats}"
    );
}
