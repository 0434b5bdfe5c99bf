//! The orchestra configuration compiled into the binary, and the settings in
//! effect at run time: the configuration's values, overridden by the environment
//! (CCO_PROXY_PORT, CCO_DASHBOARD_PORT, CCO_BIND, CCO_HOME, CCO_CACHE_SIZE,
//! CCO_CACHE_TTL, CCO_UPSTREAM, CCO_UPSTREAM_TIMEOUT) and, for the ports and the upstream,
//! by command-line flags. ANTHROPIC_API_KEY is read where it is used, never shown.

use std::net::IpAddr;
use std::path::PathBuf;

/// config/orchestra-config.json, as build.rs validated it.
const EMBEDDED: &str = include_str!(env!("CCO_CONFIG_PATH"));

pub use crate::schema::{Agent, OrchestraConfig};

/// The configuration compiled in; build.rs has already refused one that breaks the schema.
pub fn embedded() -> OrchestraConfig {
    crate::schema::parse(EMBEDDED).expect("build.rs validated config/orchestra-config.json")
}

/// A setting that could not be taken; `main` reports it and exits with code 2.
#[derive(Debug, thiserror::Error)]
pub enum SettingError {
    #[error("{name}: \"{value}\" is not a port (expected an integer from 1 to 65535)")]
    Port { name: &'static str, value: String },
    #[error("{name}: \"{value}\" is not a positive number")]
    Positive { name: &'static str, value: String },
    #[error("{name}: \"{value}\" is not an IP address")]
    Address { name: &'static str, value: String },
    #[error(
        "{name}: \"{value}\" is not an http:// or https:// URL (e.g. https://api.anthropic.com)"
    )]
    Url { name: &'static str, value: String },
    #[error(
        "the proxy and the dashboard cannot share port {0}; set CCO_PROXY_PORT or CCO_DASHBOARD_PORT"
    )]
    SamePort(u16),
    #[error("neither CCO_HOME nor HOME is set: there is nowhere to keep the statistics")]
    NoHome,
    #[error("RUST_LOG: \"{value}\" is not a log filter ({reason}); e.g. RUST_LOG=debug")]
    LogFilter { value: String, reason: String },
}

/// Where each value came from, so `config` can say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Environment,
    Config,
    Default,
}

#[derive(Debug, Clone)]
pub struct Setting<T> {
    pub value: T,
    pub source: Source,
}

/// Everything `run` and `config` use.
#[derive(Debug, Clone)]
pub struct Settings {
    pub proxy_port: Setting<u16>,
    pub dashboard_port: Setting<u16>,
    pub bind: Setting<IpAddr>,
    pub home: Setting<PathBuf>,
    pub cache_size_mb: Setting<u64>,
    /// Hours; a fraction is allowed (0.5 is half an hour).
    pub cache_ttl_hours: Setting<f64>,
    pub upstream: Setting<hyper::Uri>,
    pub upstream_timeout_secs: Setting<u64>,
    pub agents: Vec<Agent>,
}

/// The upstream when neither a flag, CCO_UPSTREAM nor the configuration names one.
pub const DEFAULT_UPSTREAM: &str = "https://api.anthropic.com";
/// Seconds the upstream may take to start answering, and between two parts of an answer
/// (the Anthropic SDKs' own default timeout is 10 minutes).
const DEFAULT_UPSTREAM_TIMEOUT_SECS: u64 = 600;

/// Settings given on the command line, which win over the environment.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub proxy: Option<u16>,
    pub dashboard: Option<u16>,
    pub upstream: Option<String>,
}

/// Resolves settings one at a time from flags, then the environment, then the
/// configuration, so that each command takes only what it uses: a bad CCO_CACHE_SIZE
/// stops `run`, not `stats`.
pub struct Resolver<E> {
    config: OrchestraConfig,
    env: E,
}

impl Resolver<fn(&str) -> Option<String>> {
    /// The embedded configuration and the process environment.
    pub fn from_process() -> Self {
        Self::new(embedded(), |name| std::env::var(name).ok())
    }
}

impl<E: Fn(&str) -> Option<String>> Resolver<E> {
    pub fn new(config: OrchestraConfig, env: E) -> Self {
        Self { config, env }
    }

    pub fn proxy_port(&self, flag: Option<u16>) -> Result<Setting<u16>, SettingError> {
        self.port(flag, "CCO_PROXY_PORT", self.config.server.proxy_port)
    }

    pub fn dashboard_port(&self, flag: Option<u16>) -> Result<Setting<u16>, SettingError> {
        self.port(
            flag,
            "CCO_DASHBOARD_PORT",
            self.config.server.dashboard_port,
        )
    }

    /// Both ports, which must differ.
    pub fn ports(&self, flags: &Flags) -> Result<(Setting<u16>, Setting<u16>), SettingError> {
        let proxy = self.proxy_port(flags.proxy)?;
        let dashboard = self.dashboard_port(flags.dashboard)?;
        if proxy.value == dashboard.value {
            return Err(SettingError::SamePort(proxy.value));
        }
        Ok((proxy, dashboard))
    }

    /// Loopback unless told otherwise: the image sets CCO_BIND=0.0.0.0 to publish its ports.
    pub fn bind(&self) -> Result<Setting<IpAddr>, SettingError> {
        let loopback = Setting {
            value: IpAddr::from([127, 0, 0, 1]),
            source: Source::Default,
        };
        from_env(&self.env, "CCO_BIND", loopback, |name, value| {
            value.parse().map_err(|_| SettingError::Address {
                name,
                value: value.to_string(),
            })
        })
    }

    /// Where `run` keeps its statistics: CCO_HOME, else ~/.cco.
    pub fn home(&self) -> Result<Setting<PathBuf>, SettingError> {
        let env = &self.env;
        match env("CCO_HOME").filter(|home| !home.is_empty()) {
            Some(home) => Ok(Setting {
                value: PathBuf::from(home),
                source: Source::Environment,
            }),
            None => match env("HOME").filter(|home| !home.is_empty()) {
                Some(home) => Ok(Setting {
                    value: PathBuf::from(home).join(".cco"),
                    source: Source::Default,
                }),
                None => Err(SettingError::NoHome),
            },
        }
    }

    /// Where the proxy forwards to: the flag, CCO_UPSTREAM, the configuration's, or
    /// DEFAULT_UPSTREAM.
    pub fn upstream(&self, flag: Option<&str>) -> Result<Setting<hyper::Uri>, SettingError> {
        let (value, source, name) = match (flag, (self.env)("CCO_UPSTREAM")) {
            (Some(flag), _) => (flag.to_string(), Source::Flag, "--upstream"),
            (None, Some(value)) => (value, Source::Environment, "CCO_UPSTREAM"),
            (None, None) => match &self.config.server.upstream {
                Some(value) => (value.clone(), Source::Config, "server.upstream"),
                None => (DEFAULT_UPSTREAM.to_string(), Source::Default, "default"),
            },
        };
        Ok(Setting {
            value: parse_url(name, value.trim())?,
            source,
        })
    }

    /// ANTHROPIC_API_KEY, when set: `run` gives it to the proxy, `config` says only whether it is.
    pub fn api_key(&self) -> Option<String> {
        (self.env)("ANTHROPIC_API_KEY").filter(|key| !key.trim().is_empty())
    }

    /// Every setting, as `run` and `config` use them.
    pub fn settings(&self, flags: &Flags) -> Result<Settings, SettingError> {
        let (proxy_port, dashboard_port) = self.ports(flags)?;
        Ok(Settings {
            proxy_port,
            dashboard_port,
            bind: self.bind()?,
            home: self.home()?,
            cache_size_mb: from_env(
                &self.env,
                "CCO_CACHE_SIZE",
                configured(self.config.cache.size_mb),
                parse_positive,
            )?,
            cache_ttl_hours: from_env(
                &self.env,
                "CCO_CACHE_TTL",
                configured(self.config.cache.ttl_hours as f64),
                parse_hours,
            )?,
            upstream: self.upstream(flags.upstream.as_deref())?,
            upstream_timeout_secs: from_env(
                &self.env,
                "CCO_UPSTREAM_TIMEOUT",
                Setting {
                    value: DEFAULT_UPSTREAM_TIMEOUT_SECS,
                    source: Source::Default,
                },
                parse_positive,
            )?,
            agents: self.config.agents.clone(),
        })
    }

    fn port(
        &self,
        flag: Option<u16>,
        name: &'static str,
        configured_port: u16,
    ) -> Result<Setting<u16>, SettingError> {
        match flag {
            Some(value) => Ok(Setting {
                value,
                source: Source::Flag,
            }),
            None => from_env(&self.env, name, configured(configured_port), parse_port),
        }
    }
}

fn configured<T>(value: T) -> Setting<T> {
    Setting {
        value,
        source: Source::Config,
    }
}

/// The variable's value when it is set, else the fallback.
fn from_env<T>(
    env: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    fallback: Setting<T>,
    parse: impl Fn(&'static str, &str) -> Result<T, SettingError>,
) -> Result<Setting<T>, SettingError> {
    match env(name) {
        Some(value) => Ok(Setting {
            value: parse(name, value.trim())?,
            source: Source::Environment,
        }),
        None => Ok(fallback),
    }
}

fn parse_port(name: &'static str, value: &str) -> Result<u16, SettingError> {
    match value.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(SettingError::Port {
            name,
            value: value.to_string(),
        }),
    }
}

/// An http:// or https:// URL with a host; a path is a prefix for every forwarded path.
fn parse_url(name: &'static str, value: &str) -> Result<hyper::Uri, SettingError> {
    let refused = || SettingError::Url {
        name,
        value: value.to_string(),
    };
    let uri: hyper::Uri = value.parse().map_err(|_| refused())?;
    match (uri.scheme_str(), uri.host(), uri.query()) {
        (Some("http" | "https"), Some(host), None) if !host.is_empty() => Ok(uri),
        _ => Err(refused()),
    }
}

fn parse_hours(name: &'static str, value: &str) -> Result<f64, SettingError> {
    match value.parse::<f64>() {
        Ok(hours) if hours.is_finite() && hours > 0.0 => Ok(hours),
        _ => Err(SettingError::Positive {
            name,
            value: value.to_string(),
        }),
    }
}

fn parse_positive(name: &'static str, value: &str) -> Result<u64, SettingError> {
    match value.parse::<u64>() {
        Ok(number) if number > 0 => Ok(number),
        _ => Err(SettingError::Positive {
            name,
            value: value.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolver(vars: &[(&str, &str)]) -> Resolver<impl Fn(&str) -> Option<String>> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Resolver::new(embedded(), move |name| vars.get(name).cloned())
    }

    fn resolve(flags: Flags, vars: &[(&str, &str)]) -> Result<Settings, SettingError> {
        resolver(vars).settings(&flags)
    }

    #[test]
    fn embedded_configuration_parses() {
        let config = embedded();
        assert!(!config.agents.is_empty());
        assert_ne!(config.server.proxy_port, config.server.dashboard_port);
    }

    #[test]
    fn configuration_is_the_default() {
        let config = embedded();
        let settings = resolve(Flags::default(), &[("HOME", "/home/user")]).unwrap();
        assert_eq!(settings.proxy_port.value, config.server.proxy_port);
        assert_eq!(settings.proxy_port.source, Source::Config);
        assert_eq!(settings.home.value, PathBuf::from("/home/user/.cco"));
        assert_eq!(settings.bind.value, IpAddr::from([127, 0, 0, 1]));
    }

    #[test]
    fn flags_beat_environment_beats_configuration() {
        let flags = Flags {
            proxy: Some(9000),
            ..Flags::default()
        };
        let settings = resolve(
            flags,
            &[
                ("HOME", "/h"),
                ("CCO_PROXY_PORT", "9100"),
                ("CCO_DASHBOARD_PORT", "9200"),
            ],
        )
        .unwrap();
        assert_eq!(settings.proxy_port.value, 9000);
        assert_eq!(settings.proxy_port.source, Source::Flag);
        assert_eq!(settings.dashboard_port.value, 9200);
        assert_eq!(settings.dashboard_port.source, Source::Environment);
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("CCO_PROXY_PORT", "abc"),
            ("CCO_DASHBOARD_PORT", "70000"),
            ("CCO_CACHE_SIZE", "0"),
            ("CCO_CACHE_TTL", "0"),
            ("CCO_BIND", "here"),
            ("CCO_UPSTREAM", "api.anthropic.com"),
            ("CCO_UPSTREAM", "ftp://example.com"),
            ("CCO_UPSTREAM_TIMEOUT", "-1"),
        ] {
            let error = resolve(Flags::default(), &[("HOME", "/h"), (name, value)]).unwrap_err();
            assert!(error.to_string().starts_with(name), "{error}");
        }
    }

    #[test]
    fn equal_ports_are_refused() {
        let error = resolve(
            Flags::default(),
            &[
                ("HOME", "/h"),
                ("CCO_PROXY_PORT", "7000"),
                ("CCO_DASHBOARD_PORT", "7000"),
            ],
        );
        assert!(matches!(error, Err(SettingError::SamePort(7000))));
    }

    #[test]
    fn a_bad_setting_stops_only_what_uses_it() {
        let resolver = resolver(&[
            ("HOME", "/h"),
            ("CCO_PROXY_PORT", "abc"),
            ("CCO_CACHE_SIZE", "0"),
        ]);
        assert!(resolver.settings(&Flags::default()).is_err());
        assert_eq!(resolver.home().unwrap().value, PathBuf::from("/h/.cco"));
        let config = embedded();
        assert_eq!(
            resolver.dashboard_port(None).unwrap().value,
            config.server.dashboard_port
        );
    }

    #[test]
    fn cco_home_wins_over_home() {
        let settings = resolve(Flags::default(), &[("HOME", "/h"), ("CCO_HOME", "/data")]).unwrap();
        assert_eq!(settings.home.value, PathBuf::from("/data"));
        assert!(matches!(
            resolve(Flags::default(), &[]),
            Err(SettingError::NoHome)
        ));
    }

    #[test]
    fn the_upstream_is_layered_like_the_other_settings() {
        let settings = resolve(Flags::default(), &[("HOME", "/h")]).unwrap();
        assert_eq!(settings.upstream.value, DEFAULT_UPSTREAM);
        let settings = resolve(
            Flags::default(),
            &[
                ("HOME", "/h"),
                ("CCO_UPSTREAM", "http://127.0.0.1:9/prefix"),
            ],
        )
        .unwrap();
        assert_eq!(settings.upstream.value, "http://127.0.0.1:9/prefix");
        assert_eq!(settings.upstream.source, Source::Environment);
        let flags = Flags {
            upstream: Some("https://example.com".to_string()),
            ..Flags::default()
        };
        let settings = resolve(flags, &[("HOME", "/h"), ("CCO_UPSTREAM", "http://x")]).unwrap();
        assert_eq!(settings.upstream.source, Source::Flag);
    }
}
