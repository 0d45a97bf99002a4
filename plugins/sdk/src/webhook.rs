//! Webhooks: requests to `/hooks/<plugin>/<path>` on the daemon's HTTP server, given to
//! [`Plugin::on_webhook`](crate::Plugin::on_webhook) when the plugin's grants say
//! `webhooks = true`. The daemon asks no token of webhook callers (GitHub, Slack and home
//! devices cannot send one), so a plugin checks who sent a request with the functions
//! here, before it acts on it:
//!
//! - [`verify_github`]: GitHub's `X-Hub-Signature-256` (HMAC-SHA256 of the body).
//! - [`verify_slack`]: Slack's signing secret (`X-Slack-Signature` over `v0:timestamp:body`,
//!   with the timestamp no more than five minutes off, so an old request cannot be replayed).
//! - [`verify_hmac_sha256`]: any sender that puts a hex HMAC-SHA256 of the body in a header.
//!
//! Each compares in constant time. Keep the shared secret in the `secrets` capability, not
//! in config:
//!
//! ```text
//! fn on_webhook(&mut self, req: webhook::Request) -> webhook::Response {
//!     let Ok(secret) = secrets::get("github_webhook_secret") else {
//!         return webhook::Response::status(500).text("no secret");
//!     };
//!     if let Err(e) = webhook::verify_github(secret.as_bytes(), &req) {
//!         return webhook::Response::status(401).text(e.to_string());
//!     }
//!     webhook::Response::ok()
//! }
//! ```

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::__bindings::roost::plugin::types as wit;

/// How far a Slack request's timestamp may be from now, in seconds (Slack's own advice).
pub const SLACK_WINDOW_SECS: u64 = 5 * 60;

/// A webhook as the host read it: the whole body, at most the plugin's `webhook_kb`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    /// A request built by hand, for a plugin's own unit tests.
    pub fn new(path: &str, headers: &[(&str, &str)], body: impl Into<Vec<u8>>) -> Self {
        Self {
            method: "POST".into(),
            path: path.into(),
            query: String::new(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                .collect(),
            body: body.into(),
        }
    }

    /// "POST".
    pub fn method(&self) -> &str {
        &self.method
    }

    /// What followed `/hooks/<plugin>` in the URL, starting with `/`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query string without `?` ("" when none).
    pub fn query(&self) -> &str {
        &self.query
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header, names in lowercase, in the order received.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body's bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body as UTF-8.
    pub fn text(&self) -> Result<&str, String> {
        std::str::from_utf8(&self.body).map_err(|e| format!("the body is not UTF-8: {e}"))
    }

    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_slice(&self.body)
            .map_err(|e| format!("the body is not the JSON expected: {e}"))
    }
}

impl From<wit::WebhookRequest> for Request {
    fn from(r: wit::WebhookRequest) -> Self {
        Self {
            method: r.method,
            path: r.path,
            query: r.query,
            headers: r.headers,
            body: r.body,
        }
    }
}

/// What the plugin answers: a status, headers and a body, sent to the caller as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    /// `200 OK` with an empty body.
    pub fn ok() -> Self {
        Self::status(200)
    }

    /// An empty response with `status`.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// `404`: what a plugin that takes no webhooks answers (the default hook).
    pub fn not_found() -> Self {
        Self::status(404).text("this plugin takes no webhooks here")
    }

    /// Sets a plain-text body (with a trailing newline, for people reading it in a
    /// terminal).
    pub fn text(mut self, text: impl Into<String>) -> Self {
        let mut text = text.into();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        self.body = text.into_bytes();
        self.header("content-type", "text/plain; charset=utf-8")
    }

    /// Sets a JSON body.
    pub fn json<T: serde::Serialize>(mut self, value: &T) -> Self {
        self.body = serde_json::to_vec(value).unwrap_or_default();
        self.header("content-type", "application/json")
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The status.
    pub fn status_code(&self) -> u16 {
        self.status
    }

    /// The body's bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

impl From<Response> for wit::WebhookResponse {
    fn from(r: Response) -> Self {
        Self {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }
    }
}

/// Why a request's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// The header carrying the signature (or Slack's timestamp) is absent.
    Missing(String),
    /// The header is there but not in the sender's format.
    Malformed(String),
    /// Slack's timestamp is more than [`SLACK_WINDOW_SECS`] from now (a replay, or a
    /// clock far off).
    Stale {
        /// The request's timestamp.
        timestamp: u64,
        /// The plugin's clock.
        now: u64,
    },
    /// The signature does not match the body and the secret.
    Mismatch,
}

impl std::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Missing(h) => write!(f, "no {h} header"),
            Self::Malformed(h) => write!(f, "the {h} header is malformed"),
            Self::Stale { timestamp, now } => write!(
                f,
                "the request's timestamp {timestamp} is more than {SLACK_WINDOW_SECS} s from now ({now})"
            ),
            Self::Mismatch => write!(f, "the signature does not match"),
        }
    }
}

impl std::error::Error for SignatureError {}

/// Checks GitHub's `X-Hub-Signature-256: sha256=<hex>` against the body and `secret` (the
/// webhook's "Secret" in GitHub's settings).
pub fn verify_github(secret: &[u8], req: &Request) -> Result<(), SignatureError> {
    const HEADER: &str = "x-hub-signature-256";
    let value = req
        .header(HEADER)
        .ok_or_else(|| SignatureError::Missing(HEADER.into()))?;
    let hex = value
        .strip_prefix("sha256=")
        .ok_or_else(|| SignatureError::Malformed(HEADER.into()))?;
    check(secret, &[req.body()], hex, HEADER)
}

/// Checks Slack's `X-Slack-Signature: v0=<hex>` over `v0:<X-Slack-Request-Timestamp>:<body>`
/// with the app's signing secret, and that the timestamp is within [`SLACK_WINDOW_SECS`]
/// of `now_secs` (pass [`clock::now_secs`](crate::clock::now_secs)).
pub fn verify_slack(secret: &[u8], req: &Request, now_secs: u64) -> Result<(), SignatureError> {
    const SIGNATURE: &str = "x-slack-signature";
    const TIMESTAMP: &str = "x-slack-request-timestamp";
    let stamp = req
        .header(TIMESTAMP)
        .ok_or_else(|| SignatureError::Missing(TIMESTAMP.into()))?;
    let timestamp: u64 = stamp
        .trim()
        .parse()
        .map_err(|_| SignatureError::Malformed(TIMESTAMP.into()))?;
    if timestamp.abs_diff(now_secs) > SLACK_WINDOW_SECS {
        return Err(SignatureError::Stale {
            timestamp,
            now: now_secs,
        });
    }
    let value = req
        .header(SIGNATURE)
        .ok_or_else(|| SignatureError::Missing(SIGNATURE.into()))?;
    let hex = value
        .strip_prefix("v0=")
        .ok_or_else(|| SignatureError::Malformed(SIGNATURE.into()))?;
    let prefix = format!("v0:{}:", stamp.trim());
    check(secret, &[prefix.as_bytes(), req.body()], hex, SIGNATURE)
}

/// Checks a hex HMAC-SHA256 of the body in header `header` (a `sha256=` prefix is
/// allowed), for senders with a shared secret of their own (a home device, a script).
pub fn verify_hmac_sha256(
    secret: &[u8],
    req: &Request,
    header: &str,
) -> Result<(), SignatureError> {
    let value = req
        .header(header)
        .ok_or_else(|| SignatureError::Missing(header.into()))?;
    let hex = value.strip_prefix("sha256=").unwrap_or(value);
    check(secret, &[req.body()], hex.trim(), header)
}

/// The hex HMAC-SHA256 of `parts` (joined) under `secret`: what a sender puts in its
/// header, for tests and for plugins that sign what they send.
pub fn sign_hmac_sha256(secret: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = mac(secret);
    for part in parts {
        mac.update(part);
    }
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Compares the HMAC of `parts` with the hex `signature`, in constant time.
fn check(
    secret: &[u8],
    parts: &[&[u8]],
    signature: &str,
    header: &str,
) -> Result<(), SignatureError> {
    let expected = decode_hex(signature).ok_or_else(|| SignatureError::Malformed(header.into()))?;
    let mut mac = mac(secret);
    for part in parts {
        mac.update(part);
    }
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

fn mac(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!())
}

/// Lowercase or uppercase hex to bytes; `None` when it is not hex.
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's own example from "Validating webhook deliveries".
    #[test]
    fn githubs_documented_example_verifies() {
        let req = Request::new(
            "/",
            &[(
                "X-Hub-Signature-256",
                "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
            )],
            "Hello, World!",
        );
        assert_eq!(verify_github(b"It's a Secret to Everybody", &req), Ok(()));
        assert_eq!(
            verify_github(b"another secret", &req),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_changed_body_a_missing_header_and_bad_hex_are_refused() {
        let sig = format!("sha256={}", sign_hmac_sha256(b"k", &[b"body"]));
        let good = Request::new("/", &[("x-hub-signature-256", &sig)], "body");
        assert_eq!(verify_github(b"k", &good), Ok(()));
        let changed = Request::new("/", &[("x-hub-signature-256", &sig)], "bodY");
        assert_eq!(verify_github(b"k", &changed), Err(SignatureError::Mismatch));
        let none = Request::new("/", &[], "body");
        assert!(matches!(
            verify_github(b"k", &none),
            Err(SignatureError::Missing(_))
        ));
        let bad = Request::new("/", &[("x-hub-signature-256", "sha256=zz")], "body");
        assert!(matches!(
            verify_github(b"k", &bad),
            Err(SignatureError::Malformed(_))
        ));
    }

    /// Slack's example from "Verifying requests from Slack".
    #[test]
    fn slacks_documented_example_verifies_inside_the_window_only() {
        let body = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let req = Request::new(
            "/",
            &[
                ("X-Slack-Request-Timestamp", "1531420618"),
                (
                    "X-Slack-Signature",
                    "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
                ),
            ],
            body,
        );
        let secret = b"8f742231b10e8888abcd99yyyzzz85a5";
        assert_eq!(verify_slack(secret, &req, 1_531_420_618 + 60), Ok(()));
        assert!(matches!(
            verify_slack(secret, &req, 1_531_420_618 + SLACK_WINDOW_SECS + 1),
            Err(SignatureError::Stale { .. })
        ));
    }

    #[test]
    fn a_generic_header_takes_plain_or_prefixed_hex() {
        let hex = sign_hmac_sha256(b"s", &[b"{}"]);
        let plain = Request::new("/", &[("x-signature", &hex)], "{}");
        assert_eq!(verify_hmac_sha256(b"s", &plain, "X-Signature"), Ok(()));
        let prefixed = Request::new("/", &[("x-signature", &format!("sha256={hex}"))], "{}");
        assert_eq!(verify_hmac_sha256(b"s", &prefixed, "x-signature"), Ok(()));
        assert_eq!(
            verify_hmac_sha256(b"t", &plain, "x-signature"),
            Err(SignatureError::Mismatch)
        );
    }
}
