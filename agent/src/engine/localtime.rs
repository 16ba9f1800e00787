//! The node's local wall-clock time for `hour_range()` and `weekday()`, without a time
//! crate: the zone comes from `TZ` (a zone name such as `Europe/Paris`, a file path, or a
//! POSIX rule such as `CET-1CEST,M3.5.0,M10.5.0/3`), else from `/etc/localtime`; the
//! zone file is read as TZif (RFC 8536), including the POSIX rule in its footer that
//! governs times after its last transition. Anything that cannot be read means UTC.

use std::time::{SystemTime, UNIX_EPOCH};

use vigo_shared::when::LocalTime;

/// Where zone files live.
const ZONEINFO: &str = "/usr/share/zoneinfo";

/// A time zone: offsets (seconds east of UTC) by transition, then a rule.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Zone {
    /// `(utc seconds, offset from then on)`, ascending.
    transitions: Vec<(i64, i32)>,
    /// Offset before the first transition (and of a zone without transitions).
    initial: i32,
    /// Governs times after the last transition.
    rule: Option<Rule>,
}

/// A POSIX TZ rule: standard offset, and optionally a daylight-saving offset with its
/// start and end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    std: i32,
    dst: Option<(i32, Date, i32, Date, i32)>,
}

/// When daylight saving starts or ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Date {
    /// `Mm.w.d`: day `d` (0 = Sunday) of week `w` (5 = last) of month `m`.
    Month(u32, u32, u32),
    /// `Jn`: day 1..=365, never counting February 29.
    Julian(u32),
    /// `n`: day 0..=365, counting February 29.
    Day(u32),
}

impl Zone {
    /// UTC.
    pub fn utc() -> Zone {
        Zone::default()
    }

    /// The zone this process runs in.
    pub fn load() -> Zone {
        match std::env::var("TZ") {
            Err(_) => std::fs::read("/etc/localtime")
                .ok()
                .and_then(|b| parse_tzif(&b))
                .unwrap_or_default(),
            Ok(tz) => {
                let name = tz.strip_prefix(':').unwrap_or(&tz);
                if name.is_empty() {
                    return Zone::utc();
                }
                let file = if name.starts_with('/') {
                    name.to_string()
                } else {
                    format!("{ZONEINFO}/{name}")
                };
                let from_file = (!name.contains(".."))
                    .then(|| std::fs::read(&file).ok())
                    .flatten();
                from_file
                    .and_then(|b| parse_tzif(&b))
                    .or_else(|| {
                        parse_rule(name).map(|rule| Zone {
                            rule: Some(rule),
                            ..Zone::default()
                        })
                    })
                    .unwrap_or_default()
            }
        }
    }

    /// The offset east of UTC, in seconds, at `t` (seconds since 1970, UTC).
    pub fn offset_at(&self, t: i64) -> i32 {
        match self.transitions.iter().rposition(|&(at, _)| at <= t) {
            None => self
                .rule
                .filter(|_| self.transitions.is_empty())
                .map_or(self.initial, |r| r.offset_at(t)),
            Some(i) if i + 1 == self.transitions.len() => match self.rule {
                Some(rule) => rule.offset_at(t),
                None => self.transitions[i].1,
            },
            Some(i) => self.transitions[i].1,
        }
    }

    /// Hour and weekday at `t`.
    pub fn local_time(&self, t: i64) -> LocalTime {
        let local = t + i64::from(self.offset_at(t));
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400);
        LocalTime {
            hour: (secs / 3600) as u8,
            // 1970-01-01 was a Thursday: 3 when Monday is 0.
            weekday: (days + 3).rem_euclid(7) as u8,
        }
    }
}

/// The current local time.
pub fn now() -> LocalTime {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    Zone::load().local_time(t)
}

impl Rule {
    fn offset_at(&self, t: i64) -> i32 {
        let Some((dst, start, start_time, end, end_time)) = self.dst else {
            return self.std;
        };
        let year = civil_from_days((t + i64::from(self.std)).div_euclid(86_400)).0;
        // The start is given in standard local time, the end in daylight local time.
        let s = days_from_civil(year, 1, 1) * 86_400
            + i64::from(start.day_of_year(year)) * 86_400
            + i64::from(start_time)
            - i64::from(self.std);
        let e = days_from_civil(year, 1, 1) * 86_400
            + i64::from(end.day_of_year(year)) * 86_400
            + i64::from(end_time)
            - i64::from(dst);
        let in_dst = if s < e {
            s <= t && t < e
        } else {
            !(e <= t && t < s)
        };
        if in_dst { dst } else { self.std }
    }
}

impl Date {
    /// Zero-based day of the year.
    fn day_of_year(self, year: i64) -> u32 {
        let leap = is_leap(year);
        match self {
            Date::Julian(n) => {
                let n = n.clamp(1, 365) - 1;
                if leap && n >= 59 { n + 1 } else { n }
            }
            Date::Day(n) => n.min(if leap { 365 } else { 364 }),
            Date::Month(m, w, d) => {
                let first = days_from_civil(year, m, 1);
                // 1970-01-01 was a Thursday: 4 when Sunday is 0.
                let first_wd = (first + 4).rem_euclid(7) as u32;
                let mut day = 1 + (d + 7 - first_wd) % 7 + (w.clamp(1, 5) - 1) * 7;
                while day > days_in_month(year, m) {
                    day -= 7;
                }
                (first + i64::from(day) - 1 - days_from_civil(year, 1, 1)) as u32
            }
        }
    }
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Parses a TZif file (versions 1 to 4): the 64-bit block when present, and the footer.
pub fn parse_tzif(bytes: &[u8]) -> Option<Zone> {
    let header = |at: usize| -> Option<(u8, [usize; 6])> {
        let h = bytes.get(at..at + 44)?;
        if &h[..4] != b"TZif" {
            return None;
        }
        let mut counts = [0usize; 6];
        for (i, c) in counts.iter_mut().enumerate() {
            let b = &h[20 + 4 * i..24 + 4 * i];
            *c = u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
        }
        Some((h[4], counts))
    };
    // Data block length for counts [isut, isstd, leap, time, type, char] and time size,
    // computed with checked arithmetic: the counts come from the file.
    let block_len = |c: [usize; 6], t: usize| -> Option<usize> {
        let parts = [
            c[3].checked_mul(t)?,
            c[3],
            c[4].checked_mul(6)?,
            c[5],
            c[2].checked_mul(t + 4)?,
            c[1],
            c[0],
        ];
        parts.iter().try_fold(0usize, |sum, &p| sum.checked_add(p))
    };

    let (version, counts) = header(0)?;
    let (start, counts, tsize) = if version >= b'2' {
        let second = block_len(counts, 4)?.checked_add(44)?;
        let (_, c2) = header(second)?;
        (second + 44, c2, 8)
    } else {
        (44, counts, 4)
    };
    let [_, _, _, timecnt, typecnt, _] = counts;
    let data = bytes.get(start..start.checked_add(block_len(counts, tsize)?)?)?;
    // `data` is exactly one block long, so the slices below are within it.
    let times = &data[..timecnt * tsize];
    let idxs = &data[timecnt * tsize..timecnt * tsize + timecnt];
    let types = &data[timecnt * (tsize + 1)..timecnt * (tsize + 1) + typecnt * 6];
    let utoff = |i: usize| -> Option<i32> {
        let t = types.get(i * 6..i * 6 + 4)?;
        Some(i32::from_be_bytes([t[0], t[1], t[2], t[3]]))
    };
    let mut transitions = Vec::with_capacity(timecnt);
    for i in 0..timecnt {
        let raw = &times[i * tsize..(i + 1) * tsize];
        let at = if tsize == 8 {
            i64::from_be_bytes(raw.try_into().ok()?)
        } else {
            i64::from(i32::from_be_bytes(raw.try_into().ok()?))
        };
        transitions.push((at, utoff(usize::from(idxs[i]))?));
    }
    let rule = if version >= b'2' {
        let footer = bytes.get(start + data.len()..)?;
        let text = std::str::from_utf8(footer).ok()?;
        text.trim_matches('\n').lines().next().and_then(parse_rule)
    } else {
        None
    };
    Some(Zone {
        transitions,
        initial: utoff(0).unwrap_or(0),
        rule,
    })
}

/// Parses a POSIX TZ rule (`EST5EDT,M3.2.0,M11.1.0`, `<+0330>-3:30`, `UTC0`).
pub fn parse_rule(text: &str) -> Option<Rule> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    p.name()?;
    let std = -p.offset()?;
    if p.done() {
        return Some(Rule { std, dst: None });
    }
    p.name()?;
    let dst = if p.peek().is_some_and(|c| c != b',') {
        -p.offset()?
    } else {
        std + 3600
    };
    // Without rules, POSIX leaves the dates to the implementation; glibc uses the US ones.
    let (start, start_time, end, end_time) = if p.done() {
        (Date::Month(3, 2, 0), 7200, Date::Month(11, 1, 0), 7200)
    } else {
        p.eat(b',')?;
        let start = p.date()?;
        let start_time = p.time_suffix()?;
        p.eat(b',')?;
        let end = p.date()?;
        let end_time = p.time_suffix()?;
        (start, start_time, end, end_time)
    };
    p.done().then_some(Rule {
        std,
        dst: Some((dst, start, start_time, end, end_time)),
    })
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn done(&self) -> bool {
        self.i == self.s.len()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    fn name(&mut self) -> Option<()> {
        if self.peek()? == b'<' {
            let close = self.s[self.i..].iter().position(|&c| c == b'>')?;
            self.i += close + 1;
            return Some(());
        }
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
            self.i += 1;
        }
        (self.i - start >= 3).then_some(())
    }

    fn number(&mut self) -> Option<i32> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) && self.i - start < 3 {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()?
            .parse()
            .ok()
    }

    /// `[+-]hh[:mm[:ss]]` in seconds.
    fn offset(&mut self) -> Option<i32> {
        let sign = match self.peek()? {
            b'-' => {
                self.i += 1;
                -1
            }
            b'+' => {
                self.i += 1;
                1
            }
            _ => 1,
        };
        let mut secs = self.number()? * 3600;
        if self.eat(b':').is_some() {
            secs += self.number()? * 60;
            if self.eat(b':').is_some() {
                secs += self.number()?;
            }
        }
        Some(sign * secs)
    }

    fn date(&mut self) -> Option<Date> {
        match self.peek()? {
            b'M' => {
                self.i += 1;
                let m = self.number()?;
                self.eat(b'.')?;
                let w = self.number()?;
                self.eat(b'.')?;
                let d = self.number()?;
                let ok = (1..=12).contains(&m) && (1..=5).contains(&w) && (0..=6).contains(&d);
                ok.then_some(Date::Month(m as u32, w as u32, d as u32))
            }
            b'J' => {
                self.i += 1;
                Some(Date::Julian(self.number()?.clamp(1, 365) as u32))
            }
            _ => Some(Date::Day(self.number()?.clamp(0, 365) as u32)),
        }
    }

    fn time_suffix(&mut self) -> Option<i32> {
        if self.eat(b'/').is_some() {
            self.offset()
        } else {
            Some(7200)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(y: i64, m: u32, d: u32, h: i64) -> i64 {
        days_from_civil(y, m, d) * 86_400 + h * 3600
    }

    #[test]
    fn calendar() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        // 2026-11-29 is a Sunday.
        assert_eq!(
            Zone::utc().local_time(at(2026, 11, 29, 13)),
            LocalTime {
                hour: 13,
                weekday: 6
            }
        );
    }

    #[test]
    fn posix_rules() {
        let check = |rule: &str, t: i64, offset: i32| {
            let r = parse_rule(rule).unwrap_or_else(|| panic!("{rule} parses"));
            assert_eq!(
                r.offset_at(t),
                offset,
                "{rule} at {:?}",
                civil_from_days(t.div_euclid(86_400))
            );
        };
        let paris = "CET-1CEST,M3.5.0,M10.5.0/3";
        check(paris, at(2026, 1, 15, 12), 3600);
        check(paris, at(2026, 7, 1, 12), 7200);
        // 2026-03-29 01:00 UTC is 02:00 CET: the switch.
        check(paris, at(2026, 3, 29, 0), 3600);
        check(paris, at(2026, 3, 29, 1), 7200);
        check(paris, at(2026, 10, 25, 0), 7200);
        check(paris, at(2026, 10, 25, 1), 3600);
        let ny = "EST5EDT,M3.2.0,M11.1.0";
        check(ny, at(2026, 3, 8, 6), -18000);
        check(ny, at(2026, 3, 8, 7), -14400);
        check("AEST-10AEDT,M10.1.0,M4.1.0/3", at(2026, 1, 1, 0), 39600);
        check("AEST-10AEDT,M10.1.0,M4.1.0/3", at(2026, 6, 1, 0), 36000);
        check("<+0530>-5:30", 0, 19800);
        check("UTC0", 0, 0);
        assert_eq!(parse_rule("X"), None);
        assert_eq!(parse_rule("CET-1CEST,M13.5.0,M10.5.0"), None);
    }

    #[test]
    fn hostile_tzif_files_do_not_panic() {
        let mut huge = b"TZif2".to_vec();
        huge.resize(20, 0);
        huge.extend_from_slice(&[0xff; 24]);
        assert_eq!(parse_tzif(&huge), None);
        let Ok(bytes) = std::fs::read(format!("{ZONEINFO}/America/New_York")) else {
            return;
        };
        for len in 0..bytes.len() {
            let _ = parse_tzif(&bytes[..len]);
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0xa5;
            if let Some(zone) = parse_tzif(&b) {
                let _ = zone.local_time(1_800_000_000);
            }
        }
    }

    #[test]
    fn tzif_files_of_this_machine_agree_with_their_rules() {
        // Only where the zone database is installed; the rules above cover the logic.
        let Ok(bytes) = std::fs::read(format!("{ZONEINFO}/Europe/Paris")) else {
            return;
        };
        let zone = parse_tzif(&bytes).expect("a valid TZif file");
        assert_eq!(zone.offset_at(at(2026, 7, 1, 12)), 7200);
        assert_eq!(zone.offset_at(at(2026, 1, 1, 12)), 3600);
        assert_eq!(zone.offset_at(at(1990, 7, 1, 12)), 7200);
        assert_eq!(zone.offset_at(at(2090, 1, 1, 12)), 3600);
        assert_eq!(
            zone.local_time(at(2026, 7, 1, 21)),
            LocalTime {
                hour: 23,
                weekday: 2
            }
        );
    }
}
