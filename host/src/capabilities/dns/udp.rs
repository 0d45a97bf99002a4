//! A server's share of a call's questions over one connected UDP socket, pipelined: up to
//! [`IN_FLIGHT`] queries out at once, each answer taken by its id and question as it
//! comes, the next query sent in its place. One socket and one task per server instead of
//! one per query: a burst of answers is read in one wake-up (a socket a query cost two
//! threads' worth of wake-ups and system calls per answer on loopback). Lost queries are
//! sent again after [`ATTEMPT_TIMEOUT`], at most [`ATTEMPTS`] times in all.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, MessageType};
use tokio::net::UdpSocket;

use super::{ATTEMPT_TIMEOUT, ATTEMPTS, IN_FLIGHT};
use crate::runtime::bindings::roost::plugin::dns::Failure;

/// Queries one UDP socket serves before it is closed and another opened.
pub(super) const SOCKET_USES: u32 = 100;
/// How long after it was opened a UDP socket may still be reused.
pub(super) const SOCKET_LIFETIME: Duration = Duration::from_secs(10);
/// How often lost queries are looked for: a query is sent again between
/// [`ATTEMPT_TIMEOUT`] and this much later.
const TICK: Duration = Duration::from_millis(50);
/// Largest UDP answer read.
const MAX_UDP_MESSAGE: usize = 4096;

/// One question of the call: its place in the call's list, its query, and when the query
/// first went out (its answer's round trip is timed from then).
pub(super) struct Job {
    pub index: usize,
    pub query: Message,
    pub sent: Option<Instant>,
}

/// What became of a job: its answer (maybe truncated) or why there is none.
pub(super) type Outcome = (Job, Result<Message, Failure>);

/// A connected socket per server, kept between calls: a checker's next call reuses it
/// instead of opening its own (opening, binding, connecting, registering and closing one
/// a query took a fifth of a 7,000-query check's system calls). It goes back only after
/// a chunk ended without a socket error, and serves at most [`SOCKET_USES`] queries
/// within [`SOCKET_LIFETIME`]: the source port is half of what a forger off the path must
/// guess (the id is the other), so it must not stay put. A late answer to a query that
/// timed out is skipped by its id and question on the next use.
#[derive(Default)]
pub(super) struct Sockets(std::sync::Mutex<HashMap<SocketAddr, Kept>>);

/// A connected socket and how much it has served.
struct Kept {
    socket: UdpSocket,
    opened: Instant,
    uses: u32,
}

impl Kept {
    fn reusable(&self) -> bool {
        self.uses < SOCKET_USES && self.opened.elapsed() < SOCKET_LIFETIME
    }
}

impl Sockets {
    /// The socket kept for `server` if still reusable, or a new one.
    async fn take(&self, server: SocketAddr) -> Result<Kept, Failure> {
        let kept = match self.0.lock() {
            Ok(mut by_server) => by_server.remove(&server).filter(Kept::reusable),
            Err(_) => None,
        };
        match kept {
            Some(kept) => Ok(kept),
            None => Ok(Kept {
                socket: connect(server).await?,
                opened: Instant::now(),
                uses: 0,
            }),
        }
    }

    /// Keeps `kept` for the next call unless it has served enough.
    fn give_back(&self, server: SocketAddr, kept: Kept) {
        if kept.reusable()
            && let Ok(mut by_server) = self.0.lock()
        {
            by_server.insert(server, kept);
        }
    }
}

/// A UDP socket connected to `server`: connected, so an ICMP "port unreachable" comes back
/// as an error instead of silence.
async fn connect(server: SocketAddr) -> Result<UdpSocket, Failure> {
    let local: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        ([0u16; 8], 0).into()
    };
    let socket = UdpSocket::bind(local).await.map_err(unreachable(server))?;
    socket.connect(server).await.map_err(unreachable(server))?;
    Ok(socket)
}

fn unreachable(server: SocketAddr) -> impl Fn(std::io::Error) -> Failure {
    move |e| Failure::Unreachable(format!("{server}: {e}"))
}

/// Asks `server` every job, in chunks of what one socket may still serve; answers come
/// back in no particular order, each with its job.
pub(super) async fn ask_all(
    server: SocketAddr,
    jobs: Vec<Job>,
    deadline: Instant,
    sockets: &Sockets,
) -> Vec<Outcome> {
    let mut waiting: VecDeque<Job> = jobs.into();
    let mut outcomes = Vec::with_capacity(waiting.len());
    while !waiting.is_empty() {
        if Instant::now() >= deadline {
            let timeout = Failure::Timeout(format!("{server}: no answer in time"));
            outcomes.extend(waiting.drain(..).map(|j| (j, Err(timeout.clone()))));
            break;
        }
        let mut kept = match sockets.take(server).await {
            Ok(kept) => kept,
            Err(e) => {
                outcomes.extend(waiting.drain(..).map(|j| (j, Err(e.clone()))));
                break;
            }
        };
        let room = (SOCKET_USES - kept.uses) as usize;
        let chunk: VecDeque<Job> = waiting.drain(..room.min(waiting.len())).collect();
        kept.uses += chunk.len() as u32;
        let mut pipeline = Pipeline::new(&kept.socket, server, deadline);
        let healthy = pipeline.run(chunk).await;
        outcomes.append(&mut pipeline.done);
        if healthy {
            sockets.give_back(server, kept);
        }
    }
    outcomes
}

/// A query out on the socket.
struct Flying {
    job: Job,
    bytes: Vec<u8>,
    sent: Instant,
    attempts: u32,
}

/// One chunk's exchange on one socket.
struct Pipeline<'s> {
    socket: &'s UdpSocket,
    server: SocketAddr,
    deadline: Instant,
    /// Out and unanswered, by id (unique among them).
    flying: HashMap<u16, Flying>,
    done: Vec<Outcome>,
}

impl<'s> Pipeline<'s> {
    fn new(socket: &'s UdpSocket, server: SocketAddr, deadline: Instant) -> Self {
        Self {
            socket,
            server,
            deadline,
            flying: HashMap::with_capacity(IN_FLIGHT),
            done: Vec::new(),
        }
    }

    /// Asks every job of `queue`; false when the socket failed (every job then failed
    /// with its error) and must not be kept.
    async fn run(&mut self, mut queue: VecDeque<Job>) -> bool {
        let mut buf = vec![0u8; MAX_UDP_MESSAGE];
        let mut tick = tokio::time::interval_at((Instant::now() + TICK).into(), TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let end = tokio::time::sleep_until(self.deadline.into());
        tokio::pin!(end);
        loop {
            if let Err(e) = self.fill(&mut queue).await {
                self.fail_all(&mut queue, e);
                return false;
            }
            if self.flying.is_empty() {
                return true;
            }
            tokio::select! {
                got = self.socket.recv(&mut buf) => {
                    if let Err(e) = self.take_answers(got, &mut buf) {
                        self.fail_all(&mut queue, e);
                        return false;
                    }
                }
                _ = tick.tick() => {
                    if let Err(e) = self.resend_lost().await {
                        self.fail_all(&mut queue, e);
                        return false;
                    }
                }
                _ = &mut end => {
                    let timeout = Failure::Timeout(format!("{}: no answer in time", self.server));
                    self.fail_all(&mut queue, timeout);
                    return true;
                }
            }
        }
    }

    /// Sends queued jobs until [`IN_FLIGHT`] are out.
    async fn fill(&mut self, queue: &mut VecDeque<Job>) -> Result<(), Failure> {
        while self.flying.len() < IN_FLIGHT {
            let Some(mut job) = queue.pop_front() else {
                break;
            };
            while self.flying.contains_key(&job.query.metadata.id) {
                job.query.metadata.id = super::query_id();
            }
            let bytes = match job.query.to_vec() {
                Ok(bytes) => bytes,
                Err(e) => {
                    let bad = Failure::InvalidArgument(format!("cannot encode the query: {e}"));
                    self.done.push((job, Err(bad)));
                    continue;
                }
            };
            if let Err(e) = self.socket.send(&bytes).await {
                // Back in the queue, so it fails with the others.
                queue.push_front(job);
                return Err(unreachable(self.server)(e));
            }
            let id = job.query.metadata.id;
            let now = Instant::now();
            job.sent.get_or_insert(now);
            let flying = Flying {
                job,
                bytes,
                sent: now,
                attempts: 1,
            };
            self.flying.insert(id, flying);
        }
        Ok(())
    }

    /// Takes the answer `got` read into `buf`, then every other one already waiting.
    fn take_answers(
        &mut self,
        mut got: std::io::Result<usize>,
        buf: &mut [u8],
    ) -> Result<(), Failure> {
        loop {
            match got {
                Ok(n) => self.take(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(unreachable(self.server)(e)),
            }
            got = self.socket.try_recv(buf);
        }
    }

    /// Completes the query `datagram` answers; a stray, stale or forged one (another id,
    /// another question, not a response) is skipped.
    fn take(&mut self, datagram: &[u8]) {
        let Ok(answer) = Message::from_vec(datagram) else {
            return;
        };
        let id = answer.metadata.id;
        let Some(flying) = self.flying.get(&id) else {
            return;
        };
        let asked = &flying.job.query.queries;
        // A server refusing a malformed query may leave the question out.
        let same_question = answer.queries.is_empty() || answer.queries == *asked;
        if answer.metadata.message_type != MessageType::Response || !same_question {
            return;
        }
        if let Some(flying) = self.flying.remove(&id) {
            self.done.push((flying.job, Ok(answer)));
        }
    }

    /// Sends again each query unanswered for [`ATTEMPT_TIMEOUT`]; one sent [`ATTEMPTS`]
    /// times fails as a timeout.
    async fn resend_lost(&mut self) -> Result<(), Failure> {
        let now = Instant::now();
        let lost: Vec<u16> = self
            .flying
            .iter()
            .filter(|(_, f)| now.duration_since(f.sent) >= ATTEMPT_TIMEOUT)
            .map(|(id, _)| *id)
            .collect();
        for id in lost {
            let Some(flying) = self.flying.get_mut(&id) else {
                continue;
            };
            if flying.attempts < ATTEMPTS {
                flying.attempts += 1;
                flying.sent = now;
                self.socket
                    .send(&flying.bytes)
                    .await
                    .map_err(unreachable(self.server))?;
            } else if let Some(flying) = self.flying.remove(&id) {
                let timeout =
                    Failure::Timeout(format!("{}: no answer after {ATTEMPTS} tries", self.server));
                self.done.push((flying.job, Err(timeout)));
            }
        }
        Ok(())
    }

    /// Fails every job still out or queued with `why`.
    fn fail_all(&mut self, queue: &mut VecDeque<Job>, why: Failure) {
        let out = self.flying.drain().map(|(_, f)| f.job);
        let jobs: Vec<Job> = out.chain(queue.drain(..)).collect();
        self.done
            .extend(jobs.into_iter().map(|j| (j, Err(why.clone()))));
    }
}
