//! Go's `time.Format` layout language (reference time `Mon Jan 2 15:04:05 MST 2006`).

use time::OffsetDateTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    Pm,
    LowerPm,
    Tz,
    /// Numeric zone; `iso` prints `Z` for UTC. `colon` between parts, `minutes`, `seconds`.
    Zone {
        iso: bool,
        colon: bool,
        minutes: bool,
        seconds: bool,
    },
    /// Fractional seconds: separator, digit count, whether trailing zeros are trimmed.
    Frac {
        sep: u8,
        digits: usize,
        trim: bool,
    },
}

fn starts_lower(s: &[u8]) -> bool {
    matches!(s.first(), Some(b'a'..=b'z'))
}

/// Finds the next layout element: (literal prefix length, element, bytes consumed after it).
fn next_chunk(l: &[u8]) -> Option<(usize, Chunk, usize)> {
    let at = |i: usize, s: &str| l.len() >= i + s.len() && &l[i..i + s.len()] == s.as_bytes();
    for i in 0..l.len() {
        let found = match l[i] {
            b'J' if at(i, "Jan") => {
                if at(i, "January") {
                    Some((Chunk::LongMonth, 7))
                } else if !starts_lower(&l[i + 3..]) {
                    Some((Chunk::Month, 3))
                } else {
                    None
                }
            }
            b'M' if at(i, "Mon") => {
                if at(i, "Monday") {
                    Some((Chunk::LongWeekDay, 6))
                } else if !starts_lower(&l[i + 3..]) {
                    Some((Chunk::WeekDay, 3))
                } else {
                    None
                }
            }
            b'M' if at(i, "MST") => Some((Chunk::Tz, 3)),
            b'0' if l.len() >= i + 2 && (b'1'..=b'6').contains(&l[i + 1]) => {
                let c = [
                    Chunk::ZeroMonth,
                    Chunk::ZeroDay,
                    Chunk::ZeroHour12,
                    Chunk::ZeroMinute,
                    Chunk::ZeroSecond,
                    Chunk::Year,
                ][(l[i + 1] - b'1') as usize];
                Some((c, 2))
            }
            b'0' if at(i, "002") => Some((Chunk::ZeroYearDay, 3)),
            b'1' => {
                if at(i, "15") {
                    Some((Chunk::Hour, 2))
                } else {
                    Some((Chunk::NumMonth, 1))
                }
            }
            b'2' => {
                if at(i, "2006") {
                    Some((Chunk::LongYear, 4))
                } else {
                    Some((Chunk::Day, 1))
                }
            }
            b'_' if at(i, "_2") => {
                if at(i + 1, "2006") {
                    // `_2006` is a literal underscore followed by the year.
                    return Some((i + 1, Chunk::LongYear, 4));
                }
                Some((Chunk::UnderDay, 2))
            }
            b'_' if at(i, "__2") => Some((Chunk::UnderYearDay, 3)),
            b'3' => Some((Chunk::Hour12, 1)),
            b'4' => Some((Chunk::Minute, 1)),
            b'5' => Some((Chunk::Second, 1)),
            b'P' if at(i, "PM") => Some((Chunk::Pm, 2)),
            b'p' if at(i, "pm") => Some((Chunk::LowerPm, 2)),
            b'-' | b'Z' => {
                let iso = l[i] == b'Z';
                let z = |colon, minutes, seconds| Chunk::Zone {
                    iso,
                    colon,
                    minutes,
                    seconds,
                };
                let p = if iso { "Z" } else { "-" };
                if at(i, &format!("{p}070000")) {
                    Some((z(false, true, true), 7))
                } else if at(i, &format!("{p}07:00:00")) {
                    Some((z(true, true, true), 9))
                } else if at(i, &format!("{p}0700")) {
                    Some((z(false, true, false), 5))
                } else if at(i, &format!("{p}07:00")) {
                    Some((z(true, true, false), 6))
                } else if at(i, &format!("{p}07")) {
                    Some((z(false, false, false), 3))
                } else {
                    None
                }
            }
            c @ (b'.' | b',') if i + 1 < l.len() && matches!(l[i + 1], b'0' | b'9') => {
                let ch = l[i + 1];
                let mut j = i + 1;
                while j < l.len() && l[j] == ch {
                    j += 1;
                }
                if j < l.len() && l[j].is_ascii_digit() {
                    None
                } else {
                    Some((
                        Chunk::Frac {
                            sep: c,
                            digits: j - (i + 1),
                            trim: ch == b'9',
                        },
                        j - i,
                    ))
                }
            }
            _ => None,
        };
        if let Some((chunk, len)) = found {
            return Some((i, chunk, len));
        }
    }
    None
}

fn push_int(out: &mut String, x: i64, width: usize) {
    if x < 0 {
        out.push('-');
    }
    let s = x.unsigned_abs().to_string();
    for _ in s.len()..width {
        out.push('0');
    }
    out.push_str(&s);
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Formats `t` (in its own offset) with a Go layout, as Go's `Time.Format` does.
///
/// The zone abbreviation (`MST`) prints `UTC` at offset zero and the numeric offset
/// (`-0700` form) otherwise, like a Go time in `time.UTC` or a nameless fixed zone.
pub(crate) fn format(t: &OffsetDateTime, layout: &str) -> String {
    let mut out = String::with_capacity(layout.len() + 10);
    let mut rest = layout.as_bytes();
    let year = i64::from(t.year());
    let month = u8::from(t.month()) as usize;
    let day = i64::from(t.day());
    let yday = i64::from(t.ordinal());
    let hour = i64::from(t.hour());
    let offset = i64::from(t.offset().whole_seconds());
    while !rest.is_empty() {
        let Some((prefix, chunk, len)) = next_chunk(rest) else {
            out.push_str(&String::from_utf8_lossy(rest));
            break;
        };
        out.push_str(&String::from_utf8_lossy(&rest[..prefix]));
        rest = &rest[prefix + len..];
        match chunk {
            Chunk::Year => push_int(&mut out, year.abs() % 100, 2),
            Chunk::LongYear => push_int(&mut out, year, 4),
            Chunk::Month => out.push_str(&MONTHS[month - 1][..3]),
            Chunk::LongMonth => out.push_str(MONTHS[month - 1]),
            Chunk::NumMonth => push_int(&mut out, month as i64, 0),
            Chunk::ZeroMonth => push_int(&mut out, month as i64, 2),
            Chunk::WeekDay => {
                out.push_str(&DAYS[t.weekday().number_days_from_sunday() as usize][..3])
            }
            Chunk::LongWeekDay => {
                out.push_str(DAYS[t.weekday().number_days_from_sunday() as usize])
            }
            Chunk::Day => push_int(&mut out, day, 0),
            Chunk::UnderDay => {
                if day < 10 {
                    out.push(' ');
                }
                push_int(&mut out, day, 0);
            }
            Chunk::ZeroDay => push_int(&mut out, day, 2),
            Chunk::UnderYearDay => {
                if yday < 100 {
                    out.push(' ');
                    if yday < 10 {
                        out.push(' ');
                    }
                }
                push_int(&mut out, yday, 0);
            }
            Chunk::ZeroYearDay => push_int(&mut out, yday, 3),
            Chunk::Hour => push_int(&mut out, hour, 2),
            Chunk::Hour12 | Chunk::ZeroHour12 => {
                let h = if hour % 12 == 0 { 12 } else { hour % 12 };
                push_int(&mut out, h, if chunk == Chunk::Hour12 { 0 } else { 2 });
            }
            Chunk::Minute => push_int(&mut out, i64::from(t.minute()), 0),
            Chunk::ZeroMinute => push_int(&mut out, i64::from(t.minute()), 2),
            Chunk::Second => push_int(&mut out, i64::from(t.second()), 0),
            Chunk::ZeroSecond => push_int(&mut out, i64::from(t.second()), 2),
            Chunk::Pm => out.push_str(if hour >= 12 { "PM" } else { "AM" }),
            Chunk::LowerPm => out.push_str(if hour >= 12 { "pm" } else { "am" }),
            Chunk::Zone {
                iso,
                colon,
                minutes,
                seconds,
            } => {
                if iso && offset == 0 {
                    out.push('Z');
                    continue;
                }
                let abs = offset.abs();
                out.push(if offset < 0 { '-' } else { '+' });
                push_int(&mut out, abs / 3600, 2);
                if colon {
                    out.push(':');
                }
                if minutes {
                    push_int(&mut out, abs / 60 % 60, 2);
                }
                if seconds {
                    if colon {
                        out.push(':');
                    }
                    push_int(&mut out, abs % 60, 2);
                }
            }
            Chunk::Tz => {
                if offset == 0 {
                    out.push_str("UTC");
                } else {
                    let abs = offset.abs() / 60;
                    out.push(if offset < 0 { '-' } else { '+' });
                    push_int(&mut out, abs / 60, 2);
                    push_int(&mut out, abs % 60, 2);
                }
            }
            Chunk::Frac { sep, digits, trim } => {
                let nanos = t.nanosecond();
                if trim && (digits == 0 || nanos == 0) {
                    continue;
                }
                let mut frac = format!("{nanos:09}");
                frac.truncate(digits.min(9));
                if trim {
                    while frac.ends_with('0') {
                        frac.pop();
                    }
                    if frac.is_empty() {
                        continue;
                    }
                }
                out.push(sep as char);
                out.push_str(&frac);
            }
        }
    }
    out
}
