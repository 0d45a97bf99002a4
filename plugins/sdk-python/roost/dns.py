"""DNS lookups against the servers the plugin's grants name
(`[plugins.NAME.grants] dns_servers = ["127.0.0.1:5353"]`, or `dns_system = true` for the
resolvers in /etc/resolv.conf).

    response = dns.lookup("www.example.org", "CNAME", server="127.0.0.1:5353")
    if response.is_nxdomain: ...            # the name does not exist
    elif response.is_nodata: ...            # it exists, with no CNAME
    for record in response.answer: ...      # record.name, .rtype, .ttl, .data

Lookups are uncached: every call goes to the server, so the response keeps what a checker
needs and a caching resolver hides (the response code, the AA flag, all three sections with
their TTLs). A server that did not answer raises `Timeout` or `Unreachable` (both
`transient`), never an empty answer; a server not granted, or a used-up query budget,
raises `AccessDenied`; a bad name, type or server raises `InvalidArgument`.

`lookup_many` asks a list of questions at once, for a checker of many names:

    for q, r in zip(questions, dns.lookup_many(questions)):
        if isinstance(r, Exception): ...   # what `lookup` would have raised, not raised
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Union

from . import _host
from .errors import HostError

#: The response codes, as `dig` prints them.
RCODES = ("NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "OTHER")


@dataclass(frozen=True)
class Record:
    """One resource record as it came over the wire."""

    name: str
    """Owner name, absolute, with its trailing dot ("www.example.org.")."""
    rtype: str
    """Type mnemonic: "A", "AAAA", "CNAME", "MX", "NS", "SOA", "SRV", "TXT", …."""
    ttl: int
    """Time to live, in seconds, as the server sent it."""
    data: str
    """The data in presentation format: "192.0.2.1", "10 mail.example.org.", …."""

    def __str__(self) -> str:
        """`name TTL TYPE data`, the way zone files and `dig` show a record."""
        return f"{self.name} {self.ttl} {self.rtype} {self.data}"


@dataclass
class Response:
    """What a server answered."""

    rcode: str = "NOERROR"
    """One of `RCODES`."""
    authoritative: bool = False
    """The AA flag: the server is authoritative for the name."""
    answer: list[Record] = field(default_factory=list)
    authority: list[Record] = field(default_factory=list)
    """The zone's SOA on a negative answer, NS on a referral."""
    additional: list[Record] = field(default_factory=list)
    server: str = ""
    """The server that answered, "ip:port"."""
    elapsed_ms: int = 0
    """Round trip, in milliseconds."""

    @property
    def is_nxdomain(self) -> bool:
        """NXDOMAIN: the name does not exist."""
        return self.rcode == "NXDOMAIN"

    @property
    def is_nodata(self) -> bool:
        """NODATA: the name exists but has no records of the asked type."""
        return self.rcode == "NOERROR" and not self.answer

    @property
    def is_definite(self) -> bool:
        """Whether the answer says something about the name (NOERROR or NXDOMAIN), as
        opposed to the server declining or failing to say (SERVFAIL, REFUSED, …)."""
        return self.rcode in ("NOERROR", "NXDOMAIN")


def lookup(name: str, rtype: str = "A", server: str = "", recurse: bool = True) -> Response:
    """Asks `server` ("ip:port" from the grant; "" for the first granted server) for the
    records of type `rtype` at `name` (with or without the trailing dot; non-ASCII names
    in punycode). With `recurse` the query asks for recursion (RD), which a resolver needs
    and an authoritative server ignores. The host retries a lost UDP query once and falls
    back to TCP for a truncated answer."""
    return _host.current().dns_lookup(name, rtype.upper(), server, bool(recurse))


#: Questions one host call carries; `lookup_many` splits longer lists.
MAX_BATCH = 256


@dataclass(frozen=True)
class Question:
    """One question for `lookup_many`: the arguments of `lookup`."""

    name: str
    rtype: str = "A"
    server: str = ""
    """"ip:port" from the grant; "" for the first granted server."""
    recurse: bool = True


def lookup_many(
    questions: Iterable[Union[Question, tuple]],
) -> list[Union[Response, HostError]]:
    """Asks every question as `lookup` would, but several at a time: the host keeps up to
    32 in flight, so checking a thousand names waits for the server about once per 32
    instead of once per question. Each question is a `Question` or a tuple of its fields
    (`("www.example.org", "CNAME")`). The results come in the questions' order, each a
    `Response` or, where `lookup` would have raised, the exception itself (not raised,
    like `asyncio.gather(..., return_exceptions=True)`); each question is checked against
    the grant and paid for out of the query budget like a `lookup`."""
    asked = [q if isinstance(q, Question) else Question(*q) for q in questions]
    results: list[Union[Response, HostError]] = []
    for start in range(0, len(asked), MAX_BATCH):
        wire = [(q.name, q.rtype.upper(), q.server, bool(q.recurse))
                for q in asked[start:start + MAX_BATCH]]
        results.extend(_host.current().dns_lookup_many(wire))
    return results
