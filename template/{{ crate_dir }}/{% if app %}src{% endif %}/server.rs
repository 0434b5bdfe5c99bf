//! `run`: the proxy and the dashboard, each on its own port, until SIGINT or SIGTERM.
//!
//! Both answer `/health`. The dashboard also shows the request counts (`/` as a
//! page, `/api/stats` as JSON). The proxy has no upstream yet: any other path is
//! an honest 404, counted like every other request.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::build_info;
use crate::config::Settings;
use crate::stats::{self, Stats};

/// How often recorded requests are written to disk while serving.
const FLUSH_INTERVAL: Duration = Duration::from_secs(2);

struct Shared {
    recorded: Mutex<Recorded>,
    stats_path: PathBuf,
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
}

pub async fn run(settings: Settings) -> Result<()> {
    let stats_path = settings.home.value.join(stats::FILE_NAME);
    let stats = Stats::load(&stats_path)?.unwrap_or_default();
    let shared = Arc::new(Shared {
        recorded: Mutex::new(Recorded {
            stats,
            dirty: false,
        }),
        stats_path,
    });

    let bind = settings.bind.value;
    let proxy = listen(SocketAddr::new(bind, settings.proxy_port.value), "proxy").await?;
    let dashboard = listen(
        SocketAddr::new(bind, settings.dashboard_port.value),
        "dashboard",
    )
    .await?;
    tracing::info!(
        proxy = %proxy.local_addr()?,
        dashboard = %dashboard.local_addr()?,
        stats = %shared.stats_path.display(),
        "{} {} serving",
        env!("CARGO_PKG_NAME"),
        build_info::VERSION
    );

    let (stop, stopped) = watch::channel(false);
    let proxy = serve(
        proxy,
        counted("proxy", Router::new(), &shared),
        stopped.clone(),
    );
    let dashboard = serve(dashboard, dashboard_router(&shared), stopped.clone());
    let flusher = tokio::spawn(flush_periodically(shared.clone(), stopped));
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        let _ = stop.send(true);
    });

    let (proxy, dashboard) = tokio::join!(proxy, dashboard);
    proxy.context("the proxy stopped with an error")?;
    dashboard.context("the dashboard stopped with an error")?;
    flusher.abort();
    flush(&shared)?;
    Ok(())
}

async fn listen(address: SocketAddr, service: &str) -> Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} for the {service}"))
}

async fn serve(
    listener: TcpListener,
    router: Router,
    mut stopped: watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        })
        .await
}

fn dashboard_router(shared: &Arc<Shared>) -> Router {
    let pages = Router::new()
        .route("/", get(dashboard_page))
        .route("/api/stats", get(stats_json));
    counted("dashboard", pages, shared)
}

/// Adds the routes both services share, and the request counter around all of them.
fn counted(service: &'static str, routes: Router<Arc<Shared>>, shared: &Arc<Shared>) -> Router {
    routes
        .route("/health", get(move || health(service)))
        .fallback(not_found)
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
        None => "unmatched".to_string(),
    };
    let response = next.run(request).await;
    let mut recorded = shared.recorded();
    recorded
        .stats
        .record(service, &route, response.status().as_u16());
    recorded.dirty = true;
    response
}

async fn stats_json(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    let recorded = shared.recorded();
    Json(json!({ "total": recorded.stats.total(), "requests": recorded.stats.entries() }))
}

async fn dashboard_page(State(shared): State<Arc<Shared>>) -> Html<String> {
    let stats = shared.recorded().stats.clone();
    let rows: String = stats
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
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{name} dashboard</title></head><body>\
         <h1>{name} {version}</h1><p>{total} requests recorded.</p>\
         <table><tr><th>service</th><th>route</th><th>status</th><th>count</th></tr>{rows}</table></body></html>",
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

async fn flush_periodically(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(FLUSH_INTERVAL) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
        if let Err(error) = flush(&shared) {
            tracing::error!("{error:#}");
        }
    }
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

async fn wait_for_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("a SIGTERM handler can be installed");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
