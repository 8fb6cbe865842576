//! A minimal RFC 3339 timestamp, so "oldest Service wins" needs no date crate.
//!
//! Ordering is by the instant, not the text: `10:00:00.5Z` is later than `10:00:00Z` although
//! `'.' < 'Z'`, and `11:00:00+01:00` equals `10:00:00Z`. Lexicographic order would get both wrong.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An RFC 3339 date-time (`2026-11-26T10:00:00Z`; fractions and `±hh:mm` offsets accepted).
/// Keeps the original text for display; compares by the UTC instant it names.
#[derive(Clone)]
pub struct Timestamp {
    text: String,
    /// Seconds since 1970-01-01T00:00:00Z (may be negative).
    secs: i64,
    nanos: u32,
}

/// Why a string is not an RFC 3339 date-time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RFC 3339 timestamp {text:?}: {reason} (expected e.g. 2026-11-26T10:00:00Z)")]
pub struct TimestampError {
    pub text: String,
    pub reason: &'static str,
}

impl Timestamp {
    /// Parses `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`; `t`, `z` and a space separator are accepted
    /// as RFC 3339 allows. Calendar fields are range-checked (Feb 29 only in leap years).
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        let err = |reason| TimestampError { text: text.to_owned(), reason };
        let b = text.as_bytes();
        let num = |from: usize, len: usize| -> Option<i64> {
            let s = b.get(from..from + len)?;
            s.iter().all(u8::is_ascii_digit).then(|| s.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
        };
        let sep = |at: usize, ok: &[u8]| b.get(at).is_some_and(|c| ok.contains(c));
        let (Some(year), Some(month), Some(day)) = (num(0, 4), num(5, 2), num(8, 2)) else {
            return Err(err("bad date"));
        };
        if !(sep(4, b"-") && sep(7, b"-")) {
            return Err(err("bad date"));
        }
        if !sep(10, b"Tt ") {
            return Err(err("missing 'T' between date and time"));
        }
        let (Some(hour), Some(minute), Some(second)) = (num(11, 2), num(14, 2), num(17, 2)) else {
            return Err(err("bad time"));
        };
        if !(sep(13, b":") && sep(16, b":")) {
            return Err(err("bad time"));
        }
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return Err(err("date out of range"));
        }
        // 60 admits a leap second; it sorts like the first second of the next minute.
        if hour > 23 || minute > 59 || second > 60 {
            return Err(err("time out of range"));
        }
        let mut at = 19;
        let mut nanos = 0u32;
        if sep(at, b".") {
            at += 1;
            let start = at;
            while b.get(at).is_some_and(u8::is_ascii_digit) {
                at += 1;
            }
            let digits = &b[start..at];
            if digits.is_empty() || digits.len() > 9 {
                return Err(err("fraction must have 1 to 9 digits"));
            }
            let frac = digits.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
            nanos = frac * 10u32.pow(9 - digits.len() as u32);
        }
        let offset_secs = match b.get(at) {
            Some(b'Z' | b'z') if at + 1 == b.len() => 0,
            Some(c @ (b'+' | b'-')) if at + 6 == b.len() && sep(at + 3, b":") => {
                let (Some(oh), Some(om)) = (num(at + 1, 2), num(at + 4, 2)) else {
                    return Err(err("bad UTC offset"));
                };
                if oh > 23 || om > 59 {
                    return Err(err("UTC offset out of range"));
                }
                let off = oh * 3600 + om * 60;
                if *c == b'+' { off } else { -off }
            }
            _ => return Err(err("missing or malformed zone (use 'Z' or '+hh:mm')")),
        };
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
        Ok(Self { text: text.to_owned(), secs, nanos })
    }

    /// The text as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Seconds and nanoseconds since the Unix epoch, UTC.
    pub fn unix(&self) -> (i64, u32) {
        (self.secs, self.nanos)
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl PartialEq for Timestamp {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Timestamp {}
impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timestamp {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.secs, self.nanos).cmp(&(other.secs, other.nanos))
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.text)
    }
}
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn epoch_and_known_instants() {
        assert_eq!(ts("1970-01-01T00:00:00Z").unix(), (0, 0));
        assert_eq!(ts("2000-03-01T00:00:00Z").unix(), (951_868_800, 0));
        assert_eq!(ts("2026-11-26T10:00:00Z").unix(), (1_795_687_200, 0));
        assert_eq!(ts("1969-12-31T23:59:59Z").unix(), (-1, 0));
        assert_eq!(ts("2024-02-29T12:00:00.25Z").unix(), (1_709_208_000, 250_000_000));
    }

    #[test]
    fn orders_by_instant_not_text() {
        // Lexicographically '.' < 'Z', so text order would put the fraction first.
        assert!(ts("2026-11-26T10:00:00.5Z") > ts("2026-11-26T10:00:00Z"));
        assert_eq!(ts("2026-11-26T11:00:00+01:00"), ts("2026-11-26T10:00:00Z"));
        assert!(ts("2026-11-26T10:30:00+01:00") < ts("2026-11-26T10:00:00Z"));
        assert!(ts("2026-11-26T09:30:00-01:00") > ts("2026-11-26T10:00:00Z"));
        assert_eq!(ts("2026-11-26t10:00:00z"), ts("2026-11-26 10:00:00Z"));
        assert!(ts("1999-12-31T23:59:59.999999999Z") < ts("2000-01-01T00:00:00Z"));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "2026-11-26",
            "2026-11-26T10:00:00",   // no zone
            "2026-11-26T10:00Z",     // no seconds
            "2026-13-01T00:00:00Z",  // month
            "2026-02-29T00:00:00Z",  // not a leap year
            "2026-04-31T00:00:00Z",  // day
            "2026-11-26T24:00:00Z",  // hour
            "2026-11-26T10:00:00.Z", // empty fraction
            "2026-11-26T10:00:00.1234567890Z",
            "2026-11-26T10:00:00+0100", // offset without colon
            "2026-11-26T10:00:00+24:00",
            "2026-11-26T10:00:00Zjunk",
            "26-11-26T10:00:00Z",
            "2026/11/26T10:00:00Z",
        ] {
            let e = Timestamp::parse(bad).expect_err(bad);
            assert!(e.to_string().contains("invalid RFC 3339 timestamp"), "{e}");
        }
    }

    #[test]
    fn serde_round_trip_keeps_text() {
        let t: Timestamp = serde_json::from_str("\"2026-11-26T10:00:00+02:00\"").unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"2026-11-26T10:00:00+02:00\"");
        let e = serde_json::from_str::<Timestamp>("\"yesterday\"").unwrap_err();
        assert!(e.to_string().contains("yesterday"), "{e}");
    }
}
