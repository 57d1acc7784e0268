//! When a plugin job fires: cron schedules evaluated in the job's IANA
//! timezone, and the pure decisions about missed occurrences (catch-up) that
//! the scheduler actor applies. No IO and no clock: `now` is a parameter.
//!
//! # Daylight-saving rule
//!
//! A schedule is matched against *local wall-clock time* in the job's zone.
//! - A local time that does not exist (skipped by a spring-forward gap, e.g.
//!   02:30 in America/New_York on the second Sunday of March) fires at the
//!   first instant after the gap (03:00 local). Several occurrences inside one
//!   gap collapse into that one firing, together with one due exactly at the
//!   end of the gap.
//! - A local time that occurs twice (repeated by a fall-back overlap, e.g.
//!   01:30 on the first Sunday of November) fires once, at its first
//!   occurrence (the earlier UTC instant).

use std::collections::VecDeque;
use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::error::Error;
use crate::manifest::{CatchUp, JobDecl, normalize_cron};

/// Bound on the cron candidates examined for one next fire time. The longest
/// honest walk is a seconds schedule through a repeated hour (3,600); more
/// means a schedule that can never match again (e.g. `0 0 0 30 2 *`).
pub const NEXT_FIRE_STEPS_MAX: usize = 10_000;
/// Missed occurrences counted one by one after downtime. Past this the count
/// restarts from [`MISSED_RECENT_WINDOW_HOURS`] before now and is reported as
/// a lower bound, so a week down with a per-second job costs bounded CPU.
pub const MISSED_SCAN_MAX: u64 = 100_000;
/// See [`MISSED_SCAN_MAX`]: at most 86,400 per-second occurrences fit in it.
pub const MISSED_RECENT_WINDOW_HOURS: i64 = 24;
/// Skipped missed occurrences recorded one event each (the newest ones);
/// older ones are folded into a count on the oldest recorded one, so
/// nothing is silently dropped and the log does not balloon.
pub const SKIPPED_RECORDS_MAX: usize = 100;
/// Half-width of the window searched for the end of a DST gap: wider than
/// any UTC offset (±14 h) plus any gap, narrower than the distance between
/// two transitions.
const GAP_SEARCH_HOURS: i64 = 26;

/// A job's schedule: a cron expression read in an IANA timezone.
#[derive(Clone, Debug)]
pub struct JobSchedule {
    cron: cron::Schedule,
    tz: Tz,
    /// The normalised (seconds-form) expression.
    expr: String,
}

impl JobSchedule {
    /// `expr` in the 5-field standard form or the cron crate's seconds form;
    /// `timezone` an IANA name such as `Europe/London`.
    pub fn new(expr: &str, timezone: &str) -> Result<Self, Error> {
        let invalid = |what, value: &str, reason: String| Error::InvalidValue {
            what,
            value: crate::error::truncate_for_error(value),
            reason,
        };
        let normalized = normalize_cron(expr).map_err(|r| invalid("schedule", expr, r))?;
        let cron = cron::Schedule::from_str(&normalized)
            .map_err(|e| invalid("schedule", expr, e.to_string()))?;
        let tz = Tz::from_str(timezone).map_err(|_| {
            invalid(
                "timezone",
                timezone,
                "is not an IANA timezone name like `Europe/London`".into(),
            )
        })?;
        Ok(Self {
            cron,
            tz,
            expr: normalized,
        })
    }

    pub fn from_decl(decl: &JobDecl) -> Result<Self, Error> {
        Self::new(&decl.schedule, &decl.timezone)
    }

    pub fn expression(&self) -> &str {
        &self.expr
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first fire time strictly after `after`, by the DST rule in the
    /// module docs; `None` if the schedule never fires again.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if self.tz == Tz::UTC {
            return self.cron.after(&after).next();
        }
        // Walk local wall-clock times, carried as UTC values so the cron
        // crate sees no gaps, then map each candidate to an instant.
        let mut cursor = after.with_timezone(&self.tz).naive_local();
        for _ in 0..NEXT_FIRE_STEPS_MAX {
            let candidate = self.cron.after(&cursor.and_utc()).next()?.naive_utc();
            let instant = match self.tz.from_local_datetime(&candidate) {
                LocalResult::Single(t) => t.to_utc(),
                // Fires once: at the first of the two instants.
                LocalResult::Ambiguous(first, _) => first.to_utc(),
                LocalResult::None => gap_end(self.tz, candidate)?,
            };
            // A candidate at or before `after` is one already fired: the
            // first pass of a repeated hour, or a gap collapsed into one
            // firing.
            if instant > after {
                return Some(instant);
            }
            cursor = candidate;
        }
        None
    }

    /// Fire times in `(after, until]`, oldest first, at most `max`.
    pub fn between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        max: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut at = after;
        while out.len() < max {
            match self.next_after(at) {
                Some(t) if t <= until => {
                    out.push(t);
                    at = t;
                }
                _ => break,
            }
        }
        out
    }
}

/// The first instant whose local time is later than `local` (which lies in
/// a gap): the moment the clocks jumped. Binary search over whole seconds.
fn gap_end(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    let local_at = |t: i64| {
        DateTime::from_timestamp(t, 0).map(|u| tz.from_utc_datetime(&u.naive_utc()).naive_local())
    };
    let carried = local.and_utc().timestamp();
    let (mut lo, mut hi) = (
        carried - GAP_SEARCH_HOURS * 3_600,
        carried + GAP_SEARCH_HOURS * 3_600,
    );
    // Invariant: local(lo) <= local < local(hi).
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if local_at(mid)? > local {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    DateTime::from_timestamp(hi, 0)
}

/// What to do about the occurrences due since the scheduler last handled
/// this job (`cursor`): the one on time, the missed ones to run, and the
/// missed ones to record as skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CatchUpPlan {
    /// The newest due occurrence, if it is within the grace: it is merely
    /// late (a slow tick), not missed, and fires normally.
    pub on_time: Option<DateTime<Utc>>,
    /// Missed occurrences to run now, oldest first, one after another.
    pub run: Vec<DateTime<Utc>>,
    /// Missed occurrences recorded as skipped, oldest first (the newest
    /// [`SKIPPED_RECORDS_MAX`] of them).
    pub skip: Vec<DateTime<Utc>>,
    /// Older missed occurrences not recorded one by one; counted on the
    /// oldest skip record.
    pub folded: u64,
    /// `folded` is a lower bound: the scan gave up counting.
    pub folded_is_lower_bound: bool,
    /// The newest occurrence the plan covers; the job's new cursor.
    pub cursor: Option<DateTime<Utc>>,
}

/// How a job should catch up: its manifest policy and cap, and how late an
/// occurrence may be and still count as on time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CatchUpRule {
    pub policy: CatchUp,
    pub max_runs: u32,
    pub grace: Duration,
}

/// Decides about every occurrence in `(cursor, now]`.
pub fn plan_catch_up(
    schedule: &JobSchedule,
    rule: CatchUpRule,
    cursor: DateTime<Utc>,
    now: DateTime<Utc>,
) -> CatchUpPlan {
    let keep = SKIPPED_RECORDS_MAX + rule.max_runs as usize + 1;
    let mut scan = scan_due(schedule, cursor, now, keep);
    if scan.total > MISSED_SCAN_MAX {
        let recent = now - Duration::hours(MISSED_RECENT_WINDOW_HOURS);
        let rescan = scan_due(schedule, cursor.max(recent), now, keep);
        scan = Scan {
            total: scan.total.max(rescan.total),
            newest: rescan.newest,
            lower_bound: true,
        };
    }
    let mut plan = CatchUpPlan {
        cursor: scan.newest.back().copied(),
        folded_is_lower_bound: scan.lower_bound,
        ..CatchUpPlan::default()
    };
    let mut newest = scan.newest;
    if newest.back().is_some_and(|t| now - *t <= rule.grace) {
        plan.on_time = newest.pop_back();
    }
    let missed_total = scan.total - u64::from(plan.on_time.is_some());
    let runs = match rule.policy {
        CatchUp::Skip => 0,
        CatchUp::RunOnce => 1,
        CatchUp::RunEach => rule.max_runs as usize,
    }
    .min(newest.len());
    plan.run = newest.split_off(newest.len() - runs).into();
    let skip_from = newest.len().saturating_sub(SKIPPED_RECORDS_MAX);
    plan.skip = newest.split_off(skip_from).into();
    plan.folded = missed_total - (plan.run.len() + plan.skip.len()) as u64;
    plan
}

struct Scan {
    /// How many occurrences fell in the range (capped near the scan limit).
    total: u64,
    /// The newest `keep` of them, oldest first.
    newest: VecDeque<DateTime<Utc>>,
    lower_bound: bool,
}

fn scan_due(schedule: &JobSchedule, after: DateTime<Utc>, now: DateTime<Utc>, keep: usize) -> Scan {
    let mut scan = Scan {
        total: 0,
        newest: VecDeque::with_capacity(keep.min(1_024)),
        lower_bound: false,
    };
    let mut at = after;
    while let Some(t) = schedule.next_after(at).filter(|t| *t <= now) {
        scan.total += 1;
        if scan.newest.len() == keep {
            scan.newest.pop_front();
        }
        scan.newest.push_back(t);
        if scan.total > MISSED_SCAN_MAX {
            break;
        }
        at = t;
    }
    scan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn fires(expr: &str, tz: &str, after: &str, n: usize) -> Vec<String> {
        let s = JobSchedule::new(expr, tz).unwrap();
        let mut at = utc(after);
        (0..n)
            .map(|_| {
                at = s.next_after(at).expect("fires");
                at.to_rfc3339()
            })
            .collect()
    }

    #[test]
    fn five_field_and_seconds_forms_fire_on_the_minute() {
        assert_eq!(
            fires("*/15 * * * *", "UTC", "2026-01-01T00:00:00Z", 3),
            [
                "2026-01-01T00:15:00+00:00",
                "2026-01-01T00:30:00+00:00",
                "2026-01-01T00:45:00+00:00"
            ]
        );
        assert_eq!(
            fires("30 * * * * *", "UTC", "2026-01-01T00:00:30Z", 1),
            ["2026-01-01T00:01:30+00:00"]
        );
    }

    #[test]
    fn weekday_numbers_in_the_five_field_form_are_standard_cron() {
        // 2026-01-02 is a Friday; 1-5 is Monday to Friday in standard cron.
        assert_eq!(
            fires("0 9 * * 1-5", "UTC", "2026-01-02T10:00:00Z", 2),
            ["2026-01-05T09:00:00+00:00", "2026-01-06T09:00:00+00:00"]
        );
        // 0 and 7 are both Sunday.
        assert_eq!(
            fires("0 9 * * 0", "UTC", "2026-01-02T10:00:00Z", 1),
            ["2026-01-04T09:00:00+00:00"]
        );
        assert_eq!(
            fires("0 9 * * 7", "UTC", "2026-01-02T10:00:00Z", 1),
            ["2026-01-04T09:00:00+00:00"]
        );
    }

    #[test]
    fn local_time_in_a_zone_follows_its_offset() {
        // 09:00 in New York is 14:00 UTC in winter and 13:00 UTC in summer.
        assert_eq!(
            fires("0 9 * * *", "America/New_York", "2026-01-10T00:00:00Z", 1),
            ["2026-01-10T14:00:00+00:00"]
        );
        assert_eq!(
            fires("0 9 * * *", "America/New_York", "2026-07-10T00:00:00Z", 1),
            ["2026-07-10T13:00:00+00:00"]
        );
    }

    #[test]
    fn a_time_in_the_spring_forward_gap_fires_when_the_gap_ends() {
        // New York, 2026-03-08: 02:00 EST jumps to 03:00 EDT (07:00 UTC).
        assert_eq!(
            fires("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 3),
            [
                "2026-03-08T07:00:00+00:00", // 03:00 EDT, the gap's end
                "2026-03-09T06:30:00+00:00", // 02:30 EDT
                "2026-03-10T06:30:00+00:00",
            ]
        );
        // Every 15 minutes: 02:00..02:45 and 03:00 collapse into one firing.
        assert_eq!(
            fires(
                "*/15 * * * *",
                "America/New_York",
                "2026-03-08T06:40:00Z",
                3
            ),
            [
                "2026-03-08T06:45:00+00:00", // 01:45 EST
                "2026-03-08T07:00:00+00:00", // 03:00 EDT
                "2026-03-08T07:15:00+00:00", // 03:15 EDT
            ]
        );
    }

    #[test]
    fn a_repeated_local_time_fires_once_at_its_first_occurrence() {
        // New York, 2026-11-01: 02:00 EDT falls back to 01:00 EST (06:00 UTC).
        assert_eq!(
            fires("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", 2),
            [
                "2026-11-01T05:30:00+00:00", // 01:30 EDT, not 01:30 EST
                "2026-11-02T06:30:00+00:00",
            ]
        );
        // Every 30 minutes through the repeated hour: 01:00 and 01:30 once.
        assert_eq!(
            fires(
                "*/30 * * * *",
                "America/New_York",
                "2026-11-01T04:45:00Z",
                4
            ),
            [
                "2026-11-01T05:00:00+00:00", // 01:00 EDT
                "2026-11-01T05:30:00+00:00", // 01:30 EDT
                "2026-11-01T07:00:00+00:00", // 02:00 EST
                "2026-11-01T07:30:00+00:00",
            ]
        );
        // Starting inside the second pass does not fire its times again.
        assert_eq!(
            fires(
                "*/30 * * * *",
                "America/New_York",
                "2026-11-01T06:10:00Z",
                1
            ),
            ["2026-11-01T07:00:00+00:00"]
        );
    }

    #[test]
    fn london_transitions_follow_the_same_rule() {
        // 2026-03-29 01:00 GMT → 02:00 BST; 2026-10-25 02:00 BST → 01:00 GMT.
        assert_eq!(
            fires("30 1 * * *", "Europe/London", "2026-03-28T12:00:00Z", 2),
            ["2026-03-29T01:00:00+00:00", "2026-03-30T00:30:00+00:00"]
        );
        assert_eq!(
            fires("30 1 * * *", "Europe/London", "2026-10-24T12:00:00Z", 2),
            ["2026-10-25T00:30:00+00:00", "2026-10-26T01:30:00+00:00"]
        );
    }

    #[test]
    fn bad_expressions_and_zones_are_named() {
        let err = JobSchedule::new("61 * * * *", "UTC")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("schedule") && err.contains("61 * * * *"),
            "{err}"
        );
        let err = JobSchedule::new("* * * * *", "Mars/Olympus")
            .unwrap_err()
            .to_string();
        assert!(err.contains("Mars/Olympus"), "{err}");
        let err = JobSchedule::new("0 9 * * 8", "UTC")
            .unwrap_err()
            .to_string();
        assert!(err.contains("weekday"), "{err}");
        // February 30th never comes: no fire time, no endless loop.
        let never = JobSchedule::new("0 0 0 30 2 *", "Europe/Paris").unwrap();
        assert_eq!(never.next_after(utc("2026-01-01T00:00:00Z")), None);
    }

    fn rule(policy: CatchUp, max_runs: u32) -> CatchUpRule {
        CatchUpRule {
            policy,
            max_runs,
            grace: Duration::seconds(30),
        }
    }

    fn hourly() -> JobSchedule {
        JobSchedule::new("0 * * * *", "UTC").unwrap()
    }

    #[test]
    fn skip_records_every_missed_occurrence() {
        // Down from 00:30 to 05:10: 01:00..05:00 missed.
        let plan = plan_catch_up(
            &hourly(),
            rule(CatchUp::Skip, 10),
            utc("2026-01-01T00:30:00Z"),
            utc("2026-01-01T05:10:00Z"),
        );
        assert!(plan.run.is_empty());
        assert_eq!(plan.skip.len(), 5);
        assert_eq!(plan.skip[0], utc("2026-01-01T01:00:00Z"));
        assert_eq!((plan.on_time, plan.folded), (None, 0));
        assert_eq!(plan.cursor, Some(utc("2026-01-01T05:00:00Z")));
    }

    #[test]
    fn run_once_runs_the_newest_missed_and_skips_the_rest() {
        let plan = plan_catch_up(
            &hourly(),
            rule(CatchUp::RunOnce, 10),
            utc("2026-01-01T00:30:00Z"),
            utc("2026-01-01T05:10:00Z"),
        );
        assert_eq!(plan.run, [utc("2026-01-01T05:00:00Z")]);
        assert_eq!(plan.skip.len(), 4);
    }

    #[test]
    fn run_each_runs_up_to_the_cap_oldest_first() {
        let plan = plan_catch_up(
            &hourly(),
            rule(CatchUp::RunEach, 3),
            utc("2026-01-01T00:30:00Z"),
            utc("2026-01-01T05:10:00Z"),
        );
        assert_eq!(
            plan.run,
            [
                utc("2026-01-01T03:00:00Z"),
                utc("2026-01-01T04:00:00Z"),
                utc("2026-01-01T05:00:00Z")
            ]
        );
        assert_eq!(
            plan.skip,
            [utc("2026-01-01T01:00:00Z"), utc("2026-01-01T02:00:00Z")]
        );
    }

    #[test]
    fn an_occurrence_within_the_grace_is_late_not_missed() {
        let plan = plan_catch_up(
            &hourly(),
            rule(CatchUp::Skip, 10),
            utc("2026-01-01T00:30:00Z"),
            utc("2026-01-01T01:00:20Z"),
        );
        assert_eq!(plan.on_time, Some(utc("2026-01-01T01:00:00Z")));
        assert!(plan.skip.is_empty() && plan.run.is_empty());
    }

    #[test]
    fn long_downtime_folds_old_skips_into_a_count() {
        // A per-second job down for two days: 172,800 missed occurrences.
        let every_second = JobSchedule::new("* * * * * *", "UTC").unwrap();
        let plan = plan_catch_up(
            &every_second,
            rule(CatchUp::Skip, 10),
            utc("2026-01-01T00:00:00Z"),
            utc("2026-01-03T00:00:00Z"),
        );
        assert_eq!(plan.skip.len(), SKIPPED_RECORDS_MAX);
        assert!(plan.folded_is_lower_bound);
        assert!(plan.folded >= MISSED_SCAN_MAX - SKIPPED_RECORDS_MAX as u64);
        assert_eq!(plan.skip.last(), Some(&utc("2026-01-02T23:59:59Z")));
        assert_eq!(plan.on_time, Some(utc("2026-01-03T00:00:00Z")));
        // A modest downtime is counted exactly.
        let plan = plan_catch_up(
            &every_second,
            rule(CatchUp::Skip, 10),
            utc("2026-01-01T00:00:00Z"),
            utc("2026-01-01T00:10:00Z"),
        );
        assert!(!plan.folded_is_lower_bound);
        // 600 due, the newest on time, 599 missed.
        assert_eq!(plan.folded + plan.skip.len() as u64, 599);
    }
}
