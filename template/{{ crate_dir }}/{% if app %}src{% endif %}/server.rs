//! `run`: the proxy and the dashboard, each on its own port, until SIGINT, SIGTERM or SIGHUP.
//!
//! Both answer `/health`. The proxy forwards every other request to the upstream (proxy.rs);
//! the dashboard shows what was served (`/` as a page, `/api/stats` as JSON).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::build_info;
use crate::cache::{self, Cache};
use crate::config::Settings;
use crate::proxy::{Proxy, Upstream};
use crate::stats::{self, Exchange, Stats};

/// How often recorded requests are written to disk while serving.
const FLUSH_INTERVAL: Duration = Duration::from_secs(2);
/// How long a client may take to send a request's headers, and a kept-alive connection may
/// wait for its next request: a slow or silent client is disconnected.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections each service holds at once; a new one beyond is closed at once, so idle
/// sockets cannot use up the process's file descriptors (1024 by default).
const MAX_CONNECTIONS: usize = 256;
/// After a stop signal, how long open connections get to finish before `run` saves the
/// counts and exits anyway (`docker stop` sends SIGKILL after 10 s).
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

struct Shared {
    recorded: Mutex<Recorded>,
    stats_path: PathBuf,
    /// Set once the proxy exists (it records into this): the dashboard shows its cache.
    proxy: OnceLock<Arc<Proxy>>,
}

/// The counts, and whether they changed since they were last written.
struct Recorded {
    stats: Stats,
    dirty: bool,
}

impl Shared {
    fn recorded(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.recorded
            .lock()
            .expect("no thread panics while holding the counts")
    }

    fn record_exchange(&self, exchange: &Exchange) {
        let mut recorded = self.recorded();
        recorded.stats.record_exchange(exchange);
        recorded.dirty = true;
    }

    /// Entries and bytes in the cache.
    fn cache_usage(&self) -> (usize, u64) {
        self.proxy
            .get()
            .map_or((0, 0), |proxy| proxy.cache().usage())
    }
}

/// `api_key`: ANTHROPIC_API_KEY, as `config::Resolver::api_key` reads it; apart from
/// `settings` so that no `Debug` of them can print it.
pub async fn run(settings: Settings, api_key: Option<String>) -> Result<()> {
    // Held until `run` returns: one `run` per CCO_HOME, and a CCO_HOME it can write.
    let _claim = crate::home::claim(&settings.home.value)?;
    let stats_path = settings.home.value.join(stats::FILE_NAME);
    let stats = Stats::load(&stats_path)?.unwrap_or_default();
    let shared = Arc::new(Shared {
        recorded: Mutex::new(Recorded {
            stats,
            dirty: false,
        }),
        stats_path,
        proxy: OnceLock::new(),
    });
    let proxy = Arc::new(proxy(&settings, api_key, &shared)?);
    let _ = shared.proxy.set(proxy.clone());

    let bind = settings.bind.value;
    let proxy_listener = listen(SocketAddr::new(bind, settings.proxy_port.value), "proxy").await?;
    let dashboard = listen(
        SocketAddr::new(bind, settings.dashboard_port.value),
        "dashboard",
    )
    .await?;
    tracing::info!(
        proxy = %proxy_listener.local_addr()?,
        upstream = %settings.upstream.value,
        dashboard = %dashboard.local_addr()?,
        stats = %shared.stats_path.display(),
        "{} {} serving",
        env!("CARGO_PKG_NAME"),
        build_info::VERSION
    );

    let (stop, stopped) = watch::channel(false);
    let proxy = serve(
        "proxy",
        proxy_listener,
        proxy_router(&shared, proxy),
        stopped.clone(),
    );
    let dashboard = serve("dashboard", dashboard, dashboard_router(&shared), stopped);
    // Saving goes on until the servers are done: a SIGKILL after the stop signal (docker
    // stop's second step) loses at most the last interval's counts.
    let flusher = tokio::spawn(flush_periodically(shared.clone()));
    let saver = shared.clone();
    tokio::spawn(async move {
        let signal = wait_for_signal().await;
        tracing::info!("{signal}: saving the counts and shutting down");
        let _ = stop.send(true);
        if let Err(error) = flush_blocking(saver).await {
            tracing::error!("{error:#}");
        }
    });

    tokio::join!(proxy, dashboard);
    flusher.abort();
    flush_blocking(shared).await
}

/// The proxy for these settings, its cache in CCO_HOME, recording into `shared`.
fn proxy(settings: &Settings, api_key: Option<String>, shared: &Arc<Shared>) -> Result<Proxy> {
    let cache = Cache::open(
        &settings.home.value.join(cache::DIRECTORY),
        settings.cache_size_mb.value.saturating_mul(1_000_000),
        Duration::from_secs_f64(settings.cache_ttl_hours.value * 3600.0),
    )?;
    let upstream = Upstream {
        base: settings.upstream.value.clone(),
        timeout: Duration::from_secs(settings.upstream_timeout_secs.value),
        api_key,
    };
    let recorder = shared.clone();
    Proxy::new(
        upstream,
        cache,
        Arc::new(move |exchange| recorder.record_exchange(&exchange)),
    )
}

async fn listen(address: SocketAddr, service: &str) -> Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} for the {service}"))
}

/// Serves `router` on `listener` until `stopped`, then gives open connections
/// SHUTDOWN_DEADLINE to finish. Each connection has HEADER_READ_TIMEOUT to send a request's
/// headers; at most MAX_CONNECTIONS are served at once.
async fn serve(
    service: &'static str,
    listener: TcpListener,
    router: Router,
    mut stopped: watch::Receiver<bool>,
) {
    let open = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, say: wait for some to close instead of spinning.
                    tracing::warn!("{service}: cannot accept a connection: {error}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped.wait_for(|stop| *stop) => break,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tracing::debug!("{service}: {MAX_CONNECTIONS} connections open; closing a new one");
            continue;
        };
        let connection = graceful.watch(http.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        ));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!("{service}: connection ended: {error}");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_DEADLINE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "{service}: connections still open after {} s; closing them",
            SHUTDOWN_DEADLINE.as_secs()
        );
    }
}

fn dashboard_router(shared: &Arc<Shared>) -> Router {
    let pages = Router::new()
        .route("/", get(dashboard_page))
        .route("/api/stats", get(stats_json))
        .fallback(not_found);
    counted("dashboard", pages, shared)
}

/// `/health`, and everything else forwarded (counted as the route "upstream").
fn proxy_router(shared: &Arc<Shared>, proxy: Arc<Proxy>) -> Router {
    let forward =
        Router::new().fallback(move |request: Request| async move { proxy.forward(request).await });
    counted("proxy", forward, shared)
}

/// Adds the routes both services share, and the request counter around all of them.
fn counted(service: &'static str, routes: Router<Arc<Shared>>, shared: &Arc<Shared>) -> Router {
    routes
        .route("/health", get(move || health(service)))
        .with_state(shared.clone())
        .layer(middleware::from_fn_with_state(
            (service, shared.clone()),
            count,
        ))
}

async fn health(service: &'static str) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "service": service,
        "version": env!("CARGO_PKG_VERSION"),
        "git_hash": build_info::GIT_HASH,
        "build_date": build_info::BUILD_DATE,
    }))
}

async fn not_found(request: Request) -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": "no such route", "path": request.uri().path() })),
    )
}

/// Counts each request by its route pattern (never the raw path, so the file stays small).
async fn count(
    State((service, shared)): State<(&'static str, Arc<Shared>)>,
    request: Request,
    next: Next,
) -> Response {
    let route = match request.extensions().get::<MatchedPath>() {
        Some(path) => path.as_str().to_string(),
        None if service == "proxy" => "upstream".to_string(),
        None => "unmatched".to_string(),
    };
    let response = next.run(request).await;
    tracing::debug!(
        service,
        route,
        status = response.status().as_u16(),
        "served"
    );
    let mut recorded = shared.recorded();
    recorded
        .stats
        .record(service, &route, response.status().as_u16());
    recorded.dirty = true;
    response
}

async fn stats_json(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    let mut served = shared.recorded().stats.to_api();
    let (entries, bytes) = shared.cache_usage();
    served["cache"] = json!({ "entries": entries, "bytes": bytes });
    Json(served)
}

async fn dashboard_page(State(shared): State<Arc<Shared>>) -> Html<String> {
    let stats = shared.recorded().stats.clone();
    let (entries, bytes) = shared.cache_usage();
    let requests: String = stats
        .entries()
        .iter()
        .map(|entry| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&entry.service),
                escape(&entry.route),
                entry.status,
                entry.count
            )
        })
        .collect();
    let models: String = stats
        .models()
        .iter()
        .map(|entry| {
            let counts = &entry.counts;
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td></tr>",
                escape(&entry.model),
                counts.requests,
                counts.cache_hits,
                counts.cache_misses,
                counts.upstream_errors,
                counts.input_tokens,
                counts.output_tokens,
                counts.bytes_saved,
                counts.upstream_ms_saved as f64 / 1000.0,
            )
        })
        .collect();
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{name} dashboard</title></head><body>\
         <h1>{name} {version}</h1><p>{total} requests recorded. The cache holds {entries} answers, {bytes} bytes.</p>\
         <h2>Proxied, by model</h2><table><tr><th>model</th><th>requests</th><th>cache hits</th><th>misses</th>\
         <th>upstream errors</th><th>input tokens</th><th>output tokens</th><th>bytes saved</th><th>upstream s saved</th></tr>{models}</table>\
         <h2>Requests</h2><table><tr><th>service</th><th>route</th><th>status</th><th>count</th></tr>{requests}</table></body></html>",
        name = env!("CARGO_PKG_NAME"),
        version = build_info::VERSION,
        total = stats.total(),
    ))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

async fn flush_periodically(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(FLUSH_INTERVAL).await;
        if let Err(error) = flush_blocking(shared.clone()).await {
            tracing::error!("{error:#}");
        }
    }
}

/// `flush` on a thread for blocking work: writing and fsync must not hold up a runtime worker.
async fn flush_blocking(shared: Arc<Shared>) -> Result<()> {
    tokio::task::spawn_blocking(move || flush(&shared)).await?
}

/// Writes the counts when they changed since the last write.
fn flush(shared: &Shared) -> Result<()> {
    let snapshot = {
        let mut recorded = shared.recorded();
        if !recorded.dirty {
            return Ok(());
        }
        recorded.dirty = false;
        recorded.stats.clone()
    };
    snapshot
        .save(&shared.stats_path)
        .inspect_err(|_| shared.recorded().dirty = true)
}

/// Waits for a stop signal and names it: SIGINT (Ctrl-C), SIGTERM, or SIGHUP (the terminal
/// closed); each ends `run` the same way, counts saved.
async fn wait_for_signal() -> &'static str {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let unix =
            |kind| tokio::signal::unix::signal(kind).expect("a signal handler can be installed");
        let mut terminate = unix(tokio::signal::unix::SignalKind::terminate());
        let mut hangup = unix(tokio::signal::unix::SignalKind::hangup());
        tokio::select! {
            _ = interrupt => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
            _ = hangup.recv() => "SIGHUP",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
        "Ctrl-C"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scratch::Scratch;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn shared() -> Arc<Shared> {
        Arc::new(Shared {
            recorded: Mutex::new(Recorded {
                stats: Stats::default(),
                dirty: false,
            }),
            stats_path: PathBuf::from("unused.json"),
            proxy: OnceLock::new(),
        })
    }

    async fn get(router: &Router, path: &str) -> (StatusCode, serde_json::Value) {
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap_or_default())
    }

    #[tokio::test]
    async fn health_names_the_service_and_the_build() {
        let shared = shared();
        let (status, body) = get(&counted("proxy", Router::new(), &shared), "/health").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "ok");
        assert_eq!(body["service"], "proxy");
        assert_eq!(body["git_hash"], build_info::GIT_HASH);
    }

    #[tokio::test]
    async fn the_dashboard_counts_an_unknown_path_as_a_404_by_route_pattern() {
        let shared = shared();
        let dashboard = dashboard_router(&shared);
        let (status, body) = get(&dashboard, "/v1/messages?key=secret").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["path"], "/v1/messages");
        get(&dashboard, "/health").await;
        let recorded = shared.recorded();
        assert!(recorded.dirty);
        let routes: Vec<_> = recorded
            .stats
            .entries()
            .into_iter()
            .map(|entry| (entry.route, entry.status, entry.count))
            .collect();
        assert_eq!(
            routes,
            [
                ("/health".to_string(), 200, 1),
                ("unmatched".to_string(), 404, 1)
            ]
        );
    }

    #[tokio::test]
    async fn the_proxy_answers_502_naming_an_unreachable_upstream() {
        let shared = shared();
        let home = Scratch::new("server-unreachable");
        let cache = Cache::open(&home, 1_000_000, Duration::from_secs(60)).unwrap();
        let upstream = Upstream {
            // Port 9 (discard) is closed on a machine that runs this test.
            base: "http://127.0.0.1:9".parse().unwrap(),
            timeout: Duration::from_secs(5),
            api_key: Some("sk-secret".to_string()),
        };
        let recorder = shared.clone();
        let proxy = Proxy::new(
            upstream,
            cache,
            Arc::new(move |exchange| recorder.record_exchange(&exchange)),
        )
        .unwrap();
        let router = proxy_router(&shared, Arc::new(proxy));
        let (status, body) = get(&router, "/v1/models").await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert_eq!(body["type"], "error");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("http://127.0.0.1:9/"), "{message}");
        assert!(!message.contains("sk-secret"));
        let recorded = shared.recorded();
        assert_eq!(recorded.stats.proxied().upstream_errors, 1);
        assert_eq!(recorded.stats.entries()[0].route, "upstream");
    }

    #[tokio::test]
    async fn the_dashboard_shows_what_was_counted() {
        let shared = shared();
        let dashboard = dashboard_router(&shared);
        get(&dashboard, "/health").await;
        let (status, body) = get(&dashboard, "/api/stats").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["total"], 1);
        let request = Request::get("/").body(Body::empty()).unwrap();
        let page = dashboard.oneshot(request).await.unwrap();
        let html = page.into_body().collect().await.unwrap().to_bytes();
        let html = String::from_utf8(html.to_vec()).unwrap();
        assert!(html.contains("<td>dashboard</td><td>/health</td><td>200</td>"));
    }

    #[test]
    fn escape_keeps_markup_out_of_the_page() {
        assert_eq!(escape("<a&b>"), "&lt;a&amp;b&gt;");
    }
}
