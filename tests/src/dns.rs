//! A real authoritative DNS server on loopback for the alias-monitor tests and benchmark.
//!
//! hickory-server answers on `127.0.0.1:PORT` over UDP and TCP (one OS-picked port for both).
//! The zones are hickory zone-file text, but they are served by [`ZoneTable`], a small
//! `RequestHandler` of our own rather than hickory's in-memory zone handler: that one refuses
//! to load a CNAME beside other data (so no CNAME at an apex), and the broken zones are the
//! point of this fixture.
//!
//! # How it answers (what the tests may rely on)
//! - A name inside a served zone gets AA set. The zone is the longest served origin that
//!   contains the name; zones are not delegated to each other (NS records below an apex are
//!   plain data, no referrals).
//! - The RRset of the asked type → NOERROR with that RRset. `ANY` → every RRset at the name.
//! - No RRset of the type but a CNAME at the name → NOERROR with the CNAME alone. **CNAMEs are
//!   never chased**, in or out of zone: `chain1 A` answers `chain1 CNAME chain2.…` and nothing
//!   else, loops need no special case, and the client follows each step itself (as it must
//!   with a resolver that does not chase either).
//! - The name exists (or is an empty non-terminal such as `_tcp.aliased-targets.test.`)
//!   without the type or a CNAME → NODATA: NOERROR, empty answer, the zone's SOA in authority.
//! - The name does not exist → NXDOMAIN with the zone's SOA in authority, unless a wildcard
//!   `*.<closest encloser>` exists (RFC 4592): then the wildcard's records are answered with
//!   the asked name as owner (same rules: type, CNAME, NODATA).
//! - Negative answers carry the SOA with TTL min(SOA TTL, SOA MINIMUM) (RFC 2308 §3).
//! - A name outside every zone → REFUSED, AA clear, no records.
//! - Positive answers are minimal: no NS in authority, nothing in additional.
//! - RA is never set; RD is copied; EDNS queries get an EDNS answer (UDP size as asked,
//!   at least 512); oversized UDP answers are truncated (TC) and complete over TCP.
//!
//! # Stop and resume
//! [`DnsServer::stop`] closes the serving sockets: a UDP query gets an ICMP port-unreachable
//! (a connected UDP client sees "connection refused"; an unconnected one sees no answer) and
//! a TCP connect is refused. The port stays reserved meanwhile by two idle sockets on the same
//! address: a UDP one connected to itself (the kernel delivers it only datagrams from its own
//! address, so queries find no receiver) and a bound, non-listening TCP one. The UDP port has
//! no gap; the TCP port is free for the instant between closing the listener and binding the
//! reservation. [`DnsServer::resume`] serves the same address again.

use std::collections::BTreeMap;
use std::io;
use std::iter;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordType};
use hickory_proto::serialize::txt::{ParseError, Parser};
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::sync::mpsc as tokio_mpsc;

/// How long an idle TCP connection stays open before the server closes it.
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Responses buffered per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 32;
/// Pending TCP connections the listener queues.
const TCP_BACKLOG: i32 = 128;
/// Tries to find a port free for both UDP and TCP before giving up.
const BIND_ATTEMPTS: usize = 20;

/// What can go wrong setting up or changing the fixture (bad zone text or record, sockets).
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// Zone text (or a record given to `set`) the zone-file parser rejects.
    #[error("zone `{origin}`: {source}")]
    ZoneText {
        origin: String,
        #[source]
        source: Box<ParseError>,
    },
    /// A zone without an SOA at its apex (negative answers need one).
    #[error("zone `{0}` has no SOA at its apex")]
    NoSoa(String),
    /// A record in a zone's text whose owner is outside that zone.
    #[error("`{name}` is not inside zone `{origin}`")]
    OutsideZone { name: String, origin: String },
    /// `set` on a name no served zone contains.
    #[error("`{0}` is not inside any served zone")]
    NoZone(String),
    /// A name that is not a domain name.
    #[error("name `{name}`: {reason}")]
    BadName { name: String, reason: String },
    /// A record type hickory does not know.
    #[error("unknown record type `{0}`")]
    BadType(String),
    /// Record data that did not give exactly one record.
    #[error("record `{0}` did not parse to exactly one record")]
    BadRecord(String),
    /// Binding, reserving or handing over the sockets failed.
    #[error("sockets on {addr}: {source}")]
    Socket {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// No loopback port was free for UDP and TCP at once.
    #[error("no port on 127.0.0.1 was free for both UDP and TCP after {BIND_ATTEMPTS} tries")]
    NoPort,
    /// The runtime or its thread could not be started.
    #[error("cannot start the server thread: {0}")]
    Thread(#[source] io::Error),
    /// The server thread ended (it panicked) and can no longer be told anything.
    #[error("the server thread is gone")]
    ThreadGone,
}

// ---------------------------------------------------------------------------------------------
// The record table and the answering rules.
// ---------------------------------------------------------------------------------------------

/// One served zone: its origin and every RRset, by owner name and type, loaded as written
/// (nothing refused, nothing "fixed").
#[derive(Debug)]
struct Zone {
    origin: Name,
    names: BTreeMap<LowerName, BTreeMap<RecordType, Vec<Record>>>,
}

/// What the server sends back for one question.
#[derive(Debug)]
struct Reply {
    rcode: ResponseCode,
    authoritative: bool,
    answers: Vec<Record>,
    authorities: Vec<Record>,
}

impl Zone {
    /// Parses zone-file text for `origin` (relative names are relative to it).
    fn parse(origin: &str, text: &str) -> Result<Self, FixtureError> {
        let origin_name = parse_name(origin)?;
        let (origin_name, rrsets) =
            Parser::new(text, None, Some(origin_name))
                .parse()
                .map_err(|source| FixtureError::ZoneText {
                    origin: origin.to_string(),
                    source: Box::new(source),
                })?;
        let mut zone = Self {
            origin: origin_name,
            names: BTreeMap::new(),
        };
        for rrset in rrsets.into_values() {
            for record in rrset.records_without_rrsigs() {
                zone.insert(record.clone())?;
            }
        }
        if zone.soa().is_none() {
            return Err(FixtureError::NoSoa(origin.to_string()));
        }
        Ok(zone)
    }

    /// Adds one record to its RRset.
    fn insert(&mut self, record: Record) -> Result<(), FixtureError> {
        if !self.origin.zone_of(&record.name) {
            return Err(FixtureError::OutsideZone {
                name: record.name.to_string(),
                origin: self.origin.to_string(),
            });
        }
        self.names
            .entry(LowerName::new(&record.name))
            .or_default()
            .entry(record.record_type())
            .or_default()
            .push(record);
        Ok(())
    }

    /// Replaces the RRset (`owner`, `rtype`); an empty `records` deletes it.
    fn replace(&mut self, owner: &Name, rtype: RecordType, records: Vec<Record>) {
        let key = LowerName::new(owner);
        if records.is_empty() {
            if let Some(types) = self.names.get_mut(&key) {
                types.remove(&rtype);
                if types.is_empty() {
                    self.names.remove(&key);
                }
            }
        } else {
            self.names.entry(key).or_default().insert(rtype, records);
        }
    }

    /// The SOA record at the apex.
    fn soa(&self) -> Option<&Record> {
        self.names
            .get(&LowerName::new(&self.origin))?
            .get(&RecordType::SOA)?
            .first()
    }

    /// The SOA for a negative answer: TTL is min(SOA TTL, MINIMUM) (RFC 2308 §3).
    fn negative_soa(&self) -> Vec<Record> {
        self.soa()
            .map(|soa| {
                let mut soa = soa.clone();
                if let RData::SOA(data) = &soa.data {
                    soa.ttl = soa.ttl.min(data.minimum);
                }
                soa
            })
            .into_iter()
            .collect()
    }

    /// True if some name below `name` holds records (so `name` is at least an empty
    /// non-terminal).
    fn has_descendants(&self, name: &LowerName) -> bool {
        self.names.keys().any(|k| k != name && name.zone_of(k))
    }

    /// The RRsets of the wildcard that covers the missing `qname` (RFC 4592: `*` under the
    /// closest existing ancestor), if there is one.
    fn wildcard_for(&self, qname: &LowerName) -> Option<&BTreeMap<RecordType, Vec<Record>>> {
        let origin = LowerName::new(&self.origin);
        let mut ancestor = qname.base_name();
        while origin.zone_of(&ancestor) {
            if self.names.contains_key(&ancestor) || self.has_descendants(&ancestor) {
                let wildcard = LowerName::new(&ancestor.prepend_label("*").ok()?);
                return self.names.get(&wildcard);
            }
            ancestor = ancestor.base_name();
        }
        None
    }

    /// The answer for `qname`/`qtype`, `qname` being inside this zone.
    fn answer(&self, qname: &Name, qtype: RecordType) -> Reply {
        let key = LowerName::new(qname);
        if let Some(rrsets) = self.names.get(&key) {
            return self.answer_from(rrsets, qtype, None);
        }
        if self.has_descendants(&key) {
            return self.negative(ResponseCode::NoError);
        }
        match self.wildcard_for(&key) {
            Some(rrsets) => self.answer_from(rrsets, qtype, Some(qname)),
            None => self.negative(ResponseCode::NXDomain),
        }
    }

    /// The answer from the RRsets at one name; `owner` renames them (wildcard synthesis).
    fn answer_from(
        &self,
        rrsets: &BTreeMap<RecordType, Vec<Record>>,
        qtype: RecordType,
        owner: Option<&Name>,
    ) -> Reply {
        let picked: Vec<&Record> = if qtype == RecordType::ANY {
            rrsets.values().flatten().collect()
        } else if let Some(rrset) = rrsets.get(&qtype) {
            rrset.iter().collect()
        } else if let Some(cname) = rrsets.get(&RecordType::CNAME) {
            cname.iter().collect()
        } else {
            return self.negative(ResponseCode::NoError);
        };
        let answers = picked
            .into_iter()
            .map(|record| {
                let mut record = record.clone();
                if let Some(owner) = owner {
                    record.name = owner.clone();
                }
                record
            })
            .collect();
        Reply {
            rcode: ResponseCode::NoError,
            authoritative: true,
            answers,
            authorities: Vec::new(),
        }
    }

    /// NXDOMAIN or NODATA (NOERROR): no answer, the SOA in authority.
    fn negative(&self, rcode: ResponseCode) -> Reply {
        Reply {
            rcode,
            authoritative: true,
            answers: Vec::new(),
            authorities: self.negative_soa(),
        }
    }
}

/// Every served zone; shared between the server (reads) and [`DnsServer::set`] (writes).
/// The flag makes names outside every zone NXDOMAIN (AA clear) instead of REFUSED: a
/// resolver with nowhere to ask (see [`DnsServer::start_nxdomain_for_all`]).
#[derive(Debug, Default)]
struct Zones(Vec<Zone>, bool);

impl Zones {
    /// The zone with the longest origin containing `name`.
    fn zone_for(&self, name: &Name) -> Option<&Zone> {
        self.0
            .iter()
            .filter(|z| z.origin.zone_of(name))
            .max_by_key(|z| z.origin.num_labels())
    }

    fn zone_for_mut(&mut self, name: &Name) -> Option<&mut Zone> {
        self.0
            .iter_mut()
            .filter(|z| z.origin.zone_of(name))
            .max_by_key(|z| z.origin.num_labels())
    }

    /// The answer for one question; REFUSED outside every zone or for a class other than IN
    /// (NXDOMAIN outside every zone when the flag is set).
    fn answer(&self, qname: &Name, qtype: RecordType, qclass: DNSClass) -> Reply {
        match self.zone_for(qname) {
            Some(zone) if qclass == DNSClass::IN => zone.answer(qname, qtype),
            _ => Reply {
                rcode: if self.1 {
                    ResponseCode::NXDomain
                } else {
                    ResponseCode::Refused
                },
                authoritative: false,
                answers: Vec::new(),
                authorities: Vec::new(),
            },
        }
    }
}

/// A name from presentation text (UTF-8 is turned into its ACE form), always absolute.
fn parse_name(text: &str) -> Result<Name, FixtureError> {
    let mut name = Name::from_utf8(text).map_err(|e| FixtureError::BadName {
        name: text.to_string(),
        reason: e.to_string(),
    })?;
    name.set_fqdn(true);
    Ok(name)
}

/// One record from presentation-format rdata, read by the zone-file parser so relative names
/// in `rdata` are relative to `origin`, as in the zone text.
fn parse_record(
    origin: &Name,
    owner: &Name,
    rtype: RecordType,
    ttl: u32,
    rdata: &str,
) -> Result<Record, FixtureError> {
    let line = format!("{} {ttl} IN {rtype} {rdata}\n", owner.to_ascii());
    let (_, rrsets) = Parser::new(line.as_str(), None, Some(origin.clone()))
        .parse()
        .map_err(|source| FixtureError::ZoneText {
            origin: origin.to_string(),
            source: Box::new(source),
        })?;
    let mut records = rrsets
        .into_values()
        .flat_map(|rrset| rrset.records_without_rrsigs().cloned().collect::<Vec<_>>());
    match (records.next(), records.next()) {
        (Some(record), None) => Ok(record),
        _ => Err(FixtureError::BadRecord(line.trim_end().to_string())),
    }
}

// ---------------------------------------------------------------------------------------------
// The request handler hickory-server calls.
// ---------------------------------------------------------------------------------------------

/// Answers queries from the shared [`Zones`] (hickory-server does the sockets and framing).
#[derive(Clone)]
struct ZoneTable {
    zones: Arc<RwLock<Zones>>,
}

impl ZoneTable {
    fn reply(&self, request: &Request) -> Reply {
        let refuse = |rcode| Reply {
            rcode,
            authoritative: false,
            answers: Vec::new(),
            authorities: Vec::new(),
        };
        if request.metadata.op_code != OpCode::Query {
            return refuse(ResponseCode::NotImp);
        }
        let [query] = request.queries.queries() else {
            return refuse(ResponseCode::FormErr);
        };
        let zones = self.zones.read().unwrap_or_else(PoisonError::into_inner);
        zones.answer(
            query.original().name(),
            query.query_type(),
            query.query_class(),
        )
    }
}

#[async_trait::async_trait]
impl RequestHandler for ZoneTable {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let reply = self.reply(request);
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = reply.authoritative;
        metadata.response_code = reply.rcode;

        let edns = request.edns.as_ref().map(|asked| {
            let mut edns = Edns::new();
            edns.set_max_payload(asked.max_payload().max(512));
            edns.set_version(0);
            edns
        });
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(edns) = &edns {
            builder.edns(edns);
        }
        let response = builder.build(
            metadata,
            reply.answers.iter(),
            reply.authorities.iter(),
            iter::empty(),
            iter::empty(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(error) => {
                tracing::warn!(%error, "dns fixture: could not send a response");
                let mut metadata = metadata;
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sockets: serving, and holding the port while stopped.
// ---------------------------------------------------------------------------------------------

fn socket_error(addr: SocketAddr) -> impl FnOnce(io::Error) -> FixtureError {
    move |source| FixtureError::Socket { addr, source }
}

/// A UDP and a TCP socket bound to one fresh loopback port, the TCP one listening.
fn bind_fresh() -> Result<(Socket, Socket, SocketAddr), FixtureError> {
    for _ in 0..BIND_ATTEMPTS {
        let any: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
        // Bound before SO_REUSEADDR is set, so the kernel picks a port nobody else holds (a
        // port-0 bind with the option may share a port with another such socket).
        let udp = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
            .map_err(socket_error(any))?;
        udp.bind(&any.into()).map_err(socket_error(any))?;
        let addr = udp
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .ok_or(FixtureError::NoPort)?;
        // From now on the reservation and the resumed socket may share the address.
        udp.set_reuse_address(true).map_err(socket_error(addr))?;
        match tcp_socket(addr).and_then(|tcp| tcp.listen(TCP_BACKLOG).map(|()| tcp)) {
            Ok(tcp) => return Ok((udp, tcp, addr)),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
            Err(e) => return Err(socket_error(addr)(e)),
        }
    }
    Err(FixtureError::NoPort)
}

/// A UDP socket on `addr` that may share it with the reservation.
fn udp_socket(addr: SocketAddr) -> io::Result<Socket> {
    let udp = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    udp.set_reuse_address(true)?;
    udp.bind(&addr.into())?;
    Ok(udp)
}

/// A TCP socket bound to `addr`, not listening yet (SO_REUSEADDR so the server's own
/// TIME_WAIT connections do not block the port).
fn tcp_socket(addr: SocketAddr) -> io::Result<Socket> {
    let tcp = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    tcp.set_reuse_address(true)?;
    tcp.bind(&addr.into())?;
    Ok(tcp)
}

/// Holds the address while stopped, receiving nothing: a UDP socket connected to itself
/// (datagrams from anyone else find no receiver, so they are answered with ICMP
/// port-unreachable) and a bound TCP socket that does not listen (connects are refused).
#[derive(Default)]
struct Reservation {
    udp: Option<Socket>,
    tcp: Option<Socket>,
}

/// A hickory server answering from `table` on the given sockets.
fn serve(table: &ZoneTable, udp: Socket, tcp: Socket) -> io::Result<Server<ZoneTable>> {
    udp.set_nonblocking(true)?;
    tcp.set_nonblocking(true)?;
    let udp = tokio::net::UdpSocket::from_std(udp.into())?;
    let tcp = tokio::net::TcpListener::from_std(tcp.into())?;
    let mut server = Server::new(table.clone());
    server.register_socket(udp);
    server.register_listener(tcp, TCP_IDLE, TCP_RESPONSE_BUFFER);
    Ok(server)
}

/// Whether the server answers, and what it holds.
enum Listening {
    Serving(Server<ZoneTable>),
    Stopped(Reservation),
}

/// Closes the serving sockets, holding the address with a [`Reservation`].
async fn stop(mut server: Server<ZoneTable>, addr: SocketAddr) -> Reservation {
    // UDP first, while the serving socket still holds the port: no gap at all.
    let udp = udp_socket(addr)
        .and_then(|udp| udp.connect(&addr.into()).map(|()| udp))
        .inspect_err(|e| tracing::warn!(%addr, "dns fixture: cannot reserve the UDP port: {e}"))
        .ok();
    if let Err(error) = server.shutdown_gracefully().await {
        tracing::warn!(%error, "dns fixture: server stopped with an error");
    }
    // A listening socket and a bound one cannot share the port, so TCP waits for the close.
    let tcp = tcp_socket(addr)
        .inspect_err(|e| tracing::warn!(%addr, "dns fixture: cannot reserve the TCP port: {e}"))
        .ok();
    Reservation { udp, tcp }
}

/// Serves `addr` again, taking the port over from the reservation.
fn resume(
    table: &ZoneTable,
    addr: SocketAddr,
    reservation: &mut Reservation,
) -> io::Result<Server<ZoneTable>> {
    let udp = udp_socket(addr)?;
    let tcp = match reservation.tcp.take() {
        Some(tcp) => tcp,
        None => tcp_socket(addr)?,
    };
    if let Err(e) = tcp.listen(TCP_BACKLOG) {
        reservation.tcp = Some(tcp);
        return Err(e);
    }
    let server = serve(table, udp, tcp)?;
    reservation.udp = None;
    Ok(server)
}

// ---------------------------------------------------------------------------------------------
// The server thread and its control channel.
// ---------------------------------------------------------------------------------------------

type Ack = mpsc::Sender<Result<(), FixtureError>>;

enum Command {
    Stop(Ack),
    Resume(Ack),
}

/// The server thread's body: serve, obey commands, shut down when the command channel closes.
async fn control(
    table: ZoneTable,
    mut commands: tokio_mpsc::UnboundedReceiver<Command>,
    ready: mpsc::Sender<Result<SocketAddr, FixtureError>>,
) {
    let started = bind_fresh().and_then(|(udp, tcp, addr)| {
        serve(&table, udp, tcp)
            .map(|server| (server, addr))
            .map_err(socket_error(addr))
    });
    let (server, addr) = match started {
        Ok(started) => started,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(addr));
    let mut state = Listening::Serving(server);
    while let Some(command) = commands.recv().await {
        state = match (state, command) {
            (Listening::Serving(server), Command::Stop(ack)) => {
                let reservation = stop(server, addr).await;
                let _ = ack.send(Ok(()));
                Listening::Stopped(reservation)
            }
            (Listening::Stopped(mut reservation), Command::Resume(ack)) => {
                match resume(&table, addr, &mut reservation) {
                    Ok(server) => {
                        let _ = ack.send(Ok(()));
                        Listening::Serving(server)
                    }
                    Err(e) => {
                        let _ = ack.send(Err(socket_error(addr)(e)));
                        Listening::Stopped(reservation)
                    }
                }
            }
            // Stopping a stopped server or resuming a serving one changes nothing.
            (state, Command::Stop(ack) | Command::Resume(ack)) => {
                let _ = ack.send(Ok(()));
                state
            }
        };
    }
    if let Listening::Serving(mut server) = state {
        let _ = server.shutdown_gracefully().await;
    }
}

/// A running loopback DNS server (see the module doc for how it answers). Usable from plain
/// `#[test]` functions: it runs its own tokio runtime on a thread. Dropping it stops it.
pub struct DnsServer {
    addr: SocketAddr,
    zones: Arc<RwLock<Zones>>,
    commands: Option<tokio_mpsc::UnboundedSender<Command>>,
    thread: Option<JoinHandle<()>>,
}

impl DnsServer {
    /// Serves the zones given as (origin, zone-file text). Panics on a zone that does not
    /// parse or on socket trouble (a fixture failing is a test failing).
    pub fn start<O: AsRef<str>, T: AsRef<str>>(zones: &[(O, T)]) -> DnsServer {
        Self::try_start(zones).unwrap_or_else(|e| panic!("dns fixture: {e}"))
    }

    /// [`DnsServer::start`], returning the error instead of panicking.
    pub fn try_start<O: AsRef<str>, T: AsRef<str>>(
        zones: &[(O, T)],
    ) -> Result<DnsServer, FixtureError> {
        let zones = zones
            .iter()
            .map(|(origin, text)| Zone::parse(origin.as_ref(), text.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::serve(Zones(zones, false))
    }

    /// A resolver that has nowhere to ask (no internet): NXDOMAIN with AA clear and no SOA
    /// for every name, the root included — what makes every name look deleted.
    pub fn start_nxdomain_for_all() -> DnsServer {
        Self::serve(Zones(Vec::new(), true)).unwrap_or_else(|e| panic!("dns fixture: {e}"))
    }

    fn serve(zones: Zones) -> Result<DnsServer, FixtureError> {
        let zones = Arc::new(RwLock::new(zones));
        let table = ZoneTable {
            zones: zones.clone(),
        };
        let (commands, receiver) = tokio_mpsc::unbounded_channel();
        let (ready, started) = mpsc::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(FixtureError::Thread)?;
        let thread = std::thread::Builder::new()
            .name("dns-fixture".into())
            .spawn(move || runtime.block_on(control(table, receiver, ready)))
            .map_err(FixtureError::Thread)?;
        let addr = started.recv().map_err(|_| FixtureError::ThreadGone)??;
        Ok(DnsServer {
            addr,
            zones,
            commands: Some(commands),
            thread: Some(thread),
        })
    }

    /// "127.0.0.1:PORT", the address to grant and query (UDP and TCP).
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// The address as a socket address.
    pub fn socket_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the RRset (`name`, `rtype`) in the zone that holds `name`; an empty `rdata`
    /// deletes it. `name` is absolute (trailing dot optional, UTF-8 allowed); `rdata` is in
    /// presentation format, one record per item, names in it relative to the zone unless they
    /// end in a dot. Takes effect for the next query. Panics on bad input.
    pub fn set(&self, name: &str, rtype: &str, ttl: u32, rdata: &[&str]) {
        if let Err(e) = self.try_set(name, rtype, ttl, rdata) {
            panic!("dns fixture: set({name}, {rtype}): {e}");
        }
    }

    /// [`DnsServer::set`], returning the error instead of panicking.
    pub fn try_set(
        &self,
        name: &str,
        rtype: &str,
        ttl: u32,
        rdata: &[&str],
    ) -> Result<(), FixtureError> {
        let owner = parse_name(name)?;
        let rtype = RecordType::from_str(&rtype.to_ascii_uppercase())
            .map_err(|_| FixtureError::BadType(rtype.to_string()))?;
        let mut zones = self.zones.write().unwrap_or_else(PoisonError::into_inner);
        let zone = zones
            .zone_for_mut(&owner)
            .ok_or_else(|| FixtureError::NoZone(name.to_string()))?;
        let records = rdata
            .iter()
            .map(|text| parse_record(&zone.origin, &owner, rtype, ttl, text))
            .collect::<Result<Vec<_>, _>>()?;
        zone.replace(&owner, rtype, records);
        Ok(())
    }

    /// Stops answering: UDP queries get port-unreachable ("connection refused" on a connected
    /// socket), TCP connects are refused; the port stays reserved (see the module doc).
    /// Returns once the sockets are closed. Stopping a stopped server does nothing.
    pub fn stop(&self) {
        self.command(Command::Stop);
    }

    /// Serves again on the same address. Returns once the server answers. Panics if the port
    /// was taken meanwhile.
    pub fn resume(&self) {
        self.command(Command::Resume);
    }

    fn command(&self, make: fn(Ack) -> Command) {
        let (ack, done) = mpsc::channel();
        let sent = self
            .commands
            .as_ref()
            .is_some_and(|commands| commands.send(make(ack)).is_ok());
        let result = if sent {
            done.recv().unwrap_or(Err(FixtureError::ThreadGone))
        } else {
            Err(FixtureError::ThreadGone)
        };
        if let Err(e) = result {
            panic!("dns fixture on {}: {e}", self.addr);
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        // Closing the command channel ends the control loop, which shuts the server down.
        self.commands = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The zones the tests and the benchmark serve.
// ---------------------------------------------------------------------------------------------

/// Every zone starts like this: `$TTL 300`, an SOA naming `mname`, and (unless the zone needs
/// its own) NS records pointing at example.test's servers.
fn zone_head(origin: &str, mname: &str) -> String {
    format!(
        "$ORIGIN {origin}\n$TTL 300\n\
         @ IN SOA {mname} hostmaster.{origin} 2024010101 3600 600 86400 300\n"
    )
}

/// NS records at the apex pointing at example.test's name servers (healthy, not aliases).
const SHARED_NS: &str = "@ IN NS ns1.example.test.\n@ IN NS ns2.example.test.\n";

/// The test zones, as (origin, zone text): each problem the alias-monitor finds, and healthy
/// names beside them. See the comments in the zone text for what each name is.
pub fn test_zones() -> Vec<(&'static str, String)> {
    let example = zone_head("example.test.", "ns1.example.test.")
        + SHARED_NS
        + r#"
ns1           IN A     127.0.0.1
ns2           IN A     127.0.0.1
@             IN A     192.0.2.1
@             IN MX    10 mail.example.test.
mail          IN A     192.0.2.25
; a healthy alias
www           IN CNAME app.hosted.test.
; a CNAME beside other data (RFC 1034 §3.6.2, RFC 2181 §10.1)
both          IN CNAME app.hosted.test.
both          IN TXT   "x"
; the target is NXDOMAIN
dangling      IN CNAME nothing.hosted.test.
; the target exists but has no addresses
noaddr        IN CNAME empty.hosted.test.
; a claimable hosted suffix whose target is NXDOMAIN (takeover risk)
blog          IN CNAME roost-gone.github.io.
; a chain of five CNAMEs
chain1        IN CNAME chain2
chain2        IN CNAME chain3
chain3        IN CNAME chain4
chain4        IN CNAME chain5
chain5        IN CNAME app.hosted.test.
; a loop
loop-a        IN CNAME loop-b.example.test.
loop-b        IN CNAME loop-a.example.test.
; a wildcard (wild.example.test. itself is an empty non-terminal)
*.wild        IN A     192.0.2.7
; the IDN bücher.example.test.
xn--bcher-kva IN A     192.0.2.8
"#;
    let hosted = zone_head("hosted.test.", "ns1.example.test.")
        + SHARED_NS
        + r#"
app           IN A     192.0.2.80
app           IN AAAA  2001:db8::80
empty         IN TXT   "no addresses"
"#;
    let github =
        zone_head("github.io.", "ns1.example.test.") + SHARED_NS + "taken IN A 192.0.2.90\n";
    let apex_cname = zone_head("apex-cname.test.", "ns1.example.test.")
        + SHARED_NS
        + "; a CNAME at the apex, beside SOA and NS\n@ IN CNAME app.hosted.test.\n";
    let aliased_targets = zone_head("aliased-targets.test.", "ns-alias.aliased-targets.test.")
        + r#"
; SOA MNAME, NS, MX and SRV targets that are aliases (RFC 2181 §10.3, RFC 2782)
@             IN NS    ns-alias.aliased-targets.test.
ns-alias      IN CNAME ns1.example.test.
@             IN MX    10 mail-alias.aliased-targets.test.
mail-alias    IN CNAME mail.example.test.
_sip._tcp     IN SRV   10 5 5060 sip-alias.aliased-targets.test.
sip-alias     IN CNAME app.hosted.test.
"#;
    let flat = zone_head("flat.test.", "ns1.example.test.")
        + SHARED_NS
        + "; a correctly flattened apex of app.hosted.test.\n\
           @ IN A 192.0.2.80\n@ IN AAAA 2001:db8::80\n";
    let drift = zone_head("drift.test.", "ns1.example.test.")
        + SHARED_NS
        + "; a flattened apex that drifted from app.hosted.test.\n@ IN A 192.0.2.99\n";
    vec![
        ("example.test.", example),
        ("hosted.test.", hosted),
        ("github.io.", github),
        ("apex-cname.test.", apex_cname),
        ("aliased-targets.test.", aliased_targets),
        ("flat.test.", flat),
        ("drift.test.", drift),
    ]
}

/// The benchmark zone `bench.test.`: `name0` … `name{n-1}`, each a CNAME to
/// `app.hosted.test.` (serve it beside [`test_zones`] so the targets resolve).
pub fn bench_zone(n: usize) -> (&'static str, String) {
    let mut text = zone_head("bench.test.", "ns1.example.test.") + SHARED_NS;
    for i in 0..n {
        text.push_str(&format!("name{i} IN CNAME app.hosted.test.\n"));
    }
    ("bench.test.", text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, MessageType, Query};
    use std::io::{Read, Write};
    use std::net::{TcpStream, UdpSocket};

    const WAIT: Duration = Duration::from_secs(5);

    fn question(name: &str, rtype: RecordType) -> Message {
        let mut message = Message::new(0x2a2a, MessageType::Query, OpCode::Query);
        message.add_query(Query::query(parse_name(name).expect("a valid name"), rtype));
        message
    }

    fn decode(bytes: &[u8]) -> Message {
        let answer = Message::from_vec(bytes).expect("a DNS message");
        assert_eq!(answer.metadata.id, 0x2a2a);
        assert_eq!(answer.metadata.message_type, MessageType::Response);
        answer
    }

    /// Asks over UDP from a connected socket (as the host's dns capability does).
    fn ask_message(server: &DnsServer, message: &Message) -> io::Result<Message> {
        let socket = UdpSocket::bind("127.0.0.1:0")?;
        socket.connect(server.socket_addr())?;
        socket.set_read_timeout(Some(WAIT))?;
        socket.send(&message.to_vec().expect("encodable"))?;
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf)?;
        Ok(decode(&buf[..n]))
    }

    fn try_ask(server: &DnsServer, name: &str, rtype: RecordType) -> io::Result<Message> {
        ask_message(server, &question(name, rtype))
    }

    fn ask(server: &DnsServer, name: &str, rtype: RecordType) -> Message {
        try_ask(server, name, rtype).expect("an answer over UDP")
    }

    fn try_ask_tcp(server: &DnsServer, name: &str, rtype: RecordType) -> io::Result<Message> {
        let bytes = question(name, rtype).to_vec().expect("encodable");
        let mut stream = TcpStream::connect_timeout(&server.socket_addr(), WAIT)?;
        stream.set_read_timeout(Some(WAIT))?;
        let len = u16::try_from(bytes.len()).expect("short query");
        stream.write_all(&len.to_be_bytes())?;
        stream.write_all(&bytes)?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len)?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut buf)?;
        Ok(decode(&buf))
    }

    fn test_server() -> DnsServer {
        DnsServer::start(&test_zones())
    }

    /// Each record as "name TYPE data" (names in ACE form; hickory shows TXT strings
    /// unquoted), for comparing sections.
    fn shown(records: &[Record]) -> Vec<String> {
        records
            .iter()
            .map(|r| format!("{} {} {}", r.name.to_ascii(), r.record_type(), r.data))
            .collect()
    }

    fn assert_negative(answer: &Message, rcode: ResponseCode, zone: &str) {
        assert_eq!(answer.metadata.response_code, rcode);
        assert!(answer.metadata.authoritative, "negative answers are AA");
        assert!(answer.answers.is_empty(), "{:?}", shown(&answer.answers));
        assert_eq!(
            answer.authorities.len(),
            1,
            "{:?}",
            shown(&answer.authorities)
        );
        let soa = &answer.authorities[0];
        assert_eq!(soa.record_type(), RecordType::SOA);
        assert_eq!(soa.name.to_string(), zone);
    }

    #[test]
    fn names_in_served_zones_get_authoritative_answers() {
        let server = test_server();
        let apex = ask(&server, "example.test.", RecordType::A);
        assert_eq!(apex.metadata.response_code, ResponseCode::NoError);
        assert!(apex.metadata.authoritative);
        assert!(!apex.metadata.recursion_available);
        assert_eq!(shown(&apex.answers), ["example.test. A 192.0.2.1"]);
        assert_eq!(apex.answers[0].ttl, 300);

        let mx = ask(&server, "example.test", RecordType::MX);
        assert_eq!(
            shown(&mx.answers),
            ["example.test. MX 10 mail.example.test."]
        );

        let app = ask(&server, "app.hosted.test.", RecordType::AAAA);
        assert!(app.metadata.authoritative);
        assert_eq!(shown(&app.answers), ["app.hosted.test. AAAA 2001:db8::80"]);

        let taken = ask(&server, "taken.github.io.", RecordType::A);
        assert_eq!(shown(&taken.answers), ["taken.github.io. A 192.0.2.90"]);

        let flat = ask(&server, "flat.test.", RecordType::A);
        assert_eq!(shown(&flat.answers), ["flat.test. A 192.0.2.80"]);
        let drift = ask(&server, "drift.test.", RecordType::A);
        assert_eq!(shown(&drift.answers), ["drift.test. A 192.0.2.99"]);
    }

    #[test]
    fn names_are_matched_without_regard_to_case() {
        let server = test_server();
        let answer = ask(&server, "WWW.Example.TEST.", RecordType::CNAME);
        assert!(answer.metadata.authoritative);
        assert_eq!(answer.answers.len(), 1);
        assert_eq!(answer.answers[0].data.to_string(), "app.hosted.test.");
    }

    #[test]
    fn a_missing_name_is_nxdomain_with_the_zone_soa() {
        let server = test_server();
        let answer = ask(&server, "nothing.hosted.test.", RecordType::A);
        assert_negative(&answer, ResponseCode::NXDomain, "hosted.test.");
        let gone = ask(&server, "roost-gone.github.io.", RecordType::A);
        assert_negative(&gone, ResponseCode::NXDomain, "github.io.");
        // RFC 2308 §3: the SOA's TTL is min(its TTL, MINIMUM).
        let RData::SOA(soa) = &gone.authorities[0].data else {
            panic!("an SOA");
        };
        assert_eq!(soa.mname.to_string(), "ns1.example.test.");
        assert_eq!(gone.authorities[0].ttl, 300);
    }

    #[test]
    fn an_existing_name_without_the_type_is_nodata() {
        let server = test_server();
        let empty = ask(&server, "empty.hosted.test.", RecordType::A);
        assert_negative(&empty, ResponseCode::NoError, "hosted.test.");
        let txt = ask(&server, "empty.hosted.test.", RecordType::TXT);
        assert_eq!(shown(&txt.answers), ["empty.hosted.test. TXT no addresses"]);
        // An empty non-terminal exists too.
        let tcp = ask(&server, "_tcp.aliased-targets.test.", RecordType::SRV);
        assert_negative(&tcp, ResponseCode::NoError, "aliased-targets.test.");
    }

    #[test]
    fn names_outside_every_zone_are_refused() {
        let server = test_server();
        for name in ["example.org.", "test.", "io.", "nothing.invalid."] {
            let answer = ask(&server, name, RecordType::A);
            assert_eq!(
                answer.metadata.response_code,
                ResponseCode::Refused,
                "{name}"
            );
            assert!(!answer.metadata.authoritative, "{name}");
            assert!(answer.answers.is_empty() && answer.authorities.is_empty());
        }
    }

    #[test]
    fn the_apex_cname_is_served_beside_soa_and_ns() {
        let server = test_server();
        let soa = ask(&server, "apex-cname.test.", RecordType::SOA);
        assert!(soa.metadata.authoritative);
        assert_eq!(soa.answers.len(), 1);
        assert_eq!(soa.answers[0].record_type(), RecordType::SOA);
        let ns = ask(&server, "apex-cname.test.", RecordType::NS);
        assert_eq!(
            shown(&ns.answers),
            [
                "apex-cname.test. NS ns1.example.test.",
                "apex-cname.test. NS ns2.example.test."
            ]
        );
        for rtype in [RecordType::CNAME, RecordType::A, RecordType::MX] {
            let answer = ask(&server, "apex-cname.test.", rtype);
            assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
            assert_eq!(
                shown(&answer.answers),
                ["apex-cname.test. CNAME app.hosted.test."],
                "{rtype}"
            );
        }
        let any = ask(&server, "apex-cname.test.", RecordType::ANY);
        let mut types: Vec<_> = any.answers.iter().map(|r| r.record_type()).collect();
        types.sort_by_key(|t| u16::from(*t));
        types.dedup();
        assert_eq!(
            types,
            [RecordType::NS, RecordType::CNAME, RecordType::SOA],
            "ANY shows the CNAME beside the apex data"
        );
    }

    #[test]
    fn a_cname_beside_other_data_answers_each_type() {
        let server = test_server();
        let txt = ask(&server, "both.example.test.", RecordType::TXT);
        assert_eq!(shown(&txt.answers), ["both.example.test. TXT x"]);
        let a = ask(&server, "both.example.test.", RecordType::A);
        assert_eq!(
            shown(&a.answers),
            ["both.example.test. CNAME app.hosted.test."]
        );
    }

    #[test]
    fn cnames_are_answered_one_step_at_a_time() {
        let server = test_server();
        let www = ask(&server, "www.example.test.", RecordType::A);
        assert_eq!(
            shown(&www.answers),
            ["www.example.test. CNAME app.hosted.test."]
        );
        let chain = ask(&server, "chain1.example.test.", RecordType::A);
        assert_eq!(
            shown(&chain.answers),
            ["chain1.example.test. CNAME chain2.example.test."]
        );
        let chain5 = ask(&server, "chain5.example.test.", RecordType::A);
        assert_eq!(
            shown(&chain5.answers),
            ["chain5.example.test. CNAME app.hosted.test."]
        );
        let looped = ask(&server, "loop-a.example.test.", RecordType::A);
        assert_eq!(
            shown(&looped.answers),
            ["loop-a.example.test. CNAME loop-b.example.test."]
        );
        let back = ask(&server, "loop-b.example.test.", RecordType::AAAA);
        assert_eq!(
            shown(&back.answers),
            ["loop-b.example.test. CNAME loop-a.example.test."]
        );
    }

    #[test]
    fn alias_targets_of_soa_ns_mx_and_srv_are_served() {
        let server = test_server();
        let soa = ask(&server, "aliased-targets.test.", RecordType::SOA);
        let RData::SOA(data) = &soa.answers[0].data else {
            panic!("an SOA");
        };
        assert_eq!(data.mname.to_string(), "ns-alias.aliased-targets.test.");
        let mx = ask(&server, "aliased-targets.test.", RecordType::MX);
        assert_eq!(
            shown(&mx.answers),
            ["aliased-targets.test. MX 10 mail-alias.aliased-targets.test."]
        );
        let srv = ask(&server, "_sip._tcp.aliased-targets.test.", RecordType::SRV);
        assert_eq!(
            shown(&srv.answers),
            ["_sip._tcp.aliased-targets.test. SRV 10 5 5060 sip-alias.aliased-targets.test."]
        );
        let ns = ask(&server, "ns-alias.aliased-targets.test.", RecordType::A);
        assert_eq!(
            shown(&ns.answers),
            ["ns-alias.aliased-targets.test. CNAME ns1.example.test."]
        );
    }

    #[test]
    fn a_wildcard_expands_for_missing_names_below_its_parent() {
        let server = test_server();
        let one = ask(&server, "anything.wild.example.test.", RecordType::A);
        assert!(one.metadata.authoritative);
        assert_eq!(
            shown(&one.answers),
            ["anything.wild.example.test. A 192.0.2.7"]
        );
        let deep = ask(&server, "a.b.wild.example.test.", RecordType::A);
        assert_eq!(shown(&deep.answers), ["a.b.wild.example.test. A 192.0.2.7"]);
        let other_type = ask(&server, "anything.wild.example.test.", RecordType::TXT);
        assert_negative(&other_type, ResponseCode::NoError, "example.test.");
        let parent = ask(&server, "wild.example.test.", RecordType::A);
        assert_negative(&parent, ResponseCode::NoError, "example.test.");
        let elsewhere = ask(&server, "anything.tame.example.test.", RecordType::A);
        assert_negative(&elsewhere, ResponseCode::NXDomain, "example.test.");
    }

    #[test]
    fn the_idn_name_answers_under_its_ace_form() {
        let server = test_server();
        let unicode = ask(&server, "bücher.example.test.", RecordType::A);
        assert_eq!(
            shown(&unicode.answers),
            ["xn--bcher-kva.example.test. A 192.0.2.8"]
        );
        let ace = ask(&server, "xn--bcher-kva.example.test.", RecordType::A);
        assert_eq!(shown(&ace.answers), shown(&unicode.answers));
        // hickory shows a decoded name in its Unicode form (what `Name::to_string` gives).
        assert_eq!(ace.answers[0].name.to_string(), "bücher.example.test.");
    }

    #[test]
    fn tcp_answers_like_udp() {
        let server = test_server();
        let answer = try_ask_tcp(&server, "www.example.test.", RecordType::A).expect("TCP answer");
        assert!(answer.metadata.authoritative);
        assert_eq!(
            shown(&answer.answers),
            ["www.example.test. CNAME app.hosted.test."]
        );
        let nx = try_ask_tcp(&server, "nope.example.test.", RecordType::A).expect("TCP answer");
        assert_negative(&nx, ResponseCode::NXDomain, "example.test.");
    }

    #[test]
    fn a_large_answer_is_truncated_over_udp_and_complete_over_tcp() {
        let server = test_server();
        let texts: Vec<String> = (0..40).map(|i| format!("\"{i:0>60}\"")).collect();
        let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
        server.set("big.example.test.", "TXT", 60, &texts);
        let udp = ask(&server, "big.example.test.", RecordType::TXT);
        assert!(udp.metadata.truncation, "over 512 bytes without EDNS");
        let tcp = try_ask_tcp(&server, "big.example.test.", RecordType::TXT).expect("TCP");
        assert!(!tcp.metadata.truncation);
        assert_eq!(tcp.answers.len(), 40);
    }

    #[test]
    fn an_edns_query_gets_an_edns_answer() {
        let server = test_server();
        let mut message = question("www.example.test.", RecordType::A);
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        message.set_edns(edns);
        let answer = ask_message(&server, &message).expect("an answer");
        assert!(answer.metadata.authoritative);
        assert_eq!(answer.edns.as_ref().map(Edns::max_payload), Some(1232));
        assert_eq!(answer.answers.len(), 1);
    }

    #[test]
    fn set_replaces_adds_and_deletes_rrsets() {
        let server = test_server();
        server.set("www.example.test", "CNAME", 60, &["other.hosted.test."]);
        let changed = ask(&server, "www.example.test.", RecordType::A);
        assert_eq!(
            shown(&changed.answers),
            ["www.example.test. CNAME other.hosted.test."]
        );
        assert_eq!(changed.answers[0].ttl, 60);

        // Relative names in rdata are relative to the zone, as in zone text.
        server.set("flat.test.", "A", 300, &["192.0.2.81", "192.0.2.82"]);
        server.set("flat.test.", "MX", 300, &["10 mx"]);
        let a = ask(&server, "flat.test.", RecordType::A);
        assert_eq!(
            shown(&a.answers),
            ["flat.test. A 192.0.2.81", "flat.test. A 192.0.2.82"]
        );
        let mx = ask(&server, "flat.test.", RecordType::MX);
        assert_eq!(shown(&mx.answers), ["flat.test. MX 10 mx.flat.test."]);

        server.set("www.example.test.", "CNAME", 300, &[]);
        let gone = ask(&server, "www.example.test.", RecordType::A);
        assert_negative(&gone, ResponseCode::NXDomain, "example.test.");

        server.set("new.hosted.test.", "A", 300, &["192.0.2.5"]);
        let new = ask(&server, "new.hosted.test.", RecordType::A);
        assert_eq!(shown(&new.answers), ["new.hosted.test. A 192.0.2.5"]);
    }

    #[test]
    fn set_rejects_names_outside_the_zones_and_bad_rdata() {
        let server = test_server();
        assert!(matches!(
            server.try_set("example.org.", "A", 300, &["192.0.2.1"]),
            Err(FixtureError::NoZone(_))
        ));
        assert!(matches!(
            server.try_set("x.example.test.", "NOPE", 300, &["1"]),
            Err(FixtureError::BadType(_))
        ));
        assert!(
            server
                .try_set("x.example.test.", "A", 300, &["not-an-address"])
                .is_err()
        );
    }

    #[test]
    fn stop_silences_both_transports_and_resume_answers_on_the_same_address() {
        let server = test_server();
        let addr = server.addr();
        assert!(try_ask(&server, "www.example.test.", RecordType::A).is_ok());

        server.stop();
        let udp = try_ask(&server, "www.example.test.", RecordType::A);
        assert!(udp.is_err(), "UDP answered after stop: {udp:?}");
        let tcp = try_ask_tcp(&server, "www.example.test.", RecordType::A);
        assert!(tcp.is_err(), "TCP answered after stop: {tcp:?}");
        // On loopback the ICMP port-unreachable arrives: a connected socket sees a refusal.
        assert_eq!(
            udp.err().map(|e| e.kind()),
            Some(io::ErrorKind::ConnectionRefused)
        );
        assert_eq!(
            tcp.err().map(|e| e.kind()),
            Some(io::ErrorKind::ConnectionRefused)
        );
        server.stop(); // again: no effect

        server.resume();
        assert_eq!(server.addr(), addr);
        let udp = ask(&server, "www.example.test.", RecordType::A);
        assert_eq!(
            shown(&udp.answers),
            ["www.example.test. CNAME app.hosted.test."]
        );
        let tcp = try_ask_tcp(&server, "www.example.test.", RecordType::A).expect("TCP again");
        assert!(tcp.metadata.authoritative);

        // A second round trips just the same.
        server.stop();
        assert!(try_ask(&server, "www.example.test.", RecordType::A).is_err());
        server.resume();
        assert!(try_ask(&server, "www.example.test.", RecordType::A).is_ok());
    }

    #[test]
    fn drop_closes_the_port() {
        let server = test_server();
        let addr = server.socket_addr();
        drop(server);
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket.connect(addr).expect("connect");
        socket.set_read_timeout(Some(WAIT)).expect("timeout");
        socket
            .send(
                &question("www.example.test.", RecordType::A)
                    .to_vec()
                    .expect("encodable"),
            )
            .expect("send");
        let mut buf = [0u8; 512];
        assert!(socket.recv(&mut buf).is_err());
    }

    #[test]
    fn the_bench_zone_holds_n_aliases() {
        let (origin, text) = bench_zone(3);
        let server = DnsServer::start(&[(origin, text)]);
        for i in 0..3 {
            let answer = ask(&server, &format!("name{i}.bench.test."), RecordType::A);
            assert_eq!(
                shown(&answer.answers),
                [format!("name{i}.bench.test. CNAME app.hosted.test.")]
            );
        }
        let past = ask(&server, "name3.bench.test.", RecordType::A);
        assert_negative(&past, ResponseCode::NXDomain, "bench.test.");
    }

    #[test]
    fn a_zone_without_soa_or_with_bad_text_is_refused_at_start() {
        assert!(matches!(
            DnsServer::try_start(&[("x.test.", "$TTL 300\nwww IN A 192.0.2.1\n")]),
            Err(FixtureError::NoSoa(_))
        ));
        assert!(matches!(
            DnsServer::try_start(&[("x.test.", "@ IN SOA garbage\n")]),
            Err(FixtureError::ZoneText { .. })
        ));
    }
}
