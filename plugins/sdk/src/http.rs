//! Outgoing HTTP, blocking, over the standard `wasi:http/outgoing-handler`.
//!
//! ```text
//! use roost_plugin::http;
//!
//! #[derive(serde::Deserialize)]
//! struct Entry { id: String, title: String }
//!
//! let entries: Vec<Entry> = http::get("https://api.example.com/feed")?.json()?;
//! let reply = http::Request::post("https://api.example.com/seen")
//!     .header("content-type", "application/json")
//!     .body(br#"{"id":"42"}"#.to_vec())
//!     .timeout(Duration::from_secs(5))
//!     .send()?;
//! ```
//!
//! Every request must be granted: `[plugins.NAME.grants] http_hosts =
//! ["api.example.com", "https://*.example.org:8443"]`. The host refuses anything else
//! ([`HttpError::Denied`]), refuses loopback and private addresses unless `http_private =
//! true` names the host exactly ([`HttpError::Prohibited`]), and caps each request's time
//! (`http_timeout_ms`) and response size (`http_response_kb`).
//!
//! Redirects are followed here, up to [`MAX_REDIRECTS`]: each hop is a new request that
//! the host checks against the grant again, so a granted API cannot redirect the plugin to
//! a host it was not granted. A non-2xx status is not an error: check
//! [`Response::status`] (or use [`Response::error_for_status`]).

use std::fmt;
use std::time::Duration;

use crate::__bindings::wasi::http::outgoing_handler;
use crate::__bindings::wasi::http::types::{
    ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use crate::__bindings::wasi::io::streams::StreamError;

/// Redirects followed before [`HttpError::TooManyRedirects`].
pub const MAX_REDIRECTS: usize = 5;
/// Bytes written to the request body stream per call (wasi:io's blocking write takes at
/// most 4096).
const WRITE_CHUNK: usize = 4096;
/// Bytes asked for per read of the response body.
const READ_CHUNK: u64 = 64 * 1024;

/// `GET url`.
pub fn get(url: &str) -> Result<Response, HttpError> {
    Request::get(url).send()
}

/// `POST url` with `body`.
pub fn post(url: &str, body: impl Into<Vec<u8>>) -> Result<Response, HttpError> {
    Request::post(url).body(body).send()
}

/// Why a request failed. A status code is not a failure: see [`Response::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The URL could not be understood.
    InvalidUrl(String),
    /// The host is not in the plugin's `http_hosts` grant (the host's log names the entry
    /// to add).
    Denied(String),
    /// The name resolves to a loopback, private or link-local address and the grant does
    /// not allow it (`http_private`).
    Prohibited(String),
    /// The request took longer than its timeout (the plugin's or `http_timeout_ms`).
    Timeout(String),
    /// The response body is larger than `http_response_kb`.
    TooLarge(String),
    /// More than [`MAX_REDIRECTS`] redirects.
    TooManyRedirects(String),
    /// The body is not what [`Response::json`] or [`Response::text`] expected.
    Decode(String),
    /// A status that [`Response::error_for_status`] turned into an error.
    Status(u16, String),
    /// Anything else: DNS, connection, TLS, protocol.
    Other(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::InvalidUrl(m) => write!(f, "invalid URL: {m}"),
            HttpError::Denied(m) => write!(f, "denied: {m}"),
            HttpError::Prohibited(m) => write!(f, "refused: {m}"),
            HttpError::Timeout(m) => write!(f, "timed out: {m}"),
            HttpError::TooLarge(m) => write!(f, "too large: {m}"),
            HttpError::TooManyRedirects(m) => write!(f, "too many redirects: {m}"),
            HttpError::Decode(m) => write!(f, "cannot decode: {m}"),
            HttpError::Status(code, m) => write!(f, "HTTP {code}: {m}"),
            HttpError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for HttpError {}

impl From<HttpError> for String {
    fn from(e: HttpError) -> Self {
        e.to_string()
    }
}

/// A request being built: method, URL, headers, body, timeout.
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Option<Duration>,
    follow_redirects: bool,
}

impl Request {
    /// A request with any method (`"PUT"`, `"DELETE"`, …).
    pub fn new(method: &str, url: &str) -> Self {
        Self {
            method: method.to_ascii_uppercase(),
            url: url.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: None,
            follow_redirects: true,
        }
    }

    /// A `GET`.
    pub fn get(url: &str) -> Self {
        Self::new("GET", url)
    }

    /// A `POST`.
    pub fn post(url: &str) -> Self {
        Self::new("POST", url)
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets a JSON body and its content type.
    pub fn json<T: serde::Serialize>(self, value: &T) -> Result<Self, HttpError> {
        let body = serde_json::to_vec(value).map_err(|e| HttpError::Decode(e.to_string()))?;
        Ok(self.header("content-type", "application/json").body(body))
    }

    /// Gives up after `timeout` (the host's `http_timeout_ms` applies too: the shorter
    /// wins).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Whether to follow redirects (default: yes, up to [`MAX_REDIRECTS`]).
    pub fn follow_redirects(mut self, follow: bool) -> Self {
        self.follow_redirects = follow;
        self
    }

    /// Sends the request and reads the whole response, following redirects.
    pub fn send(self) -> Result<Response, HttpError> {
        let mut request = self;
        for _ in 0..=MAX_REDIRECTS {
            let response = send_once(&request)?;
            let location = response.header("location").map(str::to_string);
            let redirect = matches!(response.status, 301 | 302 | 303 | 307 | 308);
            match location {
                Some(location) if redirect && request.follow_redirects => {
                    let next = resolve(&request.url, &location)?;
                    // 303, and 301/302 after a POST, turn into a GET without a body.
                    if response.status == 303
                        || (matches!(response.status, 301 | 302) && request.method == "POST")
                    {
                        request.method = "GET".into();
                        request.body.clear();
                    }
                    request.url = next;
                }
                _ => return Ok(response),
            }
        }
        Err(HttpError::TooManyRedirects(request.url))
    }
}

/// A response, read in full.
#[derive(Debug, Clone)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    url: String,
}

impl Response {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The response unchanged if its status is 2xx, else [`HttpError::Status`].
    pub fn error_for_status(self) -> Result<Self, HttpError> {
        if self.is_success() {
            Ok(self)
        } else {
            Err(HttpError::Status(self.status, self.url))
        }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header, in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The URL that answered (after redirects).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The body's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.body
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> Result<&str, HttpError> {
        std::str::from_utf8(&self.body).map_err(|e| HttpError::Decode(e.to_string()))
    }

    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError::Decode(format!("JSON: {e}")))
    }
}

/// The parts of an absolute http(s) URL.
struct Url<'a> {
    https: bool,
    authority: &'a str,
    path_and_query: &'a str,
}

fn parse(url: &str) -> Result<Url<'_>, HttpError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| HttpError::InvalidUrl(format!("`{url}` has no scheme")))?;
    let https = match scheme.to_ascii_lowercase().as_str() {
        "https" => true,
        "http" => false,
        other => return Err(HttpError::InvalidUrl(format!("scheme `{other}`"))),
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(split);
    if authority.is_empty() || authority.contains('@') {
        return Err(HttpError::InvalidUrl(format!("`{url}`: bad host")));
    }
    Ok(Url {
        https,
        authority,
        path_and_query: if path.is_empty() { "/" } else { path },
    })
}

/// `location` made absolute against `base`.
fn resolve(base: &str, location: &str) -> Result<String, HttpError> {
    if location.contains("://") {
        return Ok(location.to_string());
    }
    let url = parse(base)?;
    let scheme = if url.https { "https" } else { "http" };
    if let Some(rest) = location.strip_prefix("//") {
        return Ok(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Ok(format!("{scheme}://{}{location}", url.authority));
    }
    let path = url.path_and_query.split('?').next().unwrap_or("/");
    let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
    Ok(format!("{scheme}://{}{dir}{location}", url.authority))
}

fn send_once(request: &Request) -> Result<Response, HttpError> {
    let url = parse(&request.url)?;
    let fields: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect();
    let headers =
        Fields::from_list(&fields).map_err(|e| HttpError::InvalidUrl(format!("headers: {e:?}")))?;
    let outgoing = OutgoingRequest::new(headers);
    let method = match request.method.as_str() {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "PATCH" => Method::Patch,
        "HEAD" => Method::Head,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_string()),
    };
    let bad = |what: &str| HttpError::InvalidUrl(format!("`{}`: bad {what}", request.url));
    outgoing.set_method(&method).map_err(|_| bad("method"))?;
    outgoing
        .set_scheme(Some(if url.https {
            &Scheme::Https
        } else {
            &Scheme::Http
        }))
        .map_err(|_| bad("scheme"))?;
    outgoing
        .set_authority(Some(url.authority))
        .map_err(|_| bad("host"))?;
    outgoing
        .set_path_with_query(Some(url.path_and_query))
        .map_err(|_| bad("path"))?;
    let options = request.timeout.map(|t| {
        let options = RequestOptions::new();
        let nanos = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX);
        // The host treats these as bounds on the whole request.
        let _ = options.set_connect_timeout(Some(nanos));
        let _ = options.set_first_byte_timeout(Some(nanos));
        let _ = options.set_between_bytes_timeout(Some(nanos));
        options
    });
    let body = outgoing
        .body()
        .map_err(|_| HttpError::Other("request body taken twice".into()))?;
    // `handle` first, then the body: writing more than one chunk before it deadlocks.
    let pending =
        outgoing_handler::handle(outgoing, options).map_err(|e| error(&request.url, &e))?;
    let written = write_body(body, &request.body, &request.url);
    // When the host refused the request (an ungranted host, a private address), the body
    // stream just breaks; the reason comes with the response, so it is asked first.
    pending.subscribe().block();
    let incoming = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(e))) => return Err(error(&request.url, &e)),
        Some(Err(())) | None => return Err(HttpError::Other("response taken twice".into())),
    };
    written?;
    let status = incoming.status();
    let headers = incoming
        .headers()
        .entries()
        .into_iter()
        .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let body_resource = incoming
        .consume()
        .map_err(|_| HttpError::Other("response body taken twice".into()))?;
    let mut body = Vec::new();
    {
        let stream = body_resource
            .stream()
            .map_err(|_| HttpError::Other("response body stream taken twice".into()))?;
        loop {
            match stream.blocking_read(READ_CHUNK) {
                Ok(bytes) => body.extend_from_slice(&bytes),
                Err(StreamError::Closed) => break,
                Err(e) => return Err(stream_error(&request.url, e)),
            }
        }
    }
    drop(IncomingBody::finish(body_resource));
    Ok(Response {
        status,
        headers,
        body,
        url: request.url.clone(),
    })
}

/// Writes `bytes` as the request body and finishes it; the stream is dropped before the
/// body, as wasi:http requires of child resources.
fn write_body(body: OutgoingBody, bytes: &[u8], url: &str) -> Result<(), HttpError> {
    {
        let stream = body
            .write()
            .map_err(|_| HttpError::Other("request body stream taken twice".into()))?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| stream_error(url, e))?;
        }
    }
    OutgoingBody::finish(body, None).map_err(|e| error(url, &e))
}

fn stream_error(url: &str, e: StreamError) -> HttpError {
    match e {
        StreamError::Closed => HttpError::Other(format!("{url}: stream closed early")),
        StreamError::LastOperationFailed(io) => {
            match crate::__bindings::wasi::http::types::http_error_code(&io) {
                Some(code) => error(url, &code),
                None => HttpError::Other(format!("{url}: {}", io.to_debug_string())),
            }
        }
    }
}

fn error(url: &str, code: &ErrorCode) -> HttpError {
    match code {
        ErrorCode::HttpRequestDenied => HttpError::Denied(format!(
            "{url}: the host is not in this plugin's http_hosts grant (the roost log names the entry to add)"
        )),
        ErrorCode::DestinationIpProhibited => HttpError::Prohibited(format!(
            "{url}: resolves to a loopback, private or link-local address (needs http_private = true and an exact http_hosts entry)"
        )),
        ErrorCode::ConnectionTimeout
        | ErrorCode::ConnectionReadTimeout
        | ErrorCode::ConnectionWriteTimeout
        | ErrorCode::HttpResponseTimeout
        | ErrorCode::DnsTimeout => HttpError::Timeout(url.to_string()),
        ErrorCode::HttpResponseBodySize(limit) => HttpError::TooLarge(match limit {
            Some(n) => format!("{url}: the response body is over {n} bytes (http_response_kb)"),
            None => format!("{url}: the response body is over the cap (http_response_kb)"),
        }),
        ErrorCode::ConnectionLimitReached => HttpError::Other(format!(
            "{url}: too many requests (http_requests_per_minute, http_concurrent)"
        )),
        other => HttpError::Other(format!("{url}: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_locations_are_made_absolute() {
        let base = "http://a.test:8080/feed/x?y=1";
        assert_eq!(
            resolve(base, "https://b.test/z").unwrap(),
            "https://b.test/z"
        );
        assert_eq!(resolve(base, "/z").unwrap(), "http://a.test:8080/z");
        assert_eq!(resolve(base, "z").unwrap(), "http://a.test:8080/feed/z");
        assert_eq!(resolve(base, "//c.test/").unwrap(), "http://c.test/");
    }

    #[test]
    fn urls_split_into_authority_and_path() {
        let u = parse("https://h.test:1/a?b").unwrap();
        assert!(u.https);
        assert_eq!((u.authority, u.path_and_query), ("h.test:1", "/a?b"));
        assert_eq!(parse("http://h.test").unwrap().path_and_query, "/");
        assert!(parse("ftp://h").is_err() && parse("h.test/x").is_err());
    }
}
