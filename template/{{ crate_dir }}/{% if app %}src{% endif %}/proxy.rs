//! The proxy: forwards every request to the upstream (CCO_UPSTREAM) and streams its answer
//! back as it arrives, adding ANTHROPIC_API_KEY to a request that carries no key, and
//! answering repeated identical requests from the cache (cache.rs).
//!
//! A request the cache may answer: GET or POST, not asking for a stream (`"stream": true`),
//! without `Cache-Control: no-cache` or `no-store`. Its answer is stored when it is a 200 that
//! is not a stream and not marked `no-store`, and fits the cache and MAX_STORED_BYTES. Errors
//! and streams are never stored, and neither is a bigger answer: it streams through, so an
//! answer being fetched for the cache never holds more than that in memory.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http_body::Frame;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{self, connect::HttpConnector};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::cache::{self, Answer, Cache, Key};
use crate::stats::{CacheUse, Exchange};

/// The largest request body forwarded (the Messages API's own limit is 32 MB).
const MAX_REQUEST_BYTES: usize = 32_000_000;
/// The largest answer the cache stores (and so reads whole before sending it on).
const MAX_STORED_BYTES: u64 = 32_000_000;
/// How long connecting to the upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Headers that belong to one connection (RFC 9110, 7.6.1), never forwarded either way.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];
/// Says how the cache took part: hit, miss or bypass.
const CACHE_HEADER: &str = "x-cco-cache";

/// Where the proxy forwards to, and how.
pub struct Upstream {
    /// scheme://authority, and a path prefix without its trailing slash.
    pub base: Uri,
    /// How long the upstream may take to start answering, and to send each next part.
    pub timeout: Duration,
    /// Added as x-api-key to requests that carry neither x-api-key nor Authorization.
    pub api_key: Option<String>,
}

/// Told about each exchange once its answer has been sent (or the client went away).
pub type Recorder = Arc<dyn Fn(Exchange) + Send + Sync>;

pub struct Proxy {
    upstream: Upstream,
    api_key: Option<HeaderValue>,
    client: legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    cache: Cache,
    record: Recorder,
}

impl Proxy {
    pub fn new(upstream: Upstream, cache: Cache, record: Recorder) -> Result<Self> {
        let api_key = match &upstream.api_key {
            Some(key) => {
                let mut value = HeaderValue::from_str(key)
                    .ok()
                    .context("ANTHROPIC_API_KEY holds characters a header cannot carry")?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let https = upstream.base.scheme_str() == Some("https");
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(crate::tls::client_config(https)?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = legacy::Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self {
            upstream,
            api_key,
            client,
            cache,
            record,
        })
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Forwards `request` upstream, or answers it from the cache.
    pub async fn forward(&self, request: Request) -> Response {
        let (parts, body) = request.into_parts();
        let body = match Limited::new(body, MAX_REQUEST_BYTES).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                return error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "request_too_large",
                    &format!("the request body is over {MAX_REQUEST_BYTES} bytes, or was cut off"),
                );
            }
        };
        let request_json: Option<Value> = serde_json::from_slice(&body).ok();
        let model = request_json
            .as_ref()
            .and_then(|json| json.get("model"))
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_string();
        let path_and_query = parts
            .uri
            .path_and_query()
            .map_or("/", |path| path.as_str())
            .to_string();
        let exchange = Exchange {
            model,
            cache: CacheUse::Bypass,
            upstream_error: false,
            input_tokens: 0,
            output_tokens: 0,
        };
        if !cacheable_request(&parts.method, &parts.headers, request_json.as_ref()) {
            return self
                .pass_through(&parts, &path_and_query, body, exchange)
                .await;
        }

        let key = Key::of(&parts.method, &path_and_query, &parts.headers, &body);
        if let Some(answer) = self.cache.get(key).await {
            return self.answer_from_cache(answer, exchange);
        }
        let _fetching = self.cache.fetching(key).await;
        // Another request for the same answer may have stored it while this one waited.
        if let Some(answer) = self.cache.get(key).await {
            return self.answer_from_cache(answer, exchange);
        }
        let exchange = Exchange {
            cache: CacheUse::Miss,
            ..exchange
        };
        let started = Instant::now();
        let response = match self.send(&parts, &path_and_query, body).await {
            Ok(response) => response,
            Err(response) => return self.failed(response, exchange),
        };
        let limit = self.cache.capacity().min(MAX_STORED_BYTES);
        let (head, incoming) = response.into_parts();
        let announced = http_body::Body::size_hint(&incoming).lower();
        if !storable(&head) || announced > limit {
            return self.stream(head, None, incoming, exchange);
        }
        let collected = match self.collect(incoming, limit).await {
            Ok(Collected::Whole(bytes)) => bytes,
            // Longer than its length said (none was given): the rest streams after it.
            Ok(Collected::Part(first, rest)) => {
                return self.stream(head, Some(first), rest, exchange);
            }
            Err(response) => return self.failed(response, exchange),
        };
        let upstream_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (input_tokens, output_tokens) = usage_of_json(&collected);
        let answer = Answer {
            status: head.status.as_u16(),
            headers: kept_headers(&head.headers)
                .filter(|(name, _)| *name != header::CONTENT_LENGTH)
                .filter_map(|(name, value)| {
                    Some((name.to_string(), value.to_str().ok()?.to_string()))
                })
                .collect(),
            body: collected.clone(),
            upstream_ms,
            stored_at: cache::now(),
        };
        if let Err(error) = self.cache.put(key, answer).await {
            tracing::warn!("the cache could not store an answer: {error:#}");
        }
        (self.record)(Exchange {
            input_tokens,
            output_tokens,
            ..exchange
        });
        let mut response = Response::from_parts(head, Body::from(collected));
        strip_hop_by_hop(response.headers_mut());
        response
            .headers_mut()
            .insert(CACHE_HEADER, HeaderValue::from_static("miss"));
        response
    }

    async fn pass_through(
        &self,
        parts: &hyper::http::request::Parts,
        path_and_query: &str,
        body: Bytes,
        exchange: Exchange,
    ) -> Response {
        match self.send(parts, path_and_query, body).await {
            Ok(response) => {
                let (head, incoming) = response.into_parts();
                self.stream(head, None, incoming, exchange)
            }
            Err(response) => self.failed(response, exchange),
        }
    }

    fn answer_from_cache(&self, answer: Answer, exchange: Exchange) -> Response {
        (self.record)(Exchange {
            cache: CacheUse::Hit {
                bytes: answer.body.len() as u64,
                upstream_ms: answer.upstream_ms,
            },
            ..exchange
        });
        let mut response = Response::new(Body::from(answer.body));
        *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
        let headers = response.headers_mut();
        for (name, value) in &answer.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.append(name, value);
            }
        }
        headers.insert(CACHE_HEADER, HeaderValue::from_static("hit"));
        let age = cache::now().saturating_sub(answer.stored_at);
        headers.insert(header::AGE, HeaderValue::from(age));
        response
    }

    fn failed(&self, response: Response, exchange: Exchange) -> Response {
        (self.record)(Exchange {
            upstream_error: true,
            ..exchange
        });
        response
    }

    /// Sends the request upstream; an error is the answer to give the client (502, 504).
    async fn send(
        &self,
        parts: &hyper::http::request::Parts,
        path_and_query: &str,
        body: Bytes,
    ) -> Result<hyper::Response<Incoming>, Response> {
        let uri = self.upstream_uri(path_and_query).map_err(|error| {
            error_response(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("cannot forward {path_and_query}: {error}"),
            )
        })?;
        let mut request = hyper::Request::new(Full::new(body));
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = uri;
        let headers = request.headers_mut();
        for (name, value) in kept_headers(&parts.headers) {
            if name != header::HOST && name != header::CONTENT_LENGTH {
                headers.append(name.clone(), value.clone());
            }
        }
        // Bodies as they are, so the cache and the token counts can read them.
        headers.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        let own_credentials =
            headers.contains_key("x-api-key") || headers.contains_key(header::AUTHORIZATION);
        if let (Some(key), false) = (&self.api_key, own_credentials) {
            headers.insert("x-api-key", key.clone());
        }
        let upstream = self.upstream.base.to_string();
        let limit = self.upstream.timeout;
        match tokio::time::timeout(limit, self.client.request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => {
                let reason = chain(&error);
                Err(error_response(
                    StatusCode::BAD_GATEWAY,
                    "api_error",
                    &format!("cco: the upstream {upstream} cannot be reached: {reason}"),
                ))
            }
            Err(_) => Err(error_response(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout_error",
                &format!(
                    "cco: the upstream {upstream} did not answer within {} s (CCO_UPSTREAM_TIMEOUT)",
                    limit.as_secs()
                ),
            )),
        }
    }

    /// The whole body of an answer to store, each part within the upstream's time limit; or,
    /// once it is over `most` bytes, what came so far and the rest.
    async fn collect(&self, mut incoming: Incoming, most: u64) -> Result<Collected, Response> {
        let mut bytes = Vec::new();
        let limit = self.upstream.timeout;
        loop {
            match tokio::time::timeout(limit, incoming.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        bytes.extend_from_slice(&data);
                    }
                    if bytes.len() as u64 > most {
                        return Ok(Collected::Part(Bytes::from(bytes), incoming));
                    }
                }
                Ok(None) => return Ok(Collected::Whole(Bytes::from(bytes))),
                Ok(Some(Err(error))) => {
                    return Err(error_response(
                        StatusCode::BAD_GATEWAY,
                        "api_error",
                        &format!("cco: the upstream's answer broke off: {}", chain(&error)),
                    ));
                }
                Err(_) => {
                    return Err(error_response(
                        StatusCode::GATEWAY_TIMEOUT,
                        "timeout_error",
                        &format!(
                            "cco: the upstream stopped sending its answer for {} s (CCO_UPSTREAM_TIMEOUT)",
                            limit.as_secs()
                        ),
                    ));
                }
            }
        }
    }

    /// Streams the upstream's answer to the client as it arrives (after `first`, the part
    /// already read, if any), counting its tokens.
    fn stream(
        &self,
        head: hyper::http::response::Parts,
        first: Option<Bytes>,
        incoming: Incoming,
        exchange: Exchange,
    ) -> Response {
        // What the cache did, as the statistics record it: looked up and not found (a miss),
        // or never consulted (a stream, no-store, another method).
        let cache = match exchange.cache {
            CacheUse::Miss => "miss",
            _ => "bypass",
        };
        let exchange = Exchange {
            upstream_error: head.status.is_client_error() || head.status.is_server_error(),
            ..exchange
        };
        let event_stream = head
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/event-stream"));
        let body = Tapped {
            first,
            inner: incoming,
            idle: self.upstream.timeout,
            deadline: Box::pin(tokio::time::sleep(self.upstream.timeout)),
            usage: if event_stream {
                UsageReader::Events(Vec::new())
            } else {
                UsageReader::Json(Vec::new())
            },
            tokens: (0, 0),
            done: Some((exchange, self.record.clone())),
        };
        let mut response = Response::from_parts(head, Body::new(body));
        strip_hop_by_hop(response.headers_mut());
        response
            .headers_mut()
            .entry(CACHE_HEADER)
            .or_insert(HeaderValue::from_static(cache));
        response
    }

    fn upstream_uri(&self, path_and_query: &str) -> Result<Uri> {
        let base = &self.upstream.base;
        let prefix = base.path().trim_end_matches('/');
        let mut parts = base.clone().into_parts();
        parts.path_and_query = Some(format!("{prefix}{path_and_query}").parse()?);
        Ok(Uri::from_parts(parts)?)
    }
}

fn cacheable_request(method: &Method, headers: &HeaderMap, json: Option<&Value>) -> bool {
    let asks_not_to = headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains("no-store") || value.contains("no-cache"));
    let streams = json
        .and_then(|json| json.get("stream"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    (method == Method::GET || method == Method::POST) && !asks_not_to && !streams
}

fn storable(head: &hyper::http::response::Parts) -> bool {
    let headers = &head.headers;
    let text = |name| {
        headers
            .get(name)
            .and_then(|value: &HeaderValue| value.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    head.status == StatusCode::OK
        && !text(header::CONTENT_TYPE).starts_with("text/event-stream")
        && !text(header::CACHE_CONTROL).contains("no-store")
}

/// The headers never forwarded either way: the hop-by-hop ones, and those Connection names.
fn hop_by_hop(headers: &HeaderMap) -> Vec<HeaderName> {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    headers
        .keys()
        .filter(|name| {
            HOP_BY_HOP.contains(&name.as_str()) || named.iter().any(|named| named == name.as_str())
        })
        .cloned()
        .collect()
}

/// The headers that are not hop-by-hop, nor named by Connection.
fn kept_headers(headers: &HeaderMap) -> impl Iterator<Item = (&HeaderName, &HeaderValue)> {
    let dropped = hop_by_hop(headers);
    headers
        .iter()
        .filter(move |(name, _)| !dropped.contains(name))
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in hop_by_hop(headers) {
        headers.remove(name);
    }
}

/// An error as the Messages API words its own, so SDKs show it as one.
fn error_response(status: StatusCode, kind: &str, message: &str) -> Response {
    tracing::warn!("{status}: {message}");
    let error = serde_json::json!({ "type": kind, "message": message });
    let body = serde_json::json!({ "type": "error", "error": error });
    let mut response = (status, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(CACHE_HEADER, HeaderValue::from_static("miss"));
    response
}

/// An error and its causes, on one line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The tokens a Messages answer reports in `usage`.
fn usage_of_json(body: &[u8]) -> (u64, u64) {
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        return (0, 0);
    };
    let count = |field| json.pointer(field).and_then(Value::as_u64).unwrap_or(0);
    (count("/usage/input_tokens"), count("/usage/output_tokens"))
}

/// Reads the tokens from an answer as it passes: a JSON body whole, an event stream by event
/// (message_start carries the input tokens, message_delta the output tokens so far).
enum UsageReader {
    Json(Vec<u8>),
    Events(Vec<u8>),
}

/// The most of a JSON answer kept to read its usage from.
const MAX_USAGE_BYTES: usize = 4_000_000;

impl UsageReader {
    fn read(&mut self, data: &[u8], tokens: &mut (u64, u64)) {
        match self {
            Self::Json(buffer) => {
                if buffer.len() + data.len() <= MAX_USAGE_BYTES {
                    buffer.extend_from_slice(data);
                }
            }
            Self::Events(line) => {
                for &byte in data {
                    if byte != b'\n' {
                        line.push(byte);
                        continue;
                    }
                    let event = line
                        .strip_prefix(b"data:")
                        .and_then(|data| serde_json::from_slice::<Value>(data).ok());
                    line.clear();
                    let Some(event) = event else {
                        continue;
                    };
                    let count = |field| event.pointer(field).and_then(Value::as_u64);
                    if let Some(input) = count("/message/usage/input_tokens") {
                        tokens.0 = input;
                    }
                    if let Some(output) = count("/usage/output_tokens") {
                        tokens.1 = output;
                    }
                }
            }
        }
    }

    fn finish(&self, tokens: &mut (u64, u64)) {
        if let Self::Json(buffer) = self {
            *tokens = usage_of_json(buffer);
        }
    }
}

/// An answer's body read for the cache: all of it, or the part read before it proved too big
/// to store, and the rest.
enum Collected {
    Whole(Bytes),
    Part(Bytes, Incoming),
}

/// The upstream's body on its way to the client, frame by frame as it arrives: each part
/// within the time limit, its tokens read, and the exchange recorded when it ends (or the
/// client goes away). `first` is sent before the rest, when the proxy has read it already.
struct Tapped {
    first: Option<Bytes>,
    inner: Incoming,
    idle: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
    usage: UsageReader,
    tokens: (u64, u64),
    done: Option<(Exchange, Recorder)>,
}

impl Tapped {
    fn finish(&mut self, failed: bool) {
        if let Some((exchange, record)) = self.done.take() {
            self.usage.finish(&mut self.tokens);
            record(Exchange {
                upstream_error: exchange.upstream_error || failed,
                input_tokens: self.tokens.0,
                output_tokens: self.tokens.1,
                ..exchange
            });
        }
    }
}

impl Drop for Tapped {
    fn drop(&mut self) {
        self.finish(false);
    }
}

impl http_body::Body for Tapped {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Some(first) = this.first.take() {
            this.usage.read(&first, &mut this.tokens);
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.usage.read(data, &mut this.tokens);
                }
                let next = tokio::time::Instant::now() + this.idle;
                this.deadline.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                tracing::warn!("the upstream's answer broke off: {}", chain(&error));
                this.finish(true);
                Poll::Ready(Some(Err(error.into())))
            }
            Poll::Ready(None) => {
                this.finish(false);
                Poll::Ready(None)
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    let message = format!(
                        "the upstream sent nothing for {} s (CCO_UPSTREAM_TIMEOUT); the answer is cut off",
                        this.idle.as_secs()
                    );
                    tracing::warn!("{message}");
                    this.finish(true);
                    Poll::Ready(Some(Err(message.into())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let mut hint = self.inner.size_hint();
        let first = self.first.as_ref().map_or(0, |first| first.len() as u64);
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper + first);
        }
        hint.set_lower(hint.lower() + first);
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_and_requests_that_ask_not_to_are_not_cached() {
        let headers = HeaderMap::new();
        let stream = serde_json::json!({ "model": "m", "stream": true });
        let plain = serde_json::json!({ "model": "m" });
        assert!(cacheable_request(&Method::POST, &headers, Some(&plain)));
        assert!(!cacheable_request(&Method::POST, &headers, Some(&stream)));
        assert!(!cacheable_request(&Method::DELETE, &headers, Some(&plain)));
        let mut no_store = HeaderMap::new();
        no_store.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        assert!(!cacheable_request(&Method::POST, &no_store, Some(&plain)));
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_stay_behind() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        headers.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
        strip_hop_by_hop(&mut headers);
        let names: Vec<_> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["anthropic-version"]);
    }

    #[test]
    fn tokens_are_read_from_events_split_anywhere() {
        let stream = concat!(
            "event: message_start\n",
            "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
            "event: message_delta\n",
            "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n",
        );
        let mut reader = UsageReader::Events(Vec::new());
        let mut tokens = (0, 0);
        for chunk in stream.as_bytes().chunks(7) {
            reader.read(chunk, &mut tokens);
        }
        reader.finish(&mut tokens);
        assert_eq!(tokens, (25, 15));
    }
}
