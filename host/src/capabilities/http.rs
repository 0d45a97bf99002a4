//! `http`: outgoing HTTP through the standard `wasi:http/outgoing-handler` (wasmtime-wasi-http
//! links the interface; this module decides what may be sent). Every request goes through
//! [`HttpHooks::send_request`], which in order:
//!
//! 1. checks the URL's scheme, host and port against the `http_hosts` grant (deny by
//!    default; the denial in the log names the plugin, the host and the entry to add);
//! 2. spends one of the plugin's requests per minute and one of its concurrent slots;
//! 3. resolves the name itself and drops loopback, private, link-local and metadata
//!    addresses unless `http_private` is granted *and* an entry names that exact host, so
//!    a granted name that resolves to 127.0.0.1 (DNS rebinding) is refused;
//! 4. connects to the checked addresses only (TLS verified against the webpki roots, SNI
//!    and certificate checked against the name), with the whole request bounded by
//!    `http_timeout_ms` and the response body by `http_response_kb`.
//!
//! The host never follows redirects: a 3xx goes back to the plugin as is, and a client
//! that follows it (the SDK's [`http`] module does) sends a new request, checked again.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use wasmtime::component::Linker;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{
    Error, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView,
};

use super::registry::{Capability, InstanceEnv};
use crate::config::Config;
use crate::config::outbound::{HostPattern, default_port, grant_for};
use crate::runtime::state::PluginState;

/// Longest one request may take unless the grant says otherwise (`http_timeout_ms`).
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response body unless the grant says otherwise (`http_response_kb`): the body is
/// copied into the plugin's memory, so this also bounds what one response can cost it.
pub const RESPONSE_BYTES: u64 = 1024 * 1024;
/// Requests per minute unless the grant says otherwise: a feed poller needs a handful, and
/// a runaway loop must not turn the host into a traffic source.
pub const REQUESTS_PER_MINUTE: u32 = 120;
/// Requests in flight at once unless the grant says otherwise.
pub const CONCURRENT: u32 = 4;
/// Header bytes (in memory) a plugin may build into one request's or response's fields;
/// wasmtime-wasi-http's default is 128 KiB, more than any API needs.
const FIELD_SIZE_LIMIT: usize = 64 * 1024;
/// What every request says it is, unless the plugin sets its own.
const USER_AGENT: &str = concat!("roost/", env!("CARGO_PKG_VERSION"));

/// What config grants: the servers, whether private addresses may be reached, and the
/// limits. Nothing by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpGrant {
    /// `http_hosts`: the servers requests may go to; nothing else is reachable.
    pub hosts: Vec<HostPattern>,
    /// `http_private`: whether a host an entry names exactly may resolve to a private or
    /// local address (a service on the LAN); never through a wildcard entry.
    pub private: bool,
    /// `http_timeout_ms`: the bound on one whole request, so a silent server cannot hold
    /// the plugin's call until its own time limit.
    pub timeout: Duration,
    /// `http_response_kb` in bytes: the body lands in the plugin's memory.
    pub response_bytes: u64,
    /// `http_requests_per_minute`: keeps a runaway loop from making the host a traffic
    /// source.
    pub per_minute: u32,
    /// `http_concurrent`: requests in flight at once, each holding a connection.
    pub concurrent: u32,
}

impl Default for HttpGrant {
    fn default() -> Self {
        Self {
            hosts: Vec::new(),
            private: false,
            timeout: TIMEOUT,
            response_bytes: RESPONSE_BYTES,
            per_minute: REQUESTS_PER_MINUTE,
            concurrent: CONCURRENT,
        }
    }
}

/// Per-instance context: wasmtime-wasi-http's own state plus the hooks holding the grant.
pub struct HttpCtx {
    wasi: WasiHttpCtx,
    hooks: HttpHooks,
}

impl HttpCtx {
    /// Context for one instance of `plugin` with its grant.
    pub fn new(plugin: &str, grant: HttpGrant) -> Self {
        let mut wasi = WasiHttpCtx::new();
        wasi.set_field_size_limit(FIELD_SIZE_LIMIT);
        Self {
            wasi,
            hooks: HttpHooks::new(plugin, grant),
        }
    }

    /// The hooks, for tests that send without a guest.
    pub fn hooks(&mut self) -> &mut HttpHooks {
        &mut self.hooks
    }
}

/// The instance's [`WasiHttpHooks`]: where every outgoing request is checked and sent.
pub struct HttpHooks {
    shared: Arc<Shared>,
}

/// What a request's future needs after `send_request` has returned.
struct Shared {
    plugin: String,
    grant: HttpGrant,
    in_flight: Arc<Semaphore>,
    budget: Mutex<(Instant, u32)>,
}

impl HttpHooks {
    fn new(plugin: &str, grant: HttpGrant) -> Self {
        Self {
            shared: Arc::new(Shared {
                plugin: plugin.to_string(),
                in_flight: Arc::new(Semaphore::new(grant.concurrent as usize)),
                grant,
                budget: Mutex::new((Instant::now(), 0)),
            }),
        }
    }
}

/// A boxed future as wasmtime-wasi-http's hook signature wants it.
type Boxed<T> = Box<dyn Future<Output = T> + Send>;
type Sent = (http::Response<WasiBody>, Boxed<Result<(), Error>>);

impl WasiHttpHooks for HttpHooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _request_body_result: Boxed<Result<(), Error>>,
    ) -> Boxed<Result<Sent, Error>> {
        let shared = self.shared.clone();
        Box::new(async move { shared.send(request, options).await })
    }
}

impl Shared {
    async fn send(
        self: Arc<Self>,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<Sent, Error> {
        let started = Instant::now();
        let uri = request.uri().clone();
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let host = uri
            .host()
            .ok_or(Error::HttpRequestUriInvalid)?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = uri
            .port_u16()
            .or_else(|| default_port(&scheme))
            .ok_or(Error::HttpProtocolError)?;

        // 1. The grant, before anything touches the network.
        let Some(entry) = self
            .grant
            .hosts
            .iter()
            .find(|p| p.matches(&scheme, &host, port))
        else {
            tracing::warn!(
                plugin = %self.plugin,
                blame = "guest",
                "denied: HTTP request to {scheme}://{host}:{port}: not granted to plugin `{0}`; add \"{1}\" to http_hosts in [plugins.{0}.grants]",
                self.plugin,
                grant_for(&scheme, &host, port),
            );
            return Err(Error::HttpRequestDenied);
        };
        let private_ok = self.grant.private && entry.names_exact_host(&host);

        // 2. The budgets.
        self.spend()?;
        let permit = self.in_flight.clone().try_acquire_owned().map_err(|_| {
            tracing::warn!(plugin = %self.plugin, blame = "guest",
                "denied: more than {} HTTP requests in flight (http_concurrent in [plugins.{}.grants])",
                self.grant.concurrent, self.plugin);
            Error::ConnectionLimitReached
        })?;

        // The whole request, connect to last body byte, within the grant's timeout; a
        // guest asking for shorter timeouts gets them.
        let mut timeout = self.grant.timeout;
        if let Some(o) = options {
            for t in [o.connect_timeout, o.first_byte_timeout]
                .into_iter()
                .flatten()
            {
                timeout = timeout.min(t);
            }
        }
        let deadline = started + timeout;

        // 3. Resolve and check every address.
        let addrs = tokio::time::timeout_at(deadline.into(), self.resolve(&host, port))
            .await
            .map_err(|_| Error::DnsTimeout)??;
        let (allowed, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = addrs
            .into_iter()
            .partition(|a| private_ok || !is_restricted(a.ip()));
        if allowed.is_empty() {
            let list: Vec<String> = refused.iter().map(|a| a.ip().to_string()).collect();
            tracing::warn!(
                plugin = %self.plugin,
                blame = "guest",
                "denied: HTTP request to {host}: it resolves to private or local address(es) {}; plugin `{}` may reach them only with http_private = true and an http_hosts entry naming `{host}` exactly",
                list.join(", "),
                self.plugin,
            );
            return Err(Error::DestinationIpProhibited);
        }

        // 4. Connect, TLS, send.
        let tcp = tokio::time::timeout_at(deadline.into(), TcpStream::connect(&allowed[..]))
            .await
            .map_err(|_| Error::ConnectionTimeout)?
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::ConnectionRefused => Error::ConnectionRefused,
                _ => Error::Connect(e),
            })?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        *request.uri_mut() = http::Uri::try_from(path).map_err(|_| Error::HttpRequestUriInvalid)?;
        request
            .headers_mut()
            .entry(http::header::USER_AGENT)
            .or_insert(http::HeaderValue::from_static(USER_AGENT));
        let work = async {
            if scheme == "https" {
                let name = rustls_name(&host)?;
                let tls = tls_connector()
                    .connect(name, tcp)
                    .await
                    .map_err(Error::Tls)?;
                exchange(tls, request).await
            } else {
                exchange(tcp, request).await
            }
        };
        let (response, conn) = tokio::time::timeout_at(deadline.into(), work)
            .await
            .map_err(|_| Error::ConnectionReadTimeout)??;

        let cap = self.grant.response_bytes;
        if let Some(len) = response.body().size_hint().exact()
            && len > cap
        {
            self.too_large(&host, cap);
            return Err(Error::HttpResponseBodySize(Some(len)));
        }
        let plugin = self.plugin.clone();
        let body_host = host.clone();
        let response = response.map(move |incoming| {
            Limited {
                inner: incoming,
                left: cap,
                cap,
                deadline: Box::pin(tokio::time::sleep_until(deadline.into())),
                on_too_large: Some(Box::new(move || {
                    tracing::warn!(plugin = %plugin, blame = "guest",
                        "HTTP response from {body_host} is over the {cap}-byte cap (http_response_kb)");
                })),
            }
            .boxed_unsync()
        });
        // The connection task keeps the concurrency slot until the exchange is over.
        let conn: Boxed<Result<(), Error>> = Box::new(async move {
            let result = Box::into_pin(conn).await;
            drop(permit);
            result
        });
        Ok((response, conn))
    }

    fn too_large(&self, host: &str, cap: u64) {
        tracing::warn!(plugin = %self.plugin, blame = "guest",
            "HTTP response from {host} is over the {cap}-byte cap (http_response_kb)");
    }

    /// Spends one request of the per-minute budget.
    fn spend(&self) -> Result<(), Error> {
        let mut budget = self.budget.lock().unwrap_or_else(|e| e.into_inner());
        if budget.0.elapsed() >= Duration::from_secs(60) {
            *budget = (Instant::now(), 0);
        }
        if budget.1 >= self.grant.per_minute {
            tracing::warn!(plugin = %self.plugin, blame = "guest",
                "denied: HTTP budget of {} requests per minute used up (http_requests_per_minute in [plugins.{}.grants])",
                self.grant.per_minute, self.plugin);
            return Err(Error::ConnectionLimitReached);
        }
        budget.1 += 1;
        Ok(())
    }

    /// The addresses to try: the literal, or what the system resolver says.
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Error> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| {
                tracing::debug!(plugin = %self.plugin, "lookup of {host} failed: {e}");
                Error::DnsError {
                    rcode: None,
                    info_code: None,
                }
            })?
            .collect();
        if found.is_empty() {
            return Err(Error::DestinationNotFound);
        }
        Ok(found)
    }
}

/// Sends `request` over an HTTP/1.1 connection on `io`, driving the connection until the
/// response head arrives; the connection's future (which carries the body) is returned
/// for wasmtime-wasi-http to drive.
async fn exchange<S>(
    io: S,
    request: http::Request<WasiBody>,
) -> Result<
    (
        http::Response<hyper::body::Incoming>,
        Boxed<Result<(), Error>>,
    ),
    Error,
>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    let mut conn = Box::pin(conn);
    let send = sender.send_request(request);
    tokio::pin!(send);
    // Wait for the head while driving the connection's I/O (wasmtime's default sender does
    // the same).
    let mut conn_done = false;
    let response = std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = send.as_mut().poll(cx) {
            return Poll::Ready(r.map_err(Error::from));
        }
        if !conn_done {
            match conn.as_mut().poll(cx) {
                Poll::Ready(Ok(())) => {
                    conn_done = true;
                    return send.as_mut().poll(cx).map_err(Error::from);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(Error::from(e))),
                Poll::Pending => {}
            }
        }
        Poll::Pending
    })
    .await?;
    let rest: Boxed<Result<(), Error>> = if conn_done {
        Box::new(async { Ok(()) })
    } else {
        Box::new(async move { conn.await.map_err(Error::from) })
    };
    Ok((response, rest))
}

/// A response body cut off at the byte cap and at the request's deadline.
struct Limited {
    inner: hyper::body::Incoming,
    left: u64,
    cap: u64,
    deadline: Pin<Box<tokio::time::Sleep>>,
    on_too_large: Option<Box<dyn FnOnce() + Send>>,
}

impl Body for Limited {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                if len > self.left {
                    if let Some(log) = self.on_too_large.take() {
                        log();
                    }
                    let cap = self.cap;
                    return Poll::Ready(Some(Err(Error::HttpResponseBodySize(Some(cap)))));
                }
                self.left -= len;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Error::from(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether `ip` is an address plugins may not reach without `http_private`: loopback,
/// private, link-local (cloud metadata lives at 169.254.169.254), carrier-grade NAT,
/// unique-local, multicast, unspecified, broadcast and documentation ranges, and IPv4
/// addresses hidden in IPv6 (mapped, compatible, NAT64, 6to4) that are any of those.
pub fn is_restricted(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => restricted_v4(v4),
        IpAddr::V6(v6) => restricted_v6(v6),
    }
}

fn restricted_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // 100.64/10, carrier-grade NAT
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // 192.0.0/24, IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn restricted_v6(ip: Ipv6Addr) -> bool {
    let seg = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return restricted_v4(v4);
    }
    // ::a.b.c.d (deprecated IPv4-compatible), 64:ff9b::/96 (NAT64), 2002::/16 (6to4).
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if seg[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified() {
        return restricted_v4(embedded(seg[6], seg[7]));
    }
    if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6] == [0; 4] {
        return restricted_v4(embedded(seg[6], seg[7]));
    }
    if seg[0] == 0x2002 {
        return restricted_v4(embedded(seg[1], seg[2]));
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (seg[0] & 0xfe00) == 0xfc00 // fc00::/7, unique local
        || (seg[0] & 0xffc0) == 0xfe80 // fe80::/10, link-local
        || (seg[0] & 0xffc0) == 0xfec0 // fec0::/10, old site-local
        || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
}

/// The TLS client: the webpki roots, no client certificate. Built once.
fn tls_connector() -> tokio_rustls::TlsConnector {
    static CONFIG: OnceLock<Arc<tokio_rustls::rustls::ClientConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = tokio_rustls::rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    });
    tokio_rustls::TlsConnector::from(config.clone())
}

fn rustls_name(host: &str) -> Result<tokio_rustls::rustls::pki_types::ServerName<'static>, Error> {
    tokio_rustls::rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|_| Error::HttpRequestUriInvalid)
}

/// wasmtime-wasi-http reaches the instance's HTTP state through this: the context and
/// hooks live in `caps.http`, the resource table is the instance's.
impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        let http = &mut self.caps.http;
        WasiHttpCtxView {
            ctx: &mut http.wasi,
            table: &mut self.table,
            hooks: &mut http.hooks,
        }
    }
}

/// The `http` capability: the standard `wasi:http/outgoing-handler`, limited to the
/// `http_hosts` grant and its limits.
pub struct Http;

impl Capability for Http {
    type Grant = HttpGrant;
    type Ctx = HttpCtx;

    fn grant(config: &Config, plugin: &str) -> HttpGrant {
        let Some(grants) = config.plugin(plugin).map(|p| &p.grants) else {
            return HttpGrant::default();
        };
        HttpGrant {
            // Config validation has already refused patterns that do not parse.
            hosts: grants
                .http_hosts
                .iter()
                .filter_map(|h| HostPattern::parse(h).ok())
                .collect(),
            private: grants.http_private,
            timeout: grants
                .http_timeout_ms
                .map_or(TIMEOUT, Duration::from_millis),
            response_bytes: grants
                .http_response_kb
                .map_or(RESPONSE_BYTES, |kb| kb * 1024),
            per_minute: grants
                .http_requests_per_minute
                .unwrap_or(REQUESTS_PER_MINUTE),
            concurrent: grants.http_concurrent.unwrap_or(CONCURRENT).max(1),
        }
    }

    fn context(env: &InstanceEnv<'_>, grant: &HttpGrant) -> HttpCtx {
        HttpCtx::new(env.plugin, grant.clone())
    }

    /// Links `wasi:http/outgoing-handler` and `wasi:http/types` (wasi:io and wasi:clocks
    /// come with WASI itself).
    fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
    }

    fn usage(ctx: &mut HttpCtx) -> Option<String> {
        let shared = &ctx.hooks.shared;
        let busy = shared.grant.concurrent as usize - shared.in_flight.available_permits();
        super::registry::counted(busy, "HTTP request in flight", "HTTP requests in flight")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    fn grant(hosts: &[&str], private: bool) -> HttpGrant {
        HttpGrant {
            hosts: hosts
                .iter()
                .map(|h| HostPattern::parse(h).expect("pattern"))
                .collect(),
            private,
            timeout: Duration::from_millis(500),
            response_bytes: 1024,
            ..HttpGrant::default()
        }
    }

    async fn send(grant: HttpGrant, url: &str) -> Result<http::Response<WasiBody>, Error> {
        let mut ctx = HttpCtx::new("p", grant);
        let body = http_body_util::Empty::<Bytes>::new()
            .map_err(|never: std::convert::Infallible| -> Error { match never {} })
            .boxed_unsync();
        let request = http::Request::get(url).body(body).expect("request");
        let fut = ctx
            .hooks()
            .send_request(request, None, Box::new(async { Ok(()) }));
        let (response, conn) = Box::into_pin(fut).await?;
        tokio::spawn(Box::into_pin(conn));
        Ok(response)
    }

    /// A one-shot server on 127.0.0.1 that answers every connection with `reply` (or,
    /// with `None`, reads and never answers).
    async fn server(reply: Option<&'static [u8]>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    match reply {
                        Some(r) => {
                            let _ = s.write_all(r).await;
                        }
                        None => tokio::time::sleep(Duration::from_secs(30)).await,
                    }
                });
            }
        });
        addr
    }

    #[test]
    fn loopback_private_link_local_and_metadata_addresses_are_restricted() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:c0a8:101::1",
        ] {
            assert!(is_restricted(ip.parse().expect(ip)), "{ip}");
        }
        for ip in ["93.184.216.34", "172.32.0.1", "1.1.1.1", "2606:4700::1111"] {
            assert!(!is_restricted(ip.parse().expect(ip)), "{ip}");
        }
    }

    #[tokio::test]
    async fn a_request_outside_the_grant_is_denied_before_any_lookup() {
        let g = grant(&["api.example.com"], true);
        for url in [
            "https://evil.example.com/",
            "http://api.example.com/",
            "https://api.example.com:8443/",
        ] {
            let err = send(g.clone(), url).await.expect_err(url);
            assert!(matches!(err, Error::HttpRequestDenied), "{url}: {err:?}");
        }
        let err = send(HttpGrant::default(), "https://api.example.com/")
            .await
            .expect_err("nothing granted");
        assert!(matches!(err, Error::HttpRequestDenied), "{err:?}");
    }

    #[tokio::test]
    async fn private_addresses_need_http_private_and_an_exact_entry() {
        let addr = server(Some(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")).await;
        let port = addr.port();
        let by_ip = format!("http://127.0.0.1:{port}/");
        let by_name = format!("http://localhost:{port}/");
        let exact = [
            format!("http://127.0.0.1:{port}"),
            format!("http://localhost:{port}"),
        ];
        let exact: Vec<&str> = exact.iter().map(String::as_str).collect();
        for url in [&by_ip, &by_name] {
            let err = send(grant(&exact, false), url).await.expect_err(url);
            assert!(matches!(err, Error::DestinationIpProhibited), "{err:?}");
            // A wildcard entry is not enough, even with http_private.
            let err = send(grant(&["*://*:*"], true), url).await.expect_err(url);
            assert!(matches!(err, Error::DestinationIpProhibited), "{err:?}");
        }
        let response = send(grant(&exact, true), &by_ip).await.expect("allowed");
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.expect("body");
        assert_eq!(&body.to_bytes()[..], b"ok");
    }

    #[tokio::test]
    async fn bodies_over_the_cap_fail_declared_or_streamed() {
        let declared = server(Some(b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n")).await;
        let url = format!("http://127.0.0.1:{}/", declared.port());
        let g = grant(
            &[format!("http://127.0.0.1:{}", declared.port()).as_str()],
            true,
        );
        let err = send(g, &url).await.expect_err("declared too large");
        assert!(matches!(err, Error::HttpResponseBodySize(_)), "{err:?}");

        // 1024 bytes (exactly the cap) in one chunk, then one byte too many.
        let chunked = format!(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n400\r\n{}\r\n1\r\nx\r\n0\r\n\r\n",
            "a".repeat(1024)
        );
        let chunked: &'static [u8] = Box::leak(chunked.into_bytes().into_boxed_slice());
        let streamed = server(Some(chunked)).await;
        let url = format!("http://127.0.0.1:{}/", streamed.port());
        let g = grant(
            &[format!("http://127.0.0.1:{}", streamed.port()).as_str()],
            true,
        );
        let response = send(g, &url).await.expect("head arrives");
        let err = response
            .into_body()
            .collect()
            .await
            .expect_err("over the cap");
        assert!(matches!(err, Error::HttpResponseBodySize(_)), "{err:?}");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        let silent = server(None).await;
        let url = format!("http://127.0.0.1:{}/", silent.port());
        let g = grant(
            &[format!("http://127.0.0.1:{}", silent.port()).as_str()],
            true,
        );
        let started = Instant::now();
        let err = send(g, &url).await.expect_err("timeout");
        assert!(matches!(err, Error::ConnectionReadTimeout), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
