//! The analysis, independent of the host: give it names and a [`Lookup`] and it says what
//! is wrong with each, what changed since last time, and how to put it in words.
//!
//! - [`name`]: [`Fqdn`], names in the one form they are compared in (IDNA, case, dot).
//! - [`lookup`]: the [`Lookup`] trait and the per-run [`Resolver`] (cache, retries).
//! - [`resolve`]: following a CNAME chain to its end.
//! - [`check`]: one name's queries and findings.
//! - [`ask_ahead`]: the first questions of many checks, asked at once.
//! - [`findings`]: the kinds of finding, their severities, RFCs and fixes.
//! - [`suffixes`]: the dated table of claimable hosted-service suffixes.
//! - [`report`]: a check as text.
//! - [`watch`]: the state kept between periodic checks and the notice when it changes.

pub mod ask_ahead;
pub mod check;
pub mod findings;
pub mod lookup;
pub mod name;
pub mod report;
pub mod resolve;
pub mod suffixes;
pub mod watch;

pub use ask_ahead::ask_ahead;
pub use check::{Check, CheckSettings, check};
pub use findings::{Finding, Kind, Severity};
pub use lookup::{Answer, Failure, Lookup, Question, Rcode, Record, Resolver};
pub use name::Fqdn;
