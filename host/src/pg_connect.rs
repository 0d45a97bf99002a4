//! How a hub connects to its Postgres store: the connection settings the lease and the
//! calls between hubs share (they run on tokio, beside the store's own thread), and the
//! TLS every connection uses (the store's, the lease's and the calls').
//!
//! - On when `[store] url` says `sslmode=require`. The server's certificate must then
//!   chain to a trusted root and name the host the URL names: stricter than libpq's
//!   `require`, which checks neither, because a hub's store holds its plugins' data.
//! - The trusted roots are the system's, or only those in the file `SSL_CERT_FILE` and the
//!   directories `SSL_CERT_DIR` name (the variables OpenSSL and libpq users know): how a
//!   hub trusts a private CA.
//! - Without `sslmode=require` (libpq's default `prefer` included) the connection is plain
//!   text, as it always was: a `prefer` that encrypts but trusts any certificate would
//!   look safe without being so.

use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio_postgres::config::SslMode;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, Connection, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

/// `[store] url` does not parse (the store, which opens first, would have said so).
#[derive(Debug, thiserror::Error)]
#[error("[store] url: {0}")]
pub struct UrlError(String);

/// The settings of a connection to the database at `url` as `password`'s user, named
/// `application` (what `pg_stat_activity` shows), giving up connecting after `timeout`.
pub fn config(
    url: &str,
    password: Option<&str>,
    application: &str,
    timeout: Duration,
) -> Result<tokio_postgres::Config, UrlError> {
    let mut config = tokio_postgres::Config::from_str(url).map_err(|e| UrlError(e.to_string()))?;
    if let Some(password) = password {
        config.password(password);
    }
    config
        .connect_timeout(timeout)
        .application_name(application);
    Ok(config)
}

/// The connection `config` describes, in the TLS mode its `sslmode` asks for
/// ([`for_mode`]); the caller drives the returned connection.
pub async fn connect(
    config: &tokio_postgres::Config,
) -> Result<
    (
        Client,
        Connection<Socket, <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream>,
    ),
    tokio_postgres::Error,
> {
    let (mode, tls) = for_mode(config.get_ssl_mode());
    config.clone().ssl_mode(mode).connect(tls).await
}

/// The mode a connection asked to use `asked` runs in, and the connector to give it.
pub fn for_mode(asked: SslMode) -> (SslMode, MakeRustlsConnect) {
    static VERIFIED: OnceLock<MakeRustlsConnect> = OnceLock::new();
    static PLAIN: OnceLock<MakeRustlsConnect> = OnceLock::new();
    if asked == SslMode::Require {
        let tls = VERIFIED.get_or_init(|| MakeRustlsConnect::new(client_config(trusted_roots())));
        return (SslMode::Require, tls.clone());
    }
    // Never used for a handshake: the mode says no TLS.
    let none = || MakeRustlsConnect::new(client_config(rustls::RootCertStore::empty()));
    (SslMode::Disable, PLAIN.get_or_init(none).clone())
}

/// The system's roots, or those `SSL_CERT_FILE` / `SSL_CERT_DIR` name.
fn trusted_roots() -> rustls::RootCertStore {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!("store TLS: cannot read trusted certificates: {e}");
    }
    let mut roots = rustls::RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(found.certs);
    if ignored > 0 {
        tracing::warn!("store TLS: {ignored} trusted certificates could not be parsed");
    }
    tracing::debug!("store TLS: {added} trusted root certificates");
    roots
}

/// A client config on ring with `roots` as the trusted CAs and no client certificate.
fn client_config(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider);
    // The safe defaults are TLS 1.2 and 1.3, both of which ring provides.
    let builder = builder
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3");
    builder.with_root_certificates(roots).with_no_client_auth()
}
