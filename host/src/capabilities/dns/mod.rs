//! `dns`: uncached lookups against the servers the plugin's grant names. The host speaks
//! the wire protocol itself (hickory-proto encodes and decodes; UDP, then TCP when the
//! answer is truncated) so the plugin sees what a caching resolver hides: the response
//! code, the AA flag, and all three sections with their TTLs. Timeouts and unreachable
//! servers are failures of their own, never an empty answer.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wasmtime::component::{HasData, Linker};

use super::registry::{Capability, InstanceEnv};
use crate::config::Config;
use crate::runtime::bindings::roost::plugin::dns::{self, Failure, Rcode, Response};
use crate::runtime::state::PluginState;

mod udp;
use udp::Sockets;

/// Queries one instance may send per minute unless its grant says otherwise
/// (`dns_queries_per_minute`): a checker asks a handful of queries per name, and a runaway
/// loop must not turn the host into a traffic source.
pub const QUERIES_PER_MINUTE: u32 = 600;
/// How long one attempt waits for a UDP answer before it is sent again.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Attempts per lookup over UDP (a flaky resolver gets a second chance).
pub const ATTEMPTS: u32 = 2;
/// Questions one `lookup-many` call may hold: the host keeps every answer of a batch
/// until the last one is in.
pub const MAX_BATCH: usize = 256;
/// Queries one instance has out at one server at once.
pub const IN_FLIGHT: usize = 32;
/// Largest answer accepted over TCP.
const MAX_TCP_MESSAGE: usize = 65_535;

/// What config grants: servers to ask ("ip:port"), and whether the system's resolvers (from
/// /etc/resolv.conf) may be asked. Nothing by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsGrant {
    pub servers: Vec<SocketAddr>,
    pub system: bool,
    /// The instance's query budget per minute ([`QUERIES_PER_MINUTE`] by default).
    pub per_minute: u32,
}

impl Default for DnsGrant {
    fn default() -> Self {
        Self {
            servers: Vec::new(),
            system: false,
            per_minute: QUERIES_PER_MINUTE,
        }
    }
}

pub use crate::config::parse_dns_server as parse_server;

/// The system's resolvers, from /etc/resolv.conf.
fn system_servers() -> Vec<SocketAddr> {
    let Ok(bytes) = std::fs::read("/etc/resolv.conf") else {
        return Vec::new();
    };
    match resolv_conf::Config::parse(&bytes) {
        Ok(conf) => conf
            .nameservers
            .iter()
            .map(|ns| SocketAddr::new(IpAddr::from(ns.clone()), 53))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Per-instance context: the grant, the query budget, and the sockets kept for it.
pub struct DnsCtx {
    plugin: String,
    grant: DnsGrant,
    window: Instant,
    used: u32,
    /// Kept between calls: a checker's next batch reuses them instead of opening its own.
    sockets: Sockets,
}

impl DnsCtx {
    /// Context for one instance of `plugin` with its grant.
    pub fn new(plugin: &str, grant: DnsGrant) -> Self {
        Self {
            plugin: plugin.to_string(),
            grant,
            window: Instant::now(),
            used: 0,
            sockets: Sockets::default(),
        }
    }

    /// The servers the grant allows, read once per host call: the system's resolvers come
    /// from /etc/resolv.conf, which is not read again for each question of a batch.
    fn allowed(&self) -> Vec<SocketAddr> {
        let mut allowed = self.grant.servers.clone();
        if self.grant.system {
            allowed.extend(system_servers());
        }
        allowed
    }

    /// The server to ask out of `allowed`: the named one if granted, else the first one.
    fn server(&self, wanted: &str, allowed: &[SocketAddr]) -> Result<SocketAddr, Failure> {
        if wanted.is_empty() {
            return allowed.first().copied().ok_or_else(|| {
                Failure::AccessDenied(format!(
                    "no DNS server is granted to plugin `{0}` (set dns_servers or dns_system in [plugins.{0}.grants])",
                    self.plugin
                ))
            });
        }
        let addr = parse_server(wanted).ok_or_else(|| {
            Failure::InvalidArgument(format!("server `{wanted}`: expected ip:port"))
        })?;
        if allowed.contains(&addr) {
            Ok(addr)
        } else {
            tracing::info!(plugin = %self.plugin, blame = "guest", "denied: DNS server {addr}");
            Err(Failure::AccessDenied(format!(
                "DNS server {addr} is not granted to plugin `{0}` (add it to dns_servers in [plugins.{0}.grants])",
                self.plugin
            )))
        }
    }

    fn spend(&mut self) -> Result<(), Failure> {
        if self.window.elapsed() >= Duration::from_secs(60) {
            self.window = Instant::now();
            self.used = 0;
        }
        if self.used >= self.grant.per_minute {
            return Err(Failure::AccessDenied(format!(
                "query budget of {} per minute used up (dns_queries_per_minute in [plugins.{}.grants])",
                self.grant.per_minute, self.plugin
            )));
        }
        self.used += 1;
        Ok(())
    }
}

/// What host calls see: the context plus the current call's deadline.
pub struct DnsView<'a> {
    ctx: &'a mut DnsCtx,
    deadline: Instant,
}

impl DnsCtx {
    /// The query for one question and the server out of `allowed` to send it to, with the
    /// question paid for out of the budget.
    fn admit(
        &mut self,
        q: &dns::Question,
        allowed: &[SocketAddr],
    ) -> Result<(Message, SocketAddr), Failure> {
        let query = build_query(&q.name, &q.rtype, q.recurse)?;
        let addr = self.server(&q.server, allowed)?;
        self.spend()?;
        Ok((query, addr))
    }
}

impl dns::Host for DnsView<'_> {
    async fn lookup(
        &mut self,
        name: String,
        rtype: String,
        server: String,
        recurse: bool,
    ) -> wasmtime::Result<Result<Response, Failure>> {
        let question = dns::Question {
            name,
            rtype,
            server,
            recurse,
        };
        let admitted = vec![self.ctx.admit(&question, &self.ctx.allowed())];
        let mut results = ask(admitted, self.deadline, &self.ctx.sockets).await;
        Ok(results
            .pop()
            .unwrap_or_else(|| Err(Failure::Timeout("no answer in time".into()))))
    }

    async fn lookup_many(
        &mut self,
        questions: Vec<dns::Question>,
    ) -> wasmtime::Result<Vec<Result<Response, Failure>>> {
        if questions.len() > MAX_BATCH {
            return Err(wasmtime::Error::msg(format!(
                "dns.lookup-many: {} questions in one call; at most {MAX_BATCH}",
                questions.len()
            )));
        }
        let allowed = self.ctx.allowed();
        let admitted = questions
            .iter()
            .map(|q| self.ctx.admit(q, &allowed))
            .collect();
        Ok(ask(admitted, self.deadline, &self.ctx.sockets).await)
    }
}

/// A query message for `name`/`rtype`, with a fresh id.
fn build_query(name: &str, rtype: &str, recurse: bool) -> Result<Message, Failure> {
    let mut owner = Name::from_utf8(name.trim())
        .map_err(|e| Failure::InvalidArgument(format!("name `{name}`: {e}")))?;
    owner.set_fqdn(true);
    let rtype = RecordType::from_str(&rtype.to_ascii_uppercase())
        .map_err(|_| Failure::InvalidArgument(format!("record type `{rtype}`")))?;
    let mut message = Message::new(query_id(), MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = recurse;
    message.add_query(Query::query(owner, rtype));
    Ok(message)
}

/// An id that differs between queries (answers are matched on it).
fn query_id() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos as u16) ^ NEXT.fetch_add(0x9e37, Ordering::Relaxed)
}

/// Asks every admitted question, each server's share over one socket ([`udp::ask_all`]),
/// the servers at once; an answer that came back truncated is asked again over TCP.
/// Results are in the order of `admitted`.
async fn ask(
    admitted: Vec<Result<(Message, SocketAddr), Failure>>,
    deadline: Instant,
    sockets: &Sockets,
) -> Vec<Result<Response, Failure>> {
    let mut results: Vec<Result<Response, Failure>> = Vec::with_capacity(admitted.len());
    let mut by_server: HashMap<SocketAddr, Vec<udp::Job>> = HashMap::new();
    for (index, admitted) in admitted.into_iter().enumerate() {
        // A placeholder until the answer is in; every admitted question gets one.
        results.push(Err(Failure::Timeout(String::new())));
        match admitted {
            Ok((query, server)) => by_server.entry(server).or_default().push(udp::Job {
                index,
                query,
                sent: None,
            }),
            Err(e) => results[index] = Err(e),
        }
    }
    let asked = by_server.into_iter().map(|(server, jobs)| async move {
        let outcomes = udp::ask_all(server, jobs, deadline, sockets).await;
        let answered = outcomes.into_iter().map(|(job, answer)| async move {
            let answer = match answer {
                Ok(m) if m.metadata.truncation => tcp(&job.query, server, deadline).await,
                other => other,
            };
            let round_trip = job.sent.map_or(Duration::ZERO, |sent| sent.elapsed());
            (job.index, answer.map(|m| response(&m, server, round_trip)))
        });
        futures_util::future::join_all(answered).await
    });
    for (index, result) in futures_util::future::join_all(asked)
        .await
        .into_iter()
        .flatten()
    {
        results[index] = result;
    }
    results
}

async fn tcp(query: &Message, server: SocketAddr, deadline: Instant) -> Result<Message, Failure> {
    let bytes = query
        .to_vec()
        .map_err(|e| Failure::InvalidArgument(format!("cannot encode the query: {e}")))?;
    let id = query.metadata.id;
    let left = deadline.saturating_duration_since(Instant::now());
    let work = async {
        let unreachable = |e: std::io::Error| Failure::Unreachable(format!("{server} (tcp): {e}"));
        let mut stream = TcpStream::connect(server).await.map_err(unreachable)?;
        let len = u16::try_from(bytes.len())
            .map_err(|_| Failure::InvalidArgument("query too long".into()))?;
        stream
            .write_all(&len.to_be_bytes())
            .await
            .map_err(unreachable)?;
        stream.write_all(&bytes).await.map_err(unreachable)?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await.map_err(unreachable)?;
        let len = usize::from(u16::from_be_bytes(len)).min(MAX_TCP_MESSAGE);
        let mut buf = vec![0u8; len];
        stream.read_exact(&mut buf).await.map_err(unreachable)?;
        match Message::from_vec(&buf) {
            Ok(m) if m.metadata.id == id => Ok(m),
            Ok(_) => Err(Failure::Unreachable(format!(
                "{server} (tcp): answer to another query"
            ))),
            Err(e) => Err(Failure::Unreachable(format!(
                "{server} (tcp): bad answer: {e}"
            ))),
        }
    };
    tokio::time::timeout(left, work).await.unwrap_or_else(|_| {
        Err(Failure::Timeout(format!(
            "{server} (tcp): no answer in time"
        )))
    })
}

fn response(m: &Message, server: SocketAddr, elapsed: Duration) -> Response {
    let records = |rs: &[Record]| {
        rs.iter()
            .map(|r| dns::ResourceRecord {
                name: r.name.to_string(),
                rtype: r.record_type().to_string(),
                ttl: r.ttl,
                data: r.data.to_string(),
            })
            .collect()
    };
    Response {
        rcode: match m.metadata.response_code {
            ResponseCode::NoError => Rcode::NoError,
            ResponseCode::FormErr => Rcode::FormErr,
            ResponseCode::ServFail => Rcode::ServFail,
            ResponseCode::NXDomain => Rcode::NxDomain,
            ResponseCode::NotImp => Rcode::NotImp,
            ResponseCode::Refused => Rcode::Refused,
            _ => Rcode::Other,
        },
        authoritative: m.metadata.authoritative,
        answer: records(&m.answers),
        authority: records(&m.authorities),
        additional: records(&m.additionals),
        server: server.to_string(),
        elapsed_ms: u32::try_from(elapsed.as_millis()).unwrap_or(u32::MAX),
    }
}

/// [`HasData`] marker: host calls get a [`DnsView`] borrowed from the instance state.
pub struct DnsData;

impl HasData for DnsData {
    type Data<'a> = DnsView<'a>;
}

/// The `dns` capability: the servers in `dns_servers`, and the system's resolvers with
/// `dns_system`, within `dns_queries_per_minute`.
pub struct Dns;

impl Capability for Dns {
    type Grant = DnsGrant;
    type Ctx = DnsCtx;

    fn grant(config: &Config, plugin: &str) -> DnsGrant {
        let Some(grants) = config.plugin(plugin).map(|p| &p.grants) else {
            return DnsGrant::default();
        };
        DnsGrant {
            // Config validation has already refused addresses that do not parse.
            servers: grants
                .dns_servers
                .iter()
                .filter_map(|s| parse_server(s))
                .collect(),
            system: grants.dns_system,
            per_minute: grants.dns_queries_per_minute.unwrap_or(QUERIES_PER_MINUTE),
        }
    }

    fn context(env: &InstanceEnv<'_>, grant: &DnsGrant) -> DnsCtx {
        DnsCtx::new(env.plugin, grant.clone())
    }

    /// Links the interface to each instance's [`DnsCtx`] and call deadline.
    fn add_to_linker(linker: &mut Linker<PluginState>) -> wasmtime::Result<()> {
        dns::add_to_linker::<PluginState, DnsData>(linker, |s| DnsView {
            ctx: &mut s.caps.dns,
            deadline: s.deadline,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dns::Host as _;
    use hickory_proto::rr::{RData, rdata::A};
    use std::collections::HashSet;
    use std::net::Ipv4Addr;
    use std::sync::{Arc, Mutex};
    use tokio::net::UdpSocket;
    use udp::SOCKET_USES;

    /// A tiny authoritative responder for the tests: `a.test.` has an A record, `txt.test.`
    /// exists without one (NODATA), anything else is NXDOMAIN. With `truncate`, UDP answers
    /// carry TC and only TCP gives the records.
    async fn responder(truncate: bool) -> SocketAddr {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind udp");
        let addr = udp.local_addr().expect("addr");
        let tcp = tokio::net::TcpListener::bind(addr).await.expect("bind tcp");
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
                let mut reply = answer(&buf[..n]);
                if truncate {
                    reply.answers.clear();
                    reply.metadata.truncation = true;
                }
                let _ = udp.send_to(&reply.to_vec().expect("encode"), peer).await;
            }
        });
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = tcp.accept().await {
                let mut len = [0u8; 2];
                if stream.read_exact(&mut len).await.is_err() {
                    continue;
                }
                let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if stream.read_exact(&mut buf).await.is_err() {
                    continue;
                }
                let bytes = answer(&buf).to_vec().expect("encode");
                let _ = stream.write_all(&(bytes.len() as u16).to_be_bytes()).await;
                let _ = stream.write_all(&bytes).await;
            }
        });
        addr
    }

    fn answer(query: &[u8]) -> Message {
        let query = Message::from_vec(query).expect("a query");
        let mut reply = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
        reply.metadata.authoritative = true;
        let q = query.queries[0].clone();
        let name = q.name().to_string();
        if name == "a.test." {
            if q.query_type() == RecordType::A {
                reply.answers.push(Record::from_rdata(
                    q.name().clone(),
                    300,
                    RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
                ));
            }
        } else if name != "txt.test." {
            reply.metadata.response_code = ResponseCode::NXDomain;
        }
        reply.queries.push(q);
        reply
    }

    fn view(ctx: &mut DnsCtx, limit: Duration) -> DnsView<'_> {
        DnsView {
            ctx,
            deadline: Instant::now() + limit,
        }
    }

    fn granted(addrs: &[SocketAddr]) -> DnsCtx {
        granted_with_budget(addrs, QUERIES_PER_MINUTE)
    }

    fn granted_with_budget(addrs: &[SocketAddr], per_minute: u32) -> DnsCtx {
        DnsCtx::new(
            "p",
            DnsGrant {
                servers: addrs.to_vec(),
                system: false,
                per_minute,
            },
        )
    }

    async fn ask(
        v: &mut DnsView<'_>,
        name: &str,
        rtype: &str,
        server: &str,
    ) -> Result<Response, Failure> {
        v.lookup(name.into(), rtype.into(), server.into(), false)
            .await
            .expect("no trap")
    }

    #[tokio::test]
    async fn answers_keep_rcode_flags_sections_and_ttls() {
        let server = responder(false).await;
        let mut ctx = granted(&[server]);
        let mut v = view(&mut ctx, Duration::from_secs(5));
        let ok = ask(&mut v, "a.test", "A", "").await.expect("answer");
        assert_eq!(ok.rcode, Rcode::NoError);
        assert!(ok.authoritative);
        assert_eq!(ok.answer.len(), 1);
        assert_eq!(
            (
                ok.answer[0].name.as_str(),
                ok.answer[0].rtype.as_str(),
                ok.answer[0].ttl,
                ok.answer[0].data.as_str()
            ),
            ("a.test.", "A", 300, "192.0.2.1")
        );
        assert_eq!(ok.server, server.to_string());
        let nodata = ask(&mut v, "txt.test.", "A", &server.to_string())
            .await
            .expect("answer");
        assert_eq!(
            (nodata.rcode, nodata.answer.len()),
            (Rcode::NoError, 0),
            "NODATA"
        );
        let nx = ask(&mut v, "gone.test", "A", "").await.expect("answer");
        assert_eq!(nx.rcode, Rcode::NxDomain);
    }

    #[tokio::test]
    async fn a_truncated_answer_is_fetched_again_over_tcp() {
        let server = responder(true).await;
        let mut ctx = granted(&[server]);
        let mut v = view(&mut ctx, Duration::from_secs(5));
        let ok = ask(&mut v, "a.test", "A", "").await.expect("answer");
        assert_eq!(ok.answer.len(), 1, "the TCP answer has the record");
    }

    #[tokio::test]
    async fn an_ungranted_server_and_bad_arguments_are_refused() {
        let server = responder(false).await;
        let mut ctx = granted(&[server]);
        let mut v = view(&mut ctx, Duration::from_secs(5));
        assert!(matches!(
            ask(&mut v, "a.test", "A", "127.0.0.1:1").await,
            Err(Failure::AccessDenied(_))
        ));
        assert!(matches!(
            ask(&mut v, "a.test", "NOPE", "").await,
            Err(Failure::InvalidArgument(_))
        ));
        assert!(matches!(
            ask(&mut v, "a..test", "A", "").await,
            Err(Failure::InvalidArgument(_))
        ));
        let mut none = granted(&[]);
        let mut v = view(&mut none, Duration::from_secs(5));
        assert!(matches!(
            ask(&mut v, "a.test", "A", "").await,
            Err(Failure::AccessDenied(_))
        ));
    }

    #[tokio::test]
    async fn silence_is_a_timeout_and_a_closed_port_is_unreachable() {
        // A socket that never answers.
        let silent = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let silent_addr = silent.local_addr().expect("addr");
        // A port nobody listens on: the ICMP error surfaces on the connected socket.
        let closed_addr = {
            let s = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
            s.local_addr().expect("addr")
        };
        let mut ctx = granted(&[silent_addr, closed_addr]);
        let mut v = view(&mut ctx, Duration::from_secs(10));
        let t0 = Instant::now();
        let timeout = ask(&mut v, "a.test", "A", &silent_addr.to_string()).await;
        assert!(matches!(timeout, Err(Failure::Timeout(_))), "{timeout:?}");
        assert!(t0.elapsed() < ATTEMPT_TIMEOUT * (ATTEMPTS + 1));
        let refused = ask(&mut v, "a.test", "A", &closed_addr.to_string()).await;
        assert!(
            matches!(refused, Err(Failure::Unreachable(_))),
            "{refused:?}"
        );
        drop(silent);
    }

    #[tokio::test]
    async fn every_question_of_a_batch_to_a_closed_port_is_unreachable() {
        // The ICMP error of the first query fails the next send on the socket: the query
        // being sent then fails like the rest, none is left without an answer.
        let closed_addr = {
            let s = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
            s.local_addr().expect("addr")
        };
        let mut ctx = granted(&[closed_addr]);
        let mut v = view(&mut ctx, Duration::from_secs(10));
        let batch = (0..3).map(|_| question("a.test", "A", "")).collect();
        let results = v.lookup_many(batch).await.expect("no trap");
        assert_eq!(results.len(), 3);
        for r in &results {
            assert!(matches!(r, Err(Failure::Unreachable(_))), "{results:?}");
        }
    }

    #[tokio::test]
    async fn the_query_budget_is_enforced() {
        let server = responder(false).await;
        let mut ctx = granted(&[server]);
        ctx.used = QUERIES_PER_MINUTE;
        let mut v = view(&mut ctx, Duration::from_secs(5));
        assert!(
            matches!(ask(&mut v, "a.test", "A", "").await, Err(Failure::AccessDenied(m)) if m.contains("budget"))
        );
    }

    #[tokio::test]
    async fn the_grant_sets_the_budget() {
        let server = responder(false).await;
        let mut ctx = granted_with_budget(&[server], 2);
        let mut v = view(&mut ctx, Duration::from_secs(5));
        assert!(ask(&mut v, "a.test", "A", "").await.is_ok());
        assert!(ask(&mut v, "a.test", "A", "").await.is_ok());
        let third = ask(&mut v, "a.test", "A", "").await;
        assert!(
            matches!(&third, Err(Failure::AccessDenied(m)) if m.contains("budget of 2")),
            "{third:?}"
        );
    }

    fn question(name: &str, rtype: &str, server: &str) -> dns::Question {
        dns::Question {
            name: name.into(),
            rtype: rtype.into(),
            server: server.into(),
            recurse: false,
        }
    }

    #[tokio::test]
    async fn a_batch_answers_in_order_each_question_within_the_grant_and_the_budget() {
        let server = responder(false).await;
        let mut ctx = granted_with_budget(&[server], 3);
        let mut v = view(&mut ctx, Duration::from_secs(5));
        let results = v
            .lookup_many(vec![
                question("a.test", "A", ""),
                question("a.test", "A", "127.0.0.1:1"),
                question("gone.test", "A", ""),
                question("a.test", "NOPE", ""),
                question("txt.test", "A", &server.to_string()),
                question("a.test", "A", ""),
            ])
            .await
            .expect("no trap");
        let shape: Vec<String> = results
            .iter()
            .map(|r| match r {
                Ok(r) => format!("{:?} {}", r.rcode, r.answer.len()),
                Err(Failure::AccessDenied(m)) if m.contains("budget") => "budget".into(),
                Err(Failure::AccessDenied(_)) => "denied".into(),
                Err(f) => format!("{f:?}").split('(').next().unwrap_or("").into(),
            })
            .collect();
        assert_eq!(
            shape,
            [
                "Rcode::NoError 1",
                "denied",
                "Rcode::NxDomain 0",
                "Failure::InvalidArgument",
                "Rcode::NoError 0",
                "budget"
            ]
        );
    }

    #[tokio::test]
    async fn a_batch_is_asked_concurrently_never_more_than_the_cap_at_once() {
        // Holds every query until none came for a while, then answers all it holds, and
        // keeps the most it ever held: one query at a time would show 1.
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = udp.local_addr().expect("addr");
        let most = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = most.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            let mut buf = vec![0u8; 4096];
            loop {
                let quiet = tokio::time::sleep(Duration::from_millis(100));
                tokio::select! {
                    got = udp.recv_from(&mut buf) => {
                        let Ok((n, peer)) = got else { return };
                        held.push((answer(&buf[..n]), peer));
                        seen.fetch_max(held.len(), std::sync::atomic::Ordering::SeqCst);
                    }
                    _ = quiet => for (reply, peer) in held.drain(..) {
                        let _ = udp.send_to(&reply.to_vec().expect("encode"), peer).await;
                    },
                }
            }
        });
        let mut ctx = granted(&[addr]);
        let mut v = view(&mut ctx, Duration::from_secs(30));
        let asked = 2 * IN_FLIGHT + 3;
        let results = v
            .lookup_many((0..asked).map(|_| question("a.test", "A", "")).collect())
            .await
            .expect("no trap");
        assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
        let most = most.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            most > 1 && most <= IN_FLIGHT,
            "{most} queries were in flight at once"
        );
    }

    /// What a [`recording_responder`] saw: each source address it was asked from (each a
    /// socket the host opened), and each query it dropped.
    #[derive(Default, Clone)]
    struct Seen {
        peers: Arc<Mutex<HashSet<SocketAddr>>>,
        dropped: Arc<Mutex<HashSet<Vec<u8>>>>,
    }

    /// A responder that answers at once, or with `forgetful` only when a query comes the
    /// second time, and keeps what it saw.
    async fn recording_responder(forgetful: bool) -> (SocketAddr, Seen) {
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = udp.local_addr().expect("addr");
        let seen = Seen::default();
        let record = seen.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
                record.peers.lock().expect("peers").insert(peer);
                if forgetful
                    && record
                        .dropped
                        .lock()
                        .expect("dropped")
                        .insert(buf[..n].to_vec())
                {
                    continue;
                }
                let reply = answer(&buf[..n]).to_vec().expect("encode");
                let _ = udp.send_to(&reply, peer).await;
            }
        });
        (addr, seen)
    }

    #[tokio::test]
    async fn a_servers_queries_share_one_socket_kept_between_calls_until_it_served_its_share() {
        let (addr, seen) = recording_responder(false).await;
        let mut ctx = granted(&[addr]);
        let mut asked = 0;
        for _ in 0..3 {
            let mut v = view(&mut ctx, Duration::from_secs(30));
            let batch = (0..2 * IN_FLIGHT).map(|_| question("a.test", "A", ""));
            let results = v.lookup_many(batch.collect()).await.expect("no trap");
            assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
            ask(&mut v, "a.test", "A", "").await.expect("an answer");
            asked += 2 * IN_FLIGHT + 1;
        }
        let opened = seen.peers.lock().expect("peers").len();
        assert_eq!(
            opened,
            asked.div_ceil(SOCKET_USES as usize),
            "sockets for {asked} queries in three batches and three lookups"
        );
    }

    #[tokio::test]
    async fn a_lost_query_is_sent_again() {
        let (addr, seen) = recording_responder(true).await;
        let mut ctx = granted(&[addr]);
        let mut v = view(&mut ctx, Duration::from_secs(10));
        let batch = vec![
            question("a.test", "A", ""),
            question("gone.test", "A", ""),
            question("txt.test", "A", ""),
        ];
        let results = v.lookup_many(batch).await.expect("no trap");
        let rcodes: Vec<_> = results
            .iter()
            .map(|r| r.as_ref().map(|r| r.rcode))
            .collect();
        assert_eq!(
            rcodes,
            [Ok(Rcode::NoError), Ok(Rcode::NxDomain), Ok(Rcode::NoError)]
        );
        assert_eq!(seen.dropped.lock().expect("dropped").len(), 3);
    }

    #[tokio::test]
    async fn an_answer_with_the_right_id_to_another_question_is_not_taken() {
        // Sends, before each true answer, a forged one: the query's id, another name's
        // question and an address of the forger's.
        let udp = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let addr = udp.local_addr().expect("addr");
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
                let query = Message::from_vec(&buf[..n]).expect("a query");
                let mut forged =
                    Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
                let evil = Name::from_utf8("evil.test.").expect("name");
                forged
                    .queries
                    .push(Query::query(evil.clone(), RecordType::A));
                let at = RData::A(A(Ipv4Addr::new(203, 0, 113, 66)));
                forged
                    .answers
                    .push(Record::from_rdata(query.queries[0].name().clone(), 300, at));
                let _ = udp.send_to(&forged.to_vec().expect("encode"), peer).await;
                let reply = answer(&buf[..n]).to_vec().expect("encode");
                let _ = udp.send_to(&reply, peer).await;
            }
        });
        let mut ctx = granted(&[addr]);
        let mut v = view(&mut ctx, Duration::from_secs(10));
        let ok = ask(&mut v, "a.test", "A", "").await.expect("an answer");
        let data: Vec<&str> = ok.answer.iter().map(|r| r.data.as_str()).collect();
        assert_eq!(data, ["192.0.2.1"]);
    }

    #[tokio::test]
    async fn a_socket_serves_a_bounded_number_of_queries() {
        let (addr, seen) = recording_responder(false).await;
        let mut ctx = granted_with_budget(&[addr], SOCKET_USES + 1);
        let mut v = view(&mut ctx, Duration::from_secs(30));
        for _ in 0..=SOCKET_USES {
            ask(&mut v, "a.test", "A", "").await.expect("an answer");
        }
        let opened = seen.peers.lock().expect("peers").len();
        assert_eq!(opened, 2, "one after another, {} queries", SOCKET_USES + 1);
    }

    #[tokio::test]
    async fn a_batch_over_the_limit_traps() {
        let mut ctx = granted(&[]);
        let mut v = view(&mut ctx, Duration::from_secs(5));
        let too_many = (0..=MAX_BATCH)
            .map(|_| question("a.test", "A", ""))
            .collect();
        let trap = v.lookup_many(too_many).await.expect_err("a trap");
        assert!(trap.to_string().contains("at most 256"), "{trap}");
    }
}
