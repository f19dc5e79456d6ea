//! `--detected-at TIME`: what people copy from an alert or read off a clock, in local time
//! unless it says otherwise. A plain function of the text, the time now and the time zone,
//! so every form is tested without touching the clock.
//!
//! Forms: `15m ago`, `now`; RFC 3339 (`2026-11-28T18:00:00Z`, with any offset); a date and
//! time (`2026-11-28 18:00`, `2026-11-28T18:00:45`); a time of day (`10:05`, `03:12:45`),
//! today, or yesterday when that would be in the future; `yesterday 23:10`, `today 10:05`.
//! A trailing ` UTC` or `Z` reads the time in UTC instead of local time.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// How far ahead of now a detection may be (clocks differ a little).
const SLACK: i64 = 60;

pub(crate) const FORMS: &str = "10:05, 03:12:45, \"2026-11-28 18:00\", \"yesterday 23:10\", \"15m ago\" or RFC 3339 \
     (2026-11-28T18:00:00Z); local time unless followed by UTC";

/// The instant `text` names, read at `now` in time zone `tz`.
pub(crate) fn parse<Tz: TimeZone>(
    text: &str,
    now: DateTime<Utc>,
    tz: &Tz,
) -> Result<DateTime<Utc>, String> {
    let s = text.trim().to_ascii_lowercase();
    let t = if s == "now" {
        now
    } else if let Some(ago) = s.strip_suffix("ago") {
        let d = humantime::parse_duration(ago.trim())
            .map_err(|e| format!("`{}` is not a duration such as 15m: {e}", ago.trim()))?;
        let d = Duration::from_std(d).map_err(|_| "too long ago".to_string())?;
        now.checked_sub_signed(d).ok_or("too long ago")?
    } else if let Ok(t) = DateTime::parse_from_rfc3339(&s) {
        t.with_timezone(&Utc)
    } else {
        local(&s, now, tz)?
    };
    if t > now + Duration::seconds(SLACK) {
        return Err(format!("{} is in the future", crate::event::timestamp(t)));
    }
    Ok(t)
}

/// The forms without an offset: a time of day, maybe after a day.
fn local<Tz: TimeZone>(s: &str, now: DateTime<Utc>, tz: &Tz) -> Result<DateTime<Utc>, String> {
    let (s, utc) = match s.strip_suffix("utc").or_else(|| s.strip_suffix('z')) {
        Some(rest) => (rest.trim(), true),
        None => (s, false),
    };
    let bad = || format!("not a time: use {FORMS}");
    let today = if utc {
        now.date_naive()
    } else {
        now.with_timezone(tz).date_naive()
    };
    // `2026-11-28t18:00`: the date is ten characters.
    let split = s
        .split_once(' ')
        .or_else(|| (s.get(10..11) == Some("t")).then(|| (&s[..10], &s[11..])));
    let (day, time, guess_day) = match split {
        Some(("today", t)) => (today, t.trim(), false),
        Some(("yesterday", t)) => (today.pred_opt().ok_or_else(bad)?, t.trim(), false),
        Some((d, t)) => (
            NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| bad())?,
            t.trim(),
            false,
        ),
        None => (today, s, true),
    };
    let time = NaiveTime::parse_from_str(time, "%H:%M:%S")
        .or_else(|_| NaiveTime::parse_from_str(time, "%H:%M"))
        .map_err(|_| bad())?;
    let at = |day: NaiveDate| -> Result<DateTime<Utc>, String> {
        let naive = NaiveDateTime::new(day, time);
        if utc {
            return Ok(Utc.from_utc_datetime(&naive));
        }
        match tz.from_local_datetime(&naive) {
            chrono::LocalResult::Single(t) => Ok(t.with_timezone(&Utc)),
            chrono::LocalResult::Ambiguous(a, b) => Err(format!(
                "{naive} happens twice in local time (the clocks went back): say which with an offset, {} or {}",
                a.to_rfc3339(),
                b.to_rfc3339()
            )),
            chrono::LocalResult::None => Err(format!(
                "{naive} does not exist in local time (the clocks went forward)"
            )),
        }
    };
    let t = at(day)?;
    // A time of day alone is the last time the clock showed it: 23:50 read at 00:10 is
    // yesterday's.
    if guess_day && t > now + Duration::seconds(SLACK) {
        return at(day.pred_opt().ok_or_else(bad)?);
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn every_form_people_copy_is_read() {
        // 2026-11-28 20:30 in a zone one hour ahead of UTC (21:30 local).
        let now = utc("2026-11-28T20:30:00Z");
        let tz = FixedOffset::east_opt(3600).unwrap();
        let p = |s: &str| parse(s, now, &tz).map(crate::event::timestamp);
        let ok = |s: &str| p(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(ok("10:05"), "2026-11-28T09:05:00.000Z");
        assert_eq!(ok("03:12:45"), "2026-11-28T02:12:45.000Z");
        assert_eq!(ok("2026-11-28 18:00"), "2026-11-28T17:00:00.000Z");
        assert_eq!(ok("2026-11-28T18:00:30"), "2026-11-28T17:00:30.000Z");
        assert_eq!(ok("yesterday 23:10"), "2026-11-27T22:10:00.000Z");
        assert_eq!(ok("Today 21:00"), "2026-11-28T20:00:00.000Z");
        assert_eq!(ok("15m ago"), "2026-11-28T20:15:00.000Z");
        assert_eq!(ok("1h 30m ago"), "2026-11-28T19:00:00.000Z");
        assert_eq!(ok("now"), "2026-11-28T20:30:00.000Z");
        assert_eq!(ok("2026-11-28T18:00:00Z"), "2026-11-28T18:00:00.000Z");
        assert_eq!(ok("2026-11-28T18:00:00+05:00"), "2026-11-28T13:00:00.000Z");
        assert_eq!(ok("18:00 UTC"), "2026-11-28T18:00:00.000Z");
        assert_eq!(ok("2026-11-28 18:00Z"), "2026-11-28T18:00:00.000Z");
        // 23:50 local is in the future at 21:30 local: it was yesterday's.
        assert_eq!(ok("23:50"), "2026-11-27T22:50:00.000Z");
    }

    #[test]
    fn nonsense_and_the_future_are_refused_with_the_forms() {
        let now = utc("2026-11-28T20:30:00Z");
        let tz = FixedOffset::east_opt(0).unwrap();
        for bad in ["soon", "25:00", "2026-13-01 10:00", "yesterday", "x ago"] {
            assert!(parse(bad, now, &tz).is_err(), "{bad}");
        }
        let e = parse("tomorrow 10:00", now, &tz).unwrap_err();
        assert!(e.contains("10:05, 03:12:45"), "{e}");
        let e = parse("2026-11-29 10:00", now, &tz).unwrap_err();
        assert!(e.contains("in the future"), "{e}");
    }
}
