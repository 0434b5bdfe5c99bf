//! `health`: asks a running instance for `/health` over HTTP/1.1 (hyper's client,
//! so the image needs no curl) and reports what it answered.

use std::time::Duration;

use anyhow::bail;
use anyhow::{Context, Result};
use axum::body::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// GETs `http://host:port/health`, returning the body when the answer is 200 OK.
pub async fn check(host: &str, port: u16, timeout: Duration) -> Result<String> {
    let address = format!("{host}:{port}");
    let (status, body) = tokio::time::timeout(timeout, get(&address, "/health"))
        .await
        .with_context(|| format!("{address}: no answer within {} s", timeout.as_secs_f32()))??;
    if status != StatusCode::OK {
        bail!("{address}: /health answered {status}: {body}");
    }
    Ok(body)
}

/// The counts a running instance holds, from its dashboard's `/api/stats` (within a second).
pub async fn stats(host: &str, port: u16) -> Result<crate::stats::Stats> {
    let address = format!("{host}:{port}");
    let (status, body) =
        tokio::time::timeout(Duration::from_secs(1), get(&address, "/api/stats")).await??;
    if status != StatusCode::OK {
        bail!("{address}: /api/stats answered {status}");
    }
    crate::stats::Stats::from_api(&body)
}

async fn get(address: &str, path: &str) -> Result<(StatusCode, String)> {
    let stream = TcpStream::connect(address)
        .await
        .with_context(|| format!("{address}: cannot connect"))?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let request = Request::get(path)
        .header(header::HOST, address)
        .body(Empty::<Bytes>::new())?;
    let response = sender
        .send_request(request)
        .await
        .with_context(|| format!("{address}: no HTTP answer"))?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}
