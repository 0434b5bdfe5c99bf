//! Claude Code Orchestra: `run` serves the proxy (to CCO_UPSTREAM, with a response cache)
//! and the dashboard, `health` asks a running instance how it is, `stats` shows what it
//! served, `config` what it uses.

mod cache;
mod client;
mod config;
mod home;
mod proxy;
mod schema;
#[cfg(test)]
mod scratch;
mod server;
mod stats;
mod tls;

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use config::{Flags, Resolver, SettingError, Settings, Source};

/// What build.rs embedded: `cco --version` and `/health` show it.
mod build_info {
    pub const GIT_HASH: &str = env!("GIT_HASH");
    pub const BUILD_DATE: &str = env!("BUILD_DATE");
    pub const VERSION: &str = concat!(
        env!("CARGO_PKG_VERSION"),
        " (",
        env!("GIT_HASH"),
        " ",
        env!("BUILD_DATE"),
        ")"
    );
}

#[derive(Parser)]
#[command(version = build_info::VERSION, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the proxy to the upstream and the dashboard until SIGINT or SIGTERM, counting requests
    Run(RunArgs),
    /// Ask a running instance for /health on both ports; exit 0 when both answer, 1 otherwise
    Health(HealthArgs),
    /// Show what `run` served: the proxy's cache, errors and tokens by model, and requests by route
    Stats,
    /// Show the settings in effect and where each comes from
    Config,
}

#[derive(Args)]
struct RunArgs {
    /// Proxy port [default: CCO_PROXY_PORT, else the configuration's]
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    proxy_port: Option<u16>,
    /// Dashboard port [default: CCO_DASHBOARD_PORT, else the configuration's]
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    dashboard_port: Option<u16>,
    /// Where the proxy forwards to, http:// or https:// [default: CCO_UPSTREAM, else the configuration's, else https://api.anthropic.com]
    #[arg(long, value_name = "URL")]
    upstream: Option<String>,
}

#[derive(Args)]
struct HealthArgs {
    /// Host to ask
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Ask this port only [default: the proxy and the dashboard ports]
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    port: Option<u16>,
    /// Seconds to wait for each answer
    #[arg(long, default_value_t = 3)]
    timeout: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let resolver = Resolver::from_process();
    let result = match cli.command {
        Command::Run(args) => run(&resolver, args),
        Command::Health(args) => health(&resolver, args),
        Command::Stats => stats(&resolver),
        Command::Config => show_config(&resolver),
    };
    match result {
        Ok(code) => code,
        // A bad setting is a usage error, like a bad flag: exit code 2.
        Err(error) if error.is::<SettingError>() => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(resolver: &Resolver<impl Fn(&str) -> Option<String>>, args: RunArgs) -> Result<ExitCode> {
    let settings = resolver.settings(&Flags {
        proxy: args.proxy_port,
        dashboard: args.dashboard_port,
        upstream: args.upstream,
    })?;
    // Logs go to stderr, coloured only on a terminal; RUST_LOG filters them (default: info).
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => {
            EnvFilter::try_new(&value).map_err(|error| SettingError::LogFilter {
                value,
                reason: error.to_string(),
            })?
        }
        _ => EnvFilter::new("info"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    runtime()?.block_on(server::run(settings, resolver.api_key()))?;
    Ok(ExitCode::SUCCESS)
}

fn health(
    resolver: &Resolver<impl Fn(&str) -> Option<String>>,
    args: HealthArgs,
) -> Result<ExitCode> {
    let ports = match args.port {
        Some(port) => vec![port],
        None => {
            let (proxy, dashboard) = resolver.ports(&Flags::default())?;
            vec![proxy.value, dashboard.value]
        }
    };
    let runtime = runtime()?;
    let timeout = Duration::from_secs(args.timeout);
    let mut healthy = true;
    let mut out = String::new();
    for port in ports {
        let host = &args.host;
        match runtime.block_on(client::check(host, port, timeout)) {
            Ok(body) => writeln!(out, "{host}:{port} healthy: {body}")?,
            Err(error) => {
                writeln!(out, "{host}:{port} unhealthy: {error:#}")?;
                healthy = false;
            }
        }
    }
    emit(&out)?;
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn stats(resolver: &Resolver<impl Fn(&str) -> Option<String>>) -> Result<ExitCode> {
    let path = resolver.home()?.value.join(stats::FILE_NAME);
    let dashboard_port = resolver.dashboard_port(None)?.value;
    // A running instance knows counts it has not written yet: ask it first.
    let live = runtime()?
        .block_on(client::stats("127.0.0.1", dashboard_port))
        .ok();
    let (recorded, origin) = match live {
        Some(stats) => (
            Some(stats),
            format!("by the instance running on port {dashboard_port}"),
        ),
        None => (stats::Stats::load(&path)?, format!("in {}", path.display())),
    };
    let mut out = String::new();
    match recorded {
        Some(recorded) if !recorded.is_empty() => {
            writeln!(out, "{} requests recorded {origin}", recorded.total())?;
            write_proxied(&mut out, &recorded)?;
            writeln!(
                out,
                "{:<10} {:<24} {:>6} {:>10}",
                "SERVICE", "ROUTE", "STATUS", "COUNT"
            )?;
            for entry in recorded.entries() {
                writeln!(
                    out,
                    "{:<10} {:<24} {:>6} {:>10}",
                    entry.service, entry.route, entry.status, entry.count
                )?;
            }
        }
        _ => writeln!(
            out,
            "No requests recorded yet ({} does not hold any). `run` records them.",
            path.display()
        )?,
    }
    emit(&out)?;
    Ok(ExitCode::SUCCESS)
}

fn show_config(resolver: &Resolver<impl Fn(&str) -> Option<String>>) -> Result<ExitCode> {
    let settings = resolver.settings(&Flags::default())?;
    emit(&settings_table(&settings, resolver.api_key().is_some())?)?;
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Writes a command's output. A reader that went away (`cco stats | head -1`) ends the
/// command quietly: there is no one left to tell.
fn emit(text: &str) -> Result<()> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        written => Ok(written?),
    }
}

/// The proxy's part of `stats`: totals, then a row per model.
fn write_proxied(out: &mut String, recorded: &stats::Stats) -> Result<()> {
    let models = recorded.models();
    if models.is_empty() {
        return Ok(());
    }
    let sum = recorded.proxied();
    writeln!(
        out,
        "proxied {}: cache {} hits, {} misses; saved {} bytes and {:.1} s of upstream time; {} upstream errors",
        sum.requests,
        sum.cache_hits,
        sum.cache_misses,
        sum.bytes_saved,
        sum.upstream_ms_saved as f64 / 1000.0,
        sum.upstream_errors
    )?;
    writeln!(
        out,
        "{:<28} {:>8} {:>6} {:>6} {:>6} {:>12} {:>12}",
        "MODEL", "REQUESTS", "HITS", "MISSES", "ERRORS", "INPUT TOKENS", "OUTPUT TOKENS"
    )?;
    for entry in models {
        let counts = entry.counts;
        writeln!(
            out,
            "{:<28} {:>8} {:>6} {:>6} {:>6} {:>12} {:>12}",
            entry.model,
            counts.requests,
            counts.cache_hits,
            counts.cache_misses,
            counts.upstream_errors,
            counts.input_tokens,
            counts.output_tokens
        )?;
    }
    Ok(())
}

fn settings_table(settings: &Settings, api_key: bool) -> Result<String> {
    let source = |source: Source, variable: &str| match source {
        Source::Flag => "command line".to_string(),
        Source::Environment => variable.to_string(),
        Source::Config => "config/orchestra-config.json".to_string(),
        Source::Default => "default".to_string(),
    };
    let rows = [
        (
            "proxy port",
            settings.proxy_port.value.to_string(),
            source(settings.proxy_port.source, "CCO_PROXY_PORT"),
        ),
        (
            "dashboard port",
            settings.dashboard_port.value.to_string(),
            source(settings.dashboard_port.source, "CCO_DASHBOARD_PORT"),
        ),
        (
            "bind address",
            settings.bind.value.to_string(),
            source(settings.bind.source, "CCO_BIND"),
        ),
        (
            "data directory",
            settings.home.value.display().to_string(),
            source(settings.home.source, "CCO_HOME"),
        ),
        (
            "cache size",
            format!("{} MB", settings.cache_size_mb.value),
            source(settings.cache_size_mb.source, "CCO_CACHE_SIZE"),
        ),
        (
            "cache ttl",
            format!("{} h", settings.cache_ttl_hours.value),
            source(settings.cache_ttl_hours.source, "CCO_CACHE_TTL"),
        ),
        (
            "upstream",
            settings.upstream.value.to_string(),
            source(settings.upstream.source, "CCO_UPSTREAM"),
        ),
        (
            "upstream timeout",
            format!("{} s", settings.upstream_timeout_secs.value),
            source(
                settings.upstream_timeout_secs.source,
                "CCO_UPSTREAM_TIMEOUT",
            ),
        ),
        (
            "api key",
            if api_key { "set" } else { "not set" }.to_string(),
            "ANTHROPIC_API_KEY".to_string(),
        ),
    ];
    let mut out = String::new();
    for (name, value, source) in rows {
        writeln!(out, "{name:<16} {value:<28} ({source})")?;
    }
    writeln!(out, "agents")?;
    for agent in &settings.agents {
        writeln!(
            out,
            "  {:<13} {:<28} {}",
            agent.name, agent.model, agent.role
        )?;
    }
    Ok(out)
}
