//! `POST /hooks/<plugin>/<path>`: a webhook handed whole to the plugin's `on-webhook`.
//!
//! Only a running plugin granted `webhooks = true` is reached; any other name gets the same
//! 404, so a stranger cannot tell which plugins exist. The body is read up to the plugin's
//! `webhook_kb` (413 past it) before the call. A plugin that is loading, restarting or busy
//! gets `503` with `Retry-After`, so the caller retries; once handed to the plugin's actor,
//! a request is answered even if the plugin is reloaded meanwhile (the old actor serves
//! its mailbox to the end), so a 200 always means the plugin ran. These routes need no
//! token: webhook callers cannot send one, so the plugin checks the caller's signature.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::WebState;
use crate::runtime::actor::{CallError, PluginHandle};
use crate::runtime::bindings::{WebhookRequest, WebhookResponse};
use crate::runtime::supervisor::Running;

/// Seconds a caller is asked to wait before retrying a plugin that cannot take the call.
const RETRY_AFTER_SECS: &str = "1";

/// `/hooks/<plugin>`.
pub async fn without_path(
    state: State<Arc<WebState>>,
    Path(plugin): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(state, plugin, "/".into(), method, uri, headers, body).await
}

/// `/hooks/<plugin>/<path…>`.
pub async fn with_path(
    state: State<Arc<WebState>>,
    Path((plugin, path)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(
        state,
        plugin,
        format!("/{path}"),
        method,
        uri,
        headers,
        body,
    )
    .await
}

async fn handle(
    State(state): State<Arc<WebState>>,
    plugin: String,
    path: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let handle = match state.supervisor.running(&plugin) {
        Running::Yes(h) if h.webhook_grant().enabled => h,
        Running::Yes(_) => {
            tracing::info!(
                plugin,
                "webhook refused: the plugin has no `webhooks = true` grant"
            );
            return no_such_hook(&plugin);
        }
        Running::Loading => return retry_later(&format!("plugin `{plugin}` is loading")),
        Running::No => return no_such_hook(&plugin),
    };
    if method != Method::POST {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "POST")],
            "405 method not allowed: webhooks are POSTed\n",
        )
            .into_response();
    }
    let limit = handle.webhook_grant().body_limit;
    let Ok(body) = to_bytes(body, limit).await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "413 payload too large: plugin `{plugin}` takes at most {} KiB (webhook_kb)\n",
                limit / 1024
            ),
        )
            .into_response();
    };
    let request = WebhookRequest {
        method: method.to_string(),
        path,
        query: uri.query().unwrap_or("").to_string(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let response = call(&handle, request, limit).await;
    state.count_webhook(&plugin, response.status());
    response
}

/// Runs the plugin and turns what it answered (or why it did not) into the response.
async fn call(handle: &PluginHandle, request: WebhookRequest, limit: usize) -> Response {
    let plugin = handle.name();
    match handle.webhook(request).await {
        Ok(answer) => match to_response(answer, limit) {
            Ok(response) => response,
            Err(why) => {
                tracing::warn!(plugin, "webhook: the plugin's response is unusable: {why}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("500: plugin `{plugin}` gave an unusable response: {why}\n"),
                )
                    .into_response()
            }
        },
        Err(CallError::Unavailable { reason, .. }) => {
            retry_later(&format!("plugin `{plugin}` is unavailable: {reason}"))
        }
        Err(e) => {
            tracing::warn!(plugin, "webhook: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("500: plugin `{plugin}` failed on this request\n"),
            )
                .into_response()
        }
    }
}

/// The plugin's answer as an HTTP response, or why it cannot be one.
fn to_response(answer: WebhookResponse, limit: usize) -> Result<Response, String> {
    let status = StatusCode::from_u16(answer.status)
        .ok()
        .filter(|s| (100..=599).contains(&s.as_u16()))
        .ok_or_else(|| format!("status {} is not an HTTP status", answer.status))?;
    if answer.body.len() > limit {
        return Err(format!(
            "a body of {} bytes is over the {limit}-byte cap (webhook_kb)",
            answer.body.len()
        ));
    }
    let mut response = (status, answer.body).into_response();
    for (name, value) in answer.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("`{name}` is not a header name"))?;
        let value = HeaderValue::from_str(&value)
            .map_err(|_| format!("the value of `{name}` is not a header value"))?;
        response.headers_mut().append(name, value);
    }
    Ok(response)
}

/// The 404 for a plugin that does not exist, is not running, or takes no webhooks.
fn no_such_hook(plugin: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        format!("404 not found: no plugin takes webhooks at /hooks/{plugin}\n"),
    )
        .into_response()
}

/// A 503 asking the caller to retry, with the reason.
fn retry_later(why: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, RETRY_AFTER_SECS)],
        format!("503 service unavailable: {why}; retry shortly\n"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&str, &str)], body: &[u8]) -> WebhookResponse {
        WebhookResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.to_vec(),
        }
    }

    #[test]
    fn a_plugins_answer_becomes_the_response() {
        let r = to_response(answer(202, &[("x-done", "yes")], b"ok"), 10).expect("usable");
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        assert_eq!(r.headers()["x-done"], "yes");
    }

    #[test]
    fn bad_statuses_headers_and_bodies_are_refused_with_the_reason() {
        let status = to_response(answer(42, &[], b""), 10).expect_err("status");
        assert!(status.contains("42"), "{status}");
        let name = to_response(answer(200, &[("bad name", "x")], b""), 10).expect_err("name");
        assert!(name.contains("bad name"), "{name}");
        let value = to_response(answer(200, &[("x", "a\nb")], b""), 10).expect_err("value");
        assert!(value.contains("value of `x`"), "{value}");
        let body = to_response(answer(200, &[], b"12345678901"), 10).expect_err("body");
        assert!(body.contains("webhook_kb"), "{body}");
    }
}
