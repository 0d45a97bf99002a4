//! [`Fqdn`]: a domain name in the one form the engine compares: ASCII (punycode for IDNs),
//! lowercase, absolute (with its trailing dot).

use std::fmt;

/// Longest name in presentation form without the trailing dot (RFC 1035 §2.3.4 gives 255
/// octets on the wire, which is 253 characters written out).
const MAX_NAME: usize = 253;
/// Longest label (RFC 1035 §2.3.4).
const MAX_LABEL: usize = 63;

/// A domain name as the engine compares it: "www.example.org." — ASCII, lowercase, with
/// the trailing dot. Users may type names with or without the dot, in any case, and in
/// Unicode; [`Fqdn::parse`] turns all of those into this one form so that answers from
/// servers (which may differ in case) compare equal.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Fqdn(String);

impl Fqdn {
    /// Parses a name typed by a user or found in a record's data. Accepts a trailing dot or
    /// none, any case, and Unicode (converted to punycode with IDNA/UTS 46). Labels may hold
    /// letters, digits, `-` and `_` (for `_service._proto` names), and a label may be a lone
    /// `*` (a wildcard owner). The root `.` is a name too.
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        if trimmed == "." {
            return Ok(Self(".".into()));
        }
        let bare = trimmed.strip_suffix('.').unwrap_or(trimmed);
        if bare.is_empty() {
            return Err("an empty name".into());
        }
        let ascii = if bare.is_ascii() {
            bare.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii(bare)
                .map_err(|_| format!("`{bare}` is not a valid internationalized domain name"))?
        };
        if ascii.len() > MAX_NAME {
            return Err(format!("`{bare}` is longer than {MAX_NAME} characters"));
        }
        for label in ascii.split('.') {
            if label.is_empty() {
                return Err(format!("`{bare}` has an empty label"));
            }
            if label.len() > MAX_LABEL {
                return Err(format!(
                    "`{bare}` has a label longer than {MAX_LABEL} characters"
                ));
            }
            let ok = label == "*"
                || label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return Err(format!("`{bare}` has a character not allowed in a name"));
            }
        }
        Ok(Self(format!("{ascii}.")))
    }

    /// The absolute ASCII form, with the trailing dot: what goes into a query.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name without the trailing dot, in Unicode where it has punycode labels:
    /// "bücher.example.org". For headings meant for people.
    pub fn display(&self) -> String {
        let bare = self.0.strip_suffix('.').unwrap_or(&self.0);
        if bare.is_empty() {
            return ".".into();
        }
        if !bare.split('.').any(|l| l.starts_with("xn--")) {
            return bare.to_string();
        }
        match idna::domain_to_unicode(bare) {
            (unicode, Ok(())) if unicode != bare => format!("{unicode} ({bare})"),
            _ => bare.to_string(),
        }
    }

    /// The labels, left to right, without the root.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.0.split('.').filter(|l| !l.is_empty())
    }

    /// The name one label up ("example.org." for "www.example.org."); `None` for the root.
    pub fn parent(&self) -> Option<Fqdn> {
        if self.0 == "." {
            return None;
        }
        Some(match self.0.split_once('.') {
            Some((_, rest)) if !rest.is_empty() => Self(rest.to_string()),
            _ => Self(".".into()),
        })
    }

    /// Whether this is `_service._proto.…`, a name that carries SRV records (RFC 2782).
    pub fn is_service(&self) -> bool {
        let mut labels = self.labels();
        matches!(
            (labels.next(), labels.next()),
            (Some(a), Some(b)) if a.starts_with('_') && b.starts_with('_')
        )
    }

    /// Whether this name is `suffix` or lies below it.
    pub fn is_under(&self, suffix: &Fqdn) -> bool {
        suffix.0 == "." || self.0 == suffix.0 || self.0.ends_with(&format!(".{}", suffix.0))
    }
}

impl fmt::Display for Fqdn {
    /// The absolute ASCII form, as records show names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_dot_and_case_do_not_matter() {
        let a = Fqdn::parse("WWW.Example.Test").unwrap();
        let b = Fqdn::parse("www.example.test.").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "www.example.test.");
        assert_eq!(a.display(), "www.example.test");
    }

    #[test]
    fn unicode_names_become_punycode_and_display_both() {
        let n = Fqdn::parse("Bücher.Example.Test.").unwrap();
        assert_eq!(n.as_str(), "xn--bcher-kva.example.test.");
        assert_eq!(
            n.display(),
            "bücher.example.test (xn--bcher-kva.example.test)"
        );
        assert_eq!(Fqdn::parse("xn--bcher-kva.example.test").unwrap(), n);
    }

    #[test]
    fn wildcards_services_and_bad_names() {
        assert!(Fqdn::parse("*.wild.test").is_ok());
        assert!(Fqdn::parse("_sip._tcp.example.test").unwrap().is_service());
        assert!(!Fqdn::parse("_dmarc.example.test").unwrap().is_service());
        assert!(Fqdn::parse("").is_err());
        assert!(Fqdn::parse("a..b").is_err());
        assert!(Fqdn::parse("a b.test").is_err());
        assert!(Fqdn::parse(&format!("{}.test", "a".repeat(64))).is_err());
        assert_eq!(Fqdn::parse(".").unwrap().as_str(), ".");
    }

    #[test]
    fn under_matches_whole_labels() {
        let n = Fqdn::parse("x.github.io").unwrap();
        assert!(n.is_under(&Fqdn::parse("github.io").unwrap()));
        assert!(!n.is_under(&Fqdn::parse("hub.io").unwrap()));
    }
}
