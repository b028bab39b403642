//! HTTP dates (RFC 9110 §5.6.7) for `http_date` / `http_parse_date`.
//!
//! Hand-written rather than the `httpdate` crate: `httpdate` goes through
//! `SystemTime` and only covers 1970..=9999 (no pre-1970 timestamps), and it
//! reads RFC 850 two-digit years with a fixed pivot instead of RFC 9110's
//! "more than 50 years in the future" rule. The calendar code is small: the
//! proleptic Gregorian day-count conversions of Howard Hinnant's
//! `chrono`-compatible algorithms.

use std::time::{SystemTime, UNIX_EPOCH};

const SHORT_DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// 0001-01-01T00:00:00Z, the first instant [`http_date`] formats.
pub const HTTP_DATE_MIN: i64 = -62_135_596_800;
/// 9999-12-31T23:59:59Z, the last instant [`http_date`] formats.
pub const HTTP_DATE_MAX: i64 = 253_402_300_799;

const SECS_PER_DAY: i64 = 86_400;

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1..=12; the day
/// may run past the month's end and then counts on into the next month).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // 0..=399
    let mp = (m + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + d - 1; // 0..=365
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // 0..=146096
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`]: (year, month 1..=12, day 1..=31).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // 0..=365
    let mp = (5 * doy + 2) / 153; // 0..=11
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Formats a Unix timestamp as an IMF-fixdate, e.g.
/// `Sun, 06 Nov 1994 08:49:37 GMT`.
///
/// Equal to Python's `email.utils.formatdate(t, usegmt=True)`. Works for every
/// instant from 0001-01-01 to 9999-12-31 (negative timestamps are before
/// 1970); outside that range the four-digit year cannot be written and the
/// result is an error.
pub fn http_date(t: i64) -> Result<String, String> {
    if !(HTTP_DATE_MIN..=HTTP_DATE_MAX).contains(&t) {
        return Err(format!(
            "http_date: timestamp {t} is outside years 0001..9999 \
             ({HTTP_DATE_MIN}..={HTTP_DATE_MAX})"
        ));
    }
    let days = t.div_euclid(SECS_PER_DAY);
    let secs = t.rem_euclid(SECS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let wday = (days + 4).rem_euclid(7); // 1970-01-01 was a Thursday
    Ok(format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        SHORT_DAYS[wday as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    ))
}

/// The current Unix time in seconds.
fn now_unix() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// Parses an HTTP date in any of the three RFC 9110 §5.6.7 formats into a
/// Unix timestamp; -1 on any failure.
///
/// * IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`
/// * RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT` (two-digit year: the latest year
///   with those digits that is not more than 50 years after now)
/// * asctime `Sun Nov  6 08:49:37 1994` (day as ` 6` or `06`; taken as UTC)
///
/// Exactly the RFC grammar: names and `GMT` are case-sensitive, single spaces,
/// two-digit fields, no trailing text (only leading and trailing SP / HTAB,
/// which are OWS around a field value, are ignored). The day-name must be a
/// valid name but is not checked against the date. Seconds may be 60 (a leap
/// second, counted as the next minute's :00); the day must exist in that month.
///
/// Note that -1 is also the real timestamp of 1969-12-31 23:59:59 GMT.
pub fn parse_date(s: &str) -> i64 {
    parse_date_at(s, now_unix())
}

/// [`parse_date`] with "now" given as a Unix timestamp (only RFC 850 dates
/// depend on it; "now" is clamped to years 0001..9999).
pub fn parse_date_at(s: &str, now: i64) -> i64 {
    parse_date_opt(s, now.clamp(HTTP_DATE_MIN, HTTP_DATE_MAX)).unwrap_or(-1)
}

/// A tiny cursor over ASCII input.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn lit(&mut self, lit: &str) -> Option<()> {
        let end = self.pos.checked_add(lit.len())?;
        if self.b.get(self.pos..end)? == lit.as_bytes() {
            self.pos = end;
            Some(())
        } else {
            None
        }
    }

    fn digits(&mut self, n: usize) -> Option<i64> {
        let end = self.pos.checked_add(n)?;
        let ds = self.b.get(self.pos..end)?;
        let mut v = 0i64;
        for &c in ds {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        self.pos = end;
        Some(v)
    }

    /// One of `names` (case-sensitive); its index.
    fn one_of(&mut self, names: &[&str]) -> Option<usize> {
        let i = names
            .iter()
            .position(|n| self.b.get(self.pos..self.pos + n.len()) == Some(n.as_bytes()))?;
        self.pos += names[i].len();
        Some(i)
    }

    /// `time-of-day = hour ":" minute ":" second`.
    fn time_of_day(&mut self) -> Option<(i64, i64, i64)> {
        let h = self.digits(2)?;
        self.lit(":")?;
        let mi = self.digits(2)?;
        self.lit(":")?;
        let s = self.digits(2)?;
        (h <= 23 && mi <= 59 && s <= 60).then_some((h, mi, s))
    }

    fn month(&mut self) -> Option<i64> {
        self.one_of(&MONTHS).map(|i| i as i64 + 1)
    }

    fn at_end(&self) -> bool {
        self.pos == self.b.len()
    }
}

/// Timestamp of a date whose fields are already in range, if the day exists.
fn timestamp(y: i64, m: i64, d: i64, (h, mi, s): (i64, i64, i64)) -> Option<i64> {
    if d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d) * SECS_PER_DAY + h * 3600 + mi * 60 + s)
}

/// IMF-fixdate or asctime (both start with a short day-name).
fn parse_short_day_date(mut c: Cursor<'_>) -> Option<i64> {
    c.one_of(&SHORT_DAYS)?;
    if c.lit(", ").is_some() {
        // IMF-fixdate: day SP month SP year SP time-of-day SP "GMT"
        let d = c.digits(2)?;
        c.lit(" ")?;
        let m = c.month()?;
        c.lit(" ")?;
        let y = c.digits(4)?;
        c.lit(" ")?;
        let t = c.time_of_day()?;
        c.lit(" GMT")?;
        return if c.at_end() {
            timestamp(y, m, d, t)
        } else {
            None
        };
    }
    // asctime: month SP ( 2DIGIT / ( SP DIGIT ) ) SP time-of-day SP year
    c.lit(" ")?;
    let m = c.month()?;
    c.lit(" ")?;
    let d = if c.lit(" ").is_some() {
        c.digits(1)?
    } else {
        c.digits(2)?
    };
    c.lit(" ")?;
    let t = c.time_of_day()?;
    c.lit(" ")?;
    let y = c.digits(4)?;
    if c.at_end() {
        timestamp(y, m, d, t)
    } else {
        None
    }
}

fn parse_date_opt(s: &str, now: i64) -> Option<i64> {
    let s = s.trim_matches(|c| c == ' ' || c == '\t');
    let mut c = Cursor {
        b: s.as_bytes(),
        pos: 0,
    };
    if c.one_of(&LONG_DAYS).is_none() {
        return parse_short_day_date(c);
    }
    // RFC 850: day-name-l "," SP day "-" month "-" 2DIGIT SP time-of-day SP "GMT".
    c.lit(", ")?;
    let d = c.digits(2)?;
    c.lit("-")?;
    let m = c.month()?;
    c.lit("-")?;
    let yy = c.digits(2)?;
    c.lit(" ")?;
    let t = c.time_of_day()?;
    c.lit(" GMT")?;
    if !c.at_end() {
        return None;
    }
    // RFC 9110 §5.6.7: a two-digit year that "appears to be more than 50 years
    // in the future" is "the most recent year in the past that had the same last
    // two digits": take the latest year ending in yy not past now + 50 years.
    let now_days = now.div_euclid(SECS_PER_DAY);
    let (ny, nm, nd) = civil_from_days(now_days);
    let limit = days_from_civil(ny + 50, nm, nd) * SECS_PER_DAY + now.rem_euclid(SECS_PER_DAY);
    let mut y = (ny + 50).div_euclid(100) * 100 + yy;
    // Compare the instant ignoring whether the day exists in that year (29 Feb).
    let unchecked = |y: i64| days_from_civil(y, m, d) * SECS_PER_DAY + t.0 * 3600 + t.1 * 60 + t.2;
    if unchecked(y) > limit {
        y -= 100;
    }
    timestamp(y, m, d, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_2025: i64 = 1_750_000_000; // 2025-06-15T15:06:40Z

    #[test]
    fn civil_round_trip() {
        for days in (-800_000..3_000_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert!((1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m));
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn format_known() {
        assert_eq!(http_date(0).unwrap(), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            http_date(784_111_777).unwrap(),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(http_date(-1).unwrap(), "Wed, 31 Dec 1969 23:59:59 GMT");
        assert_eq!(
            http_date(951_782_400).unwrap(),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
        assert_eq!(
            http_date(2_147_483_647).unwrap(),
            "Tue, 19 Jan 2038 03:14:07 GMT"
        );
        assert_eq!(
            http_date(2_147_483_648).unwrap(),
            "Tue, 19 Jan 2038 03:14:08 GMT"
        );
        assert_eq!(
            http_date(-2_208_988_800).unwrap(),
            "Mon, 01 Jan 1900 00:00:00 GMT"
        );
        assert_eq!(
            http_date(HTTP_DATE_MIN).unwrap(),
            "Mon, 01 Jan 0001 00:00:00 GMT"
        );
        assert_eq!(
            http_date(HTTP_DATE_MAX).unwrap(),
            "Fri, 31 Dec 9999 23:59:59 GMT"
        );
    }

    #[test]
    fn format_out_of_range() {
        for t in [HTTP_DATE_MIN - 1, HTTP_DATE_MAX + 1, i64::MIN, i64::MAX] {
            assert!(http_date(t).is_err(), "{t}");
        }
    }

    #[test]
    fn parse_three_formats() {
        let want = 784_111_777;
        assert_eq!(
            parse_date_at("Sun, 06 Nov 1994 08:49:37 GMT", NOW_2025),
            want
        );
        assert_eq!(
            parse_date_at("Sunday, 06-Nov-94 08:49:37 GMT", NOW_2025),
            want
        );
        assert_eq!(parse_date_at("Sun Nov  6 08:49:37 1994", NOW_2025), want);
        assert_eq!(parse_date_at("Sun Nov 06 08:49:37 1994", NOW_2025), want);
        assert_eq!(
            parse_date_at(" \tSun, 06 Nov 1994 08:49:37 GMT\t ", NOW_2025),
            want
        );
        // The current clock gives the same answer for a date this old.
        assert_eq!(parse_date("Sunday, 06-Nov-94 08:49:37 GMT"), want);
    }

    #[test]
    fn parse_round_trips_format() {
        for t in (HTTP_DATE_MIN..=HTTP_DATE_MAX).step_by(987_654_321) {
            assert_eq!(parse_date_at(&http_date(t).unwrap(), NOW_2025), t);
        }
        for t in [HTTP_DATE_MIN, HTTP_DATE_MAX, -1, 0, 1, 2_147_483_648] {
            assert_eq!(parse_date_at(&http_date(t).unwrap(), NOW_2025), t);
        }
    }

    #[test]
    fn parse_boundaries() {
        assert_eq!(
            parse_date_at("Mon, 01 Jan 0001 00:00:00 GMT", NOW_2025),
            HTTP_DATE_MIN
        );
        assert_eq!(
            parse_date_at("Fri, 31 Dec 9999 23:59:59 GMT", NOW_2025),
            HTTP_DATE_MAX
        );
        assert_eq!(
            parse_date_at("Sat, 01 Jan 0000 00:00:00 GMT", NOW_2025),
            HTTP_DATE_MIN - 366 * 86_400
        );
        assert_eq!(
            parse_date_at("Tue, 29 Feb 2000 00:00:00 GMT", NOW_2025),
            951_782_400
        );
        // Leap second: counted as the next minute.
        assert_eq!(
            parse_date_at("Sat, 31 Dec 2016 23:59:60 GMT", NOW_2025),
            1_483_228_800
        );
    }

    #[test]
    fn parse_failures() {
        for bad in [
            "",
            "Sun",
            "Sun, 06 Nov 1994 08:49:37 GMT x",
            "Sun, 06 Nov 1994 08:49:37 GMTx",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 08:49:37 gmt",
            "sun, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 nov 1994 08:49:37 GMT",
            "Xyz, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun,  06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 23:60:00 GMT",
            "Sun, 06 Nov 1994 23:59:61 GMT",
            "Sun, 00 Nov 1994 08:49:37 GMT",
            "Sun, 31 Nov 1994 08:49:37 GMT",
            "Thu, 29 Feb 1900 00:00:00 GMT",
            "Sun, 32 Jan 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Nov 1994 08:49:37 +0000",
            "Sun, 06 Nov +994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT\r\n",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sunday, 06 Nov 94 08:49:37 GMT",
            "Sunday, 6-Nov-94 08:49:37 GMT",
            "Sun, 06-Nov-94 08:49:37 GMT",
            "Sunday 06-Nov-94 08:49:37 GMT",
            "Sundae, 06-Nov-94 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37",
            "Sun Nov 6 08:49:37 1994",
            "Sun Nov   6 08:49:37 1994",
            "Sun Nov  6 08:49:37 94",
            "Sun Nov  6 08:49:37 1994 GMT",
            "Sun Nov  6 08:49:37 1994\n",
            "Sun Nov  0 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 GMT 1994",
            "Sün, 06 Nov 1994 08:49:37 GMT",
            "1994-11-06T08:49:37Z",
            "784111777",
        ] {
            assert_eq!(parse_date_at(bad, NOW_2025), -1, "{bad:?}");
        }
    }

    #[test]
    fn rfc850_century() {
        let ts = |s: &str, now: i64| http_date(parse_date_at(s, now)).unwrap();
        // now = 2025-06-15T15:06:40Z; limit = 2075-06-15T15:06:40Z.
        assert_eq!(
            ts("Monday, 01-Jan-00 00:00:00 GMT", NOW_2025),
            "Sat, 01 Jan 2000 00:00:00 GMT"
        );
        assert_eq!(
            ts("Monday, 15-Jun-75 15:06:40 GMT", NOW_2025),
            "Sat, 15 Jun 2075 15:06:40 GMT"
        );
        assert_eq!(
            ts("Monday, 15-Jun-75 15:06:41 GMT", NOW_2025),
            "Sun, 15 Jun 1975 15:06:41 GMT"
        );
        assert_eq!(
            ts("Monday, 01-Jan-99 00:00:00 GMT", NOW_2025),
            "Fri, 01 Jan 1999 00:00:00 GMT"
        );
        assert_eq!(
            ts("Monday, 01-Jan-70 00:00:00 GMT", NOW_2025),
            "Wed, 01 Jan 2070 00:00:00 GMT"
        );
        // now = 1970-01-01: limit 2020-01-01.
        assert_eq!(
            ts("Monday, 01-Jan-20 00:00:00 GMT", 0),
            "Wed, 01 Jan 2020 00:00:00 GMT"
        );
        assert_eq!(
            ts("Monday, 01-Jan-21 00:00:00 GMT", 0),
            "Sat, 01 Jan 1921 00:00:00 GMT"
        );
        // 29 Feb of the chosen century must exist: 2100 is not a leap year.
        let now_2040 = days_from_civil(2040, 1, 1) * SECS_PER_DAY;
        assert_eq!(
            ts("Tuesday, 29-Feb-00 00:00:00 GMT", now_2040),
            "Tue, 29 Feb 2000 00:00:00 GMT"
        );
        let now_2060 = days_from_civil(2060, 1, 1) * SECS_PER_DAY;
        assert_eq!(
            parse_date_at("Monday, 29-Feb-00 00:00:00 GMT", now_2060),
            -1
        );
        // Clamped "now" does not overflow (9999-12-31 + 50 years: year 10000).
        assert_eq!(
            parse_date_at("Monday, 01-Jan-00 00:00:00 GMT", i64::MAX),
            253_402_300_800
        );
        assert_eq!(
            parse_date_at("Monday, 01-Jan-00 00:00:00 GMT", i64::MIN),
            HTTP_DATE_MIN - 366 * 86_400
        );
    }
}
