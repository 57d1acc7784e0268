//! The event-type namespaces the kernel owns, and the stream categories
//! each may come from.
//!
//! Two rules keep tenants from forging the kernel's facts:
//!
//! - **Reserved prefixes.** A business event (`POST /api/events`,
//!   `POST /api/plugins/test-event`, `ctx.emit`) may not use a type in a
//!   kernel namespace ([`business_event_type_problem`]).
//! - **Trust is per stream.** A projection folds a kernel event only from
//!   the stream category that owns its namespace ([`from_owner`]), so an
//!   event that got into `events-<tenant>` by any route (an old log, a
//!   second process, a bug) changes nothing: a `platform.admin_token_set`
//!   outside `platform-admin` is just data.
//!
//! This is the one list; the docs (PLUGINS.md, API.md) show it and
//! `tests/docs.rs` checks they agree.

use crate::manifest::event_type_problem;

/// Every namespace the kernel writes, with the stream categories that own
/// it (`route.`: the per-interval `route.accessed` records of
/// `route_access-<tenant>`); `extensor.` is kept for the platform's future
/// use.
pub const KERNEL_NAMESPACES: &[(&str, &[&str])] = &[
    ("platform.", &["platform"]),
    ("tenant.", &["tenant", "tenant_slug"]),
    ("plugin.", &["installation"]),
    ("hook.", &["hooks"]),
    ("job.", &["jobs"]),
    (
        "webhook.",
        &["webhooks", "webhook_deliveries", "webhook_cursor"],
    ),
    ("email.", &["outbox"]),
    ("route.", &["route_access"]),
    ("extensor.", &[]),
];

/// The reserved prefixes, in the order the docs list them.
pub fn reserved_prefixes() -> impl Iterator<Item = &'static str> {
    KERNEL_NAMESPACES.iter().map(|(prefix, _)| *prefix)
}

/// The namespace entry `event_type` falls under. Compared without case
/// (`Platform.x` counts) and the bare namespace (`platform`) counts too, so
/// no spelling slips past a reader that lowercases.
fn namespace(event_type: &str) -> Option<&'static (&'static str, &'static [&'static str])> {
    let lower = event_type.to_ascii_lowercase();
    KERNEL_NAMESPACES
        .iter()
        .find(|(p, _)| lower.starts_with(p) || lower == p[..p.len() - 1])
}

/// The reserved prefix `event_type` falls under, if any.
pub fn reserved_prefix(event_type: &str) -> Option<&'static str> {
    namespace(event_type).map(|(prefix, _)| *prefix)
}

/// Why `event_type` cannot be a business event: not a concrete dotted type
/// (the manifest's rule), or in a kernel namespace. `None` if it can.
pub fn business_event_type_problem(event_type: &str) -> Option<String> {
    if let Some(reason) = event_type_problem(event_type) {
        return Some(reason.to_owned());
    }
    reserved_prefix(event_type).map(|prefix| {
        format!(
            "uses the reserved prefix `{prefix}`; the kernel owns {}",
            reserved_prefixes()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// Whether a projection may trust `event_type` read from a stream of
/// `category`: a kernel type only from a category that owns its namespace,
/// anything else from anywhere (business types are the tenant's own).
pub fn from_owner(event_type: &str, category: &str) -> bool {
    namespace(event_type).is_none_or(|(_, owners)| owners.contains(&category))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_types_are_refused_in_any_case() {
        for t in [
            "platform.admin_token_set",
            "Platform.admin_token_set",
            "TENANT.created",
            "plugin.installed",
            "hook.executed",
            "hook.lane_claimed",
            "job.run_started",
            "job.wave_started",
            "JOB.wave_started",
            "webhook.declared",
            "email.sent",
            "route.called",
            "platform",
        ] {
            let problem = business_event_type_problem(t).unwrap_or_default();
            assert!(problem.contains("reserved prefix"), "{t}: {problem}");
        }
        for ok in ["order.created", "platforms.x", "tenants.renamed", "emails"] {
            assert_eq!(business_event_type_problem(ok), None, "{ok}");
        }
        assert!(
            business_event_type_problem("platform.*")
                .unwrap()
                .contains("concrete")
        );
    }

    #[test]
    fn kernel_types_are_trusted_only_from_their_streams() {
        assert!(from_owner("platform.admin_token_set", "platform"));
        assert!(!from_owner("platform.admin_token_set", "events"));
        assert!(!from_owner("plugin.installed", "events"));
        assert!(from_owner("plugin.installed", "installation"));
        assert!(!from_owner("webhook.declared", "events"));
        assert!(from_owner("webhook.declared", "webhooks"));
        assert!(from_owner("hook.lane_claimed", "hooks"));
        assert!(!from_owner("hook.lane_claimed", "events"));
        assert!(!from_owner("route.x", "events"));
        // A scheduler's wave start counts only from its `jobs-<tenant>`.
        assert!(from_owner("job.wave_started", "jobs"));
        assert!(!from_owner("job.wave_started", "events"));
        assert!(from_owner("order.created", "events"));
    }
}
