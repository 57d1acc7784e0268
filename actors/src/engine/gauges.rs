//! The gauges `/metrics` shows, set from live state when it is scraped
//! (never on a hot path): per warm pool, the heap its idle isolates hold
//! and the most they held, in-call peaks included (one series per pool, so at most `RUNTIMES_MAX`
//! of each); jobs scheduled; email messages pending in the outboxes;
//! messages waiting in actor mailboxes and supervisor gates. A gauge not
//! set again (an evicted pool's) leaves the scrape output once it idles
//! out (the API's recorder removes idle gauges).

use super::Engine;

impl Engine {
    /// Sets every scrape-time gauge; call right before rendering.
    pub fn set_gauges(&self) {
        let inner = &self.inner;
        for pool in inner.runtimes.warm_pools() {
            let slug = inner
                .directory
                .get(&pool.installation_id)
                .and_then(|k| k.state.slug.as_ref().map(|s| s.to_string()))
                // A webhook transform's pool: no plugin of that id.
                .unwrap_or_else(|| "_webhook".into());
            let labels = [
                ("installation", pool.installation_id.to_string()),
                ("plugin", slug),
            ];
            metrics::gauge!("extensor_isolate_heap_bytes", &labels).set(pool.heap_bytes as f64);
            metrics::gauge!("extensor_isolate_heap_peak_bytes", &labels)
                .set(pool.heap_peak_bytes as f64);
        }
        let mut jobs = 0usize;
        inner.directory.each_installed(None, &mut |k| {
            if k.is_enabled() {
                jobs += k
                    .state
                    .current
                    .as_ref()
                    .map_or(0, |v| v.manifest.jobs.len());
            }
        });
        metrics::gauge!("extensor_jobs_scheduled").set(jobs as f64);
        metrics::gauge!("extensor_email_outbox_pending").set(crate::outbox_pending::total() as f64);
        self.set_mailbox_gauges();
    }

    fn set_mailbox_gauges(&self) {
        use crate::supervision::ActorKind;
        let inner = &self.inner;
        let set = |kind: &'static str, messages: usize, max: usize| {
            metrics::gauge!("extensor_actor_mailbox_messages", "kind" => kind).set(messages as f64);
            metrics::gauge!("extensor_actor_mailbox_messages_max", "kind" => kind).set(max as f64);
        };
        // The root and tenant supervisors sit behind semaphores, not
        // mailbox gates: the calls in flight there are their queue.
        let root = inner
            .tree
            .root_calls_max
            .saturating_sub(inner.root_gate.available_permits());
        set("root", root, root);
        let sup = supervisor_depth(inner);
        set(ActorKind::TenantSupervisor.as_str(), sup.messages, sup.max);
        for (kind, d) in inner.board.mailbox_depths() {
            if kind != ActorKind::TenantSupervisor {
                set(kind.as_str(), d.messages, d.max);
            }
        }
    }
}

/// Calls in flight to the tenant supervisors: all, and the busiest.
fn supervisor_depth(inner: &super::Inner) -> crate::supervision::MailboxDepth {
    let gates = inner
        .supervisor_gates
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut d = crate::supervision::MailboxDepth::default();
    for g in gates.values() {
        let n = inner
            .tree
            .supervisor_calls_max
            .saturating_sub(g.available_permits());
        d.messages += n;
        d.max = d.max.max(n);
    }
    d
}
