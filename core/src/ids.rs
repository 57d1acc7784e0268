//! Prefixed newtype ids (`ten_…`, `ins_…`, `evt_…`, `tok_…`, `cor_…`, `msg_…`, `node_…`, `run_…`).
//!
//! An id is its prefix plus a ULID in Crockford base32, so ids sort by creation
//! time, say what they are when they show up in a log line, and cannot be
//! confused with each other at compile time. Installation ids are the one
//! exception to randomness: they are derived from (tenant, slug) so that
//! "install this slug" always targets the same stream and the stream's
//! expected revision is what makes a slug unique within a tenant.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, truncate_for_error};

/// Length of the ULID body of every id: 26 Crockford base32 characters.
const ULID_BODY_LEN: usize = 26;

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The id's prefix, underscore included.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, ulid::Ulid::new()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                parse_prefixed(s, $prefix).map(|()| Self(s.to_owned()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self, Error> {
                parse_prefixed(&s, $prefix).map(|()| Self(s))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(
    /// A tenant: one customer of the host product.
    TenantId, "ten_"
);
prefixed_id!(
    /// A plugin installation within a tenant (derived from tenant and slug).
    InstallationId, "ins_"
);
prefixed_id!(
    /// One event in the log; unique across the whole store.
    EventId, "evt_"
);
prefixed_id!(
    /// An API token of a tenant (the token's secret is never stored).
    TokenId, "tok_"
);
prefixed_id!(
    /// Ties together every event caused by one request or one trigger.
    CorrelationId, "cor_"
);
prefixed_id!(
    /// One webhook delivery. It is the Standard Webhooks `webhook-id`, the
    /// same on every attempt, so receivers deduplicate with it.
    DeliveryId, "msg_"
);

prefixed_id!(
    /// One `extensor serve` process sharing a store with others, generated
    /// at each start (a restarted process is a new node).
    NodeId, "node_"
);

prefixed_id!(
    /// One run of a plugin job, derived from what identifies the run.
    RunId, "run_"
);

impl RunId {
    /// The run of `job` of `installation` for `scheduled_for`. Deterministic:
    /// every scheduler process names an occurrence alike, so the job
    /// stream's expected revision decides which one runs it. `trigger`
    /// separates a run-now at the same instant from a scheduled run.
    pub fn derive(
        installation: &InstallationId,
        job: &str,
        scheduled_for: chrono::DateTime<chrono::Utc>,
        trigger: &str,
    ) -> Self {
        let mut hasher = Sha256::new();
        for part in [
            installation.as_str(),
            job,
            &scheduled_for.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            trigger,
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0u8]);
        }
        let digest = hasher.finalize();
        let mut raw = [0u8; 16];
        raw.copy_from_slice(&digest[..16]);
        Self(format!("run_{}", ulid::Ulid::from_bytes(raw)))
    }
}

impl InstallationId {
    /// The installation id of `slug` within `tenant`. Deterministic, so two
    /// concurrent installs of one slug race on one stream and one of them gets
    /// a revision conflict instead of both succeeding.
    pub fn for_slug(tenant: &TenantId, slug: &crate::manifest::Slug) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(tenant.as_str().as_bytes());
        hasher.update([0u8]);
        hasher.update(slug.as_str().as_bytes());
        let digest = hasher.finalize();
        let mut raw = [0u8; 16];
        raw.copy_from_slice(&digest[..16]);
        Self(format!("ins_{}", ulid::Ulid::from_bytes(raw)))
    }
}

fn parse_prefixed(s: &str, prefix: &'static str) -> Result<(), Error> {
    let Some(body) = s.strip_prefix(prefix) else {
        return Err(Error::InvalidId {
            value: truncate_for_error(s),
            reason: format!("must start with `{prefix}`"),
        });
    };
    if body.len() != ULID_BODY_LEN || ulid::Ulid::from_string(body).is_err() {
        return Err(Error::InvalidId {
            value: truncate_for_error(s),
            reason: format!(
                "`{prefix}` must be followed by {ULID_BODY_LEN} Crockford base32 characters"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_round_trip_and_sort_by_time() {
        let a = TenantId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = TenantId::generate();
        assert!(a < b, "{a} should sort before {b}");
        assert_eq!(a.as_str().parse::<TenantId>().unwrap(), a);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<TenantId>(&json).unwrap(), a);
    }

    #[test]
    fn wrong_prefix_and_bad_body_are_named() {
        let err = "ins_01HZZZZZZZZZZZZZZZZZZZZZZZ"
            .parse::<TenantId>()
            .unwrap_err();
        assert!(err.to_string().contains("must start with `ten_`"), "{err}");
        let err = "ten_short".parse::<TenantId>().unwrap_err();
        assert!(err.to_string().contains("26 Crockford"), "{err}");
        let err = serde_json::from_str::<EventId>("\"evt_!!\"").unwrap_err();
        assert!(err.to_string().contains("evt_"), "{err}");
    }

    #[test]
    fn hostile_long_input_is_not_echoed_whole() {
        let long = "x".repeat(10_000);
        let err = long.parse::<TokenId>().unwrap_err().to_string();
        assert!(err.len() < 300, "error echoed {} bytes", err.len());
    }

    #[test]
    fn installation_id_is_stable_per_tenant_and_slug() {
        let t1 = TenantId::generate();
        let t2 = TenantId::generate();
        let slug: crate::manifest::Slug = "welcome-email".parse().unwrap();
        let other: crate::manifest::Slug = "daily-kpi".parse().unwrap();
        let a = InstallationId::for_slug(&t1, &slug);
        assert_eq!(a, InstallationId::for_slug(&t1, &slug));
        assert_ne!(a, InstallationId::for_slug(&t2, &slug));
        assert_ne!(a, InstallationId::for_slug(&t1, &other));
        assert_eq!(a.as_str().parse::<InstallationId>().unwrap(), a);
    }
}
