//! The orchestra configuration's schema, in one place: build.rs includes this file to refuse
//! a broken config/orchestra-config.json before anything compiles, and the application reads
//! the configuration it embeds with the same types.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct OrchestraConfig {
    pub server: ServerConfig,
    pub cache: CacheConfig,
    pub agents: Vec<Agent>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ServerConfig {
    pub proxy_port: u16,
    pub dashboard_port: u16,
    /// Where the proxy forwards to (CCO_UPSTREAM overrides it); absent: the Anthropic API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CacheConfig {
    pub size_mb: u64,
    pub ttl_hours: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Agent {
    pub name: String,
    pub role: String,
    pub model: String,
}

/// The configuration in `text`, or the first rule it breaks, named by field.
pub fn parse(text: &str) -> Result<OrchestraConfig, String> {
    let value: Value =
        serde_json::from_str(text).map_err(|error| format!("not valid JSON: {error}"))?;
    check(&value)?;
    serde_json::from_value(value)
        .map_err(|error| format!("not an orchestra configuration: {error}"))
}

/// The rules, with messages that name the field (serde's would name a type).
fn check(config: &Value) -> Result<(), String> {
    let proxy_port = port(config, "proxy_port")?;
    let dashboard_port = port(config, "dashboard_port")?;
    if proxy_port == dashboard_port {
        return Err(format!(
            "server.proxy_port and server.dashboard_port are both {proxy_port}; they must differ"
        ));
    }
    if let Some(upstream) = config.pointer("/server/upstream") {
        match upstream.as_str() {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {}
            _ => return Err("server.upstream must be an http:// or https:// URL".to_string()),
        }
    }
    for field in ["size_mb", "ttl_hours"] {
        match config
            .pointer(&format!("/cache/{field}"))
            .and_then(Value::as_u64)
        {
            Some(value) if value > 0 => {}
            _ => return Err(format!("cache.{field} must be a positive integer")),
        }
    }

    let agents = config
        .get("agents")
        .and_then(Value::as_array)
        .filter(|agents| !agents.is_empty())
        .ok_or("agents must be a non-empty array")?;
    let mut names = Vec::new();
    for (index, agent) in agents.iter().enumerate() {
        for field in ["name", "role", "model"] {
            match agent.get(field).and_then(Value::as_str) {
                Some(text) if !text.trim().is_empty() => {}
                _ => {
                    return Err(format!(
                        "agents[{index}].{field} must be a non-empty string"
                    ));
                }
            }
        }
        let name = agent["name"].as_str().unwrap_or_default();
        if names.contains(&name) {
            return Err(format!(
                "agents[{index}].name \"{name}\" is used twice; names must be unique"
            ));
        }
        names.push(name);
    }
    Ok(())
}

fn port(config: &Value, field: &str) -> Result<u64, String> {
    match config
        .pointer(&format!("/server/{field}"))
        .and_then(Value::as_u64)
    {
        Some(port @ 1..=65535) => Ok(port),
        _ => Err(format!("server.{field} must be an integer from 1 to 65535")),
    }
}
