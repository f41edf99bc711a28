//! Cron schedules: parsing a pipeline's `schedule` and finding the tick that
//! is due. The expression is read in the schedule's IANA time zone (so
//! `0 2 * * *` in `Europe/Berlin` is 02:00 Berlin time, summer and winter).

use std::str::FromStr;

use chrono::{DateTime, TimeZone};
use croner::Cron;
use sluice_domain::pipeline::Schedule;
use sluice_domain::time::Timestamp;

use crate::AppError;

/// A parsed schedule.
#[derive(Debug, Clone)]
pub(crate) struct CronSchedule {
    cron: Cron,
    zone: chrono_tz::Tz,
}

impl CronSchedule {
    /// Parses `schedule`; the error names the offending field.
    pub(crate) fn parse(schedule: &Schedule) -> Result<Self, AppError> {
        let fields = schedule.cron.split_whitespace().count();
        if fields != 5 {
            return Err(AppError::invalid(
                "schedule.cron",
                format!(
                    "must have five fields (minute hour day-of-month month day-of-week), found {fields}"
                ),
            ));
        }
        let cron = Cron::from_str(schedule.cron.trim()).map_err(|e| {
            AppError::invalid("schedule.cron", format!("is not a cron expression: {e}"))
        })?;
        let zone = chrono_tz::Tz::from_str(schedule.timezone.trim()).map_err(|_| {
            AppError::invalid(
                "schedule.timezone",
                format!(
                    "`{}` is not an IANA time zone (such as UTC or Europe/Berlin)",
                    schedule.timezone
                ),
            )
        })?;
        Ok(Self { cron, zone })
    }

    fn at(&self, t: Timestamp) -> Option<DateTime<chrono_tz::Tz>> {
        self.zone.timestamp_millis_opt(t.millis()).single()
    }

    /// The newest tick at or before `now`.
    pub(crate) fn latest_tick(&self, now: Timestamp) -> Option<Timestamp> {
        let now = self.at(now)?;
        self.cron
            .find_previous_occurrence(&now, true)
            .ok()
            .map(|t| Timestamp(t.timestamp_millis()))
    }

    /// The tick due at `now` when the last one handled (or the moment the
    /// schedule was set) is `since`: the newest tick after `since`, if any.
    /// Ticks missed while no scheduler ran start one run, not one each.
    pub(crate) fn due(&self, since: Timestamp, now: Timestamp) -> Option<Timestamp> {
        self.latest_tick(now).filter(|tick| *tick > since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(cron: &str, tz: &str) -> Schedule {
        Schedule {
            cron: cron.into(),
            timezone: tz.into(),
        }
    }

    fn field(e: AppError) -> String {
        match e {
            AppError::Invalid { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_schedules_name_their_field() {
        for bad in ["", "* * * *", "0 0 * * * *", "61 * * * *", "a b c d e"] {
            let e = CronSchedule::parse(&schedule(bad, "UTC")).expect_err(bad);
            assert_eq!(field(e), "schedule.cron", "{bad}");
        }
        let e = CronSchedule::parse(&schedule("0 2 * * *", "Mars/Olympus")).expect_err("tz");
        assert_eq!(field(e), "schedule.timezone");
    }

    #[test]
    fn ticks_are_read_in_the_time_zone() {
        let s = CronSchedule::parse(&schedule("0 2 * * *", "Europe/Berlin")).expect("parse");
        // 2026-07-01T00:30:00Z is 02:30 in Berlin (summer time, UTC+2).
        let now = Timestamp::parse_rfc3339("2026-07-01T00:30:00Z").expect("ts");
        let tick = s.latest_tick(now).expect("tick");
        assert_eq!(tick.to_rfc3339(), "2026-07-01T00:00:00Z");
        // In winter (UTC+1) 02:00 Berlin is 01:00 UTC.
        let now = Timestamp::parse_rfc3339("2026-01-15T01:00:00Z").expect("ts");
        assert_eq!(
            s.latest_tick(now).expect("tick").to_rfc3339(),
            "2026-01-15T01:00:00Z",
            "a tick at exactly now is due"
        );
    }

    #[test]
    fn one_tick_is_due_once() {
        let s = CronSchedule::parse(&schedule("*/5 * * * *", "UTC")).expect("parse");
        let t = |x: &str| Timestamp::parse_rfc3339(x).expect("ts");
        let since = t("2026-03-30T10:00:00Z");
        assert_eq!(s.due(since, t("2026-03-30T10:04:59Z")), None);
        let tick = s.due(since, t("2026-03-30T10:07:00Z")).expect("due");
        assert_eq!(tick, t("2026-03-30T10:05:00Z"));
        assert_eq!(s.due(tick, t("2026-03-30T10:09:00Z")), None);
        // Missed ticks: only the newest is due.
        assert_eq!(
            s.due(tick, t("2026-03-30T11:02:00Z")),
            Some(t("2026-03-30T11:00:00Z"))
        );
    }
}
