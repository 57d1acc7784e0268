//! The one redaction point for secrets in recorded text.
//!
//! Every text the platform records or shows that could carry a secret
//! (a delivery attempt's error and response excerpt, a hook's or job's
//! error and logs, an email's recorded copy and its error, a log line about
//! an outbound call) goes through a [`Redactor`] before it is appended or
//! logged. It does two things:
//!
//! - **URLs in outbound-call errors are cut to their host**
//!   ([`Redactor::outbound`], [`urls_to_hosts`]): `https://user:pw@host:8443/p?q#f`
//!   becomes `https://host:8443`, since reqwest's errors carry the whole
//!   URL, so a `${SECRET:…}` in a path, query or user-info never reaches
//!   the log.
//! - **Known secret values are replaced** by [`REDACTED`]: resolved
//!   `${SECRET:…}` values, plugin and tenant secrets, signing keys, in any
//!   text at all (a receiver echoing a header back, a job logging what it
//!   read, an email body).

/// What a secret value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Values shorter than this are not scrubbed: replacing a one- or
/// two-character "secret" everywhere would destroy every text while
/// protecting nothing a guess would not find (docs/SECURITY.md says so).
pub const SECRET_BYTES_MIN_REDACTED: usize = 4;

/// Scrubs known secret values and URL paths from text.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret containing another is replaced whole.
    values: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} values)", self.values.len())
    }
}

impl Redactor {
    /// A redactor for these secret values (short and empty ones skipped).
    pub fn new<S: Into<String>>(values: impl IntoIterator<Item = S>) -> Self {
        let mut r = Redactor::default();
        r.extend(values);
        r
    }

    /// Adds more secret values.
    pub fn extend<S: Into<String>>(&mut self, values: impl IntoIterator<Item = S>) {
        for v in values {
            let v = v.into();
            if v.len() >= SECRET_BYTES_MIN_REDACTED && !self.values.contains(&v) {
                self.values.push(v);
            }
        }
        self.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The text with every known secret value replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), REDACTED);
            }
        }
        out
    }

    /// [`redact`](Self::redact) over an optional text.
    pub fn redact_opt(&self, text: Option<&str>) -> Option<String> {
        text.map(|t| self.redact(t))
    }

    /// An outbound call's error: secret values replaced and every URL cut
    /// to `scheme://host[:port]`, so it names the host at most.
    pub fn outbound(&self, text: &str) -> String {
        // URLs first: a secret that is a whole URL still leaves its host.
        self.redact(&urls_to_hosts(text))
    }

    /// Every string inside a JSON value redacted (keys included).
    pub fn redact_json(&self, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(s) => Value::String(self.redact(s)),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.redact_json(v)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (self.redact(k), self.redact_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Every `scheme://…` URL in `text` cut to `scheme://host[:port]`: no
/// user-info, path, query or fragment. Text without URLs is unchanged.
pub fn urls_to_hosts(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let scheme_start = rest[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || "+.-".contains(c)))
            .map_or(0, |j| j + 1);
        let after = &rest[i + 3..];
        let end = after
            .find(|c: char| c.is_whitespace() || "\"'<>()[]{}`,;".contains(c))
            .unwrap_or(after.len());
        let url = &after[..end];
        // The authority ends at the first `/`, `?` or `#`; user-info is
        // whatever sits before its last `@`.
        let authority = url.split(['/', '?', '#']).next().unwrap_or("");
        let host = authority.rsplit('@').next().unwrap_or("");
        out.push_str(&rest[..i]);
        if scheme_start == i {
            // `://` with no scheme before it: not a URL; keep it as is.
            out.push_str("://");
            rest = after;
            continue;
        }
        out.push_str("://");
        out.push_str(host);
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_only_their_host() {
        assert_eq!(
            urls_to_hosts(
                "error sending request for url (https://user:pw@hooks.example.com:8443/T0/B1?token=s3cr3t#x): refused"
            ),
            "error sending request for url (https://hooks.example.com:8443): refused"
        );
        assert_eq!(
            urls_to_hosts("a http://h/p and http://g?q=1 end"),
            "a http://h and http://g end"
        );
        assert_eq!(urls_to_hosts("no url :// here"), "no url :// here");
        assert_eq!(urls_to_hosts("plain"), "plain");
    }

    #[test]
    fn secret_values_are_replaced_longest_first() {
        let r = Redactor::new(["abcd", "abcdefgh", "x", ""]);
        assert_eq!(
            r.redact("k=abcdefgh j=abcd x"),
            "k=[redacted] j=[redacted] x"
        );
        assert_eq!(r.redact_opt(None), None);
        let v = serde_json::json!({"abcd": ["abcdefgh", 1, {"k": "zz abcd"}]});
        assert_eq!(
            r.redact_json(&v),
            serde_json::json!({"[redacted]": ["[redacted]", 1, {"k": "zz [redacted]"}]})
        );
    }

    #[test]
    fn a_secret_url_is_gone_in_either_form() {
        let secret = "http://10.1.2.3:9/hook?key=topsecret";
        let r = Redactor::new([secret, "topsecret"]);
        let text = format!("error sending request for url ({secret})");
        let out = r.outbound(&text);
        assert!(!out.contains("topsecret"), "{out}");
        assert!(!out.contains(secret), "{out}");
    }
}
