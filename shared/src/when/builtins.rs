//! The builtin functions of `when:` expressions: their names, sides and argument
//! rules, plus the pure helpers some of them need (version and weekday parsing).

use alloc::format;
use alloc::string::String;
use core::cmp::Ordering;

use super::ast::Kind;
use super::{Side, Value};
use crate::glob::validate_glob;

/// Every builtin, by name, with the side that can evaluate it. The table order is
/// the order used when listing the builtins in error messages.
pub const BUILTINS: &[(&str, Side)] = &[
    ("os_family", Side::Server),
    ("os", Side::Server),
    ("arch", Side::Server),
    ("hostname_matches", Side::Server),
    ("var", Side::Server),
    ("fact", Side::Server),
    ("version_ge", Side::Server),
    ("version_lt", Side::Server),
    ("has_command", Side::Agent),
    ("file_exists", Side::Agent),
    ("hour_range", Side::Agent),
    ("weekday", Side::Agent),
];

/// A builtin function, resolved from its name at parse time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Builtin {
    OsFamily,
    Os,
    Arch,
    HostnameMatches,
    Var,
    Fact,
    VersionGe,
    VersionLt,
    HasCommand,
    FileExists,
    HourRange,
    Weekday,
}

impl Builtin {
    pub(super) fn from_name(name: &str) -> Option<Builtin> {
        let builtin = match name {
            "os_family" => Builtin::OsFamily,
            "os" => Builtin::Os,
            "arch" => Builtin::Arch,
            "hostname_matches" => Builtin::HostnameMatches,
            "var" => Builtin::Var,
            "fact" => Builtin::Fact,
            "version_ge" => Builtin::VersionGe,
            "version_lt" => Builtin::VersionLt,
            "has_command" => Builtin::HasCommand,
            "file_exists" => Builtin::FileExists,
            "hour_range" => Builtin::HourRange,
            "weekday" => Builtin::Weekday,
            _ => return None,
        };
        Some(builtin)
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Builtin::OsFamily => "os_family",
            Builtin::Os => "os",
            Builtin::Arch => "arch",
            Builtin::HostnameMatches => "hostname_matches",
            Builtin::Var => "var",
            Builtin::Fact => "fact",
            Builtin::VersionGe => "version_ge",
            Builtin::VersionLt => "version_lt",
            Builtin::HasCommand => "has_command",
            Builtin::FileExists => "file_exists",
            Builtin::HourRange => "hour_range",
            Builtin::Weekday => "weekday",
        }
    }

    pub(super) fn side(self) -> Side {
        match self {
            Builtin::HasCommand | Builtin::FileExists | Builtin::HourRange | Builtin::Weekday => {
                Side::Agent
            }
            _ => Side::Server,
        }
    }

    /// How the builtin is called, for error messages.
    fn usage(self) -> &'static str {
        match self {
            Builtin::OsFamily => "os_family('debian', ...)",
            Builtin::Os => "os('linux', ...)",
            Builtin::Arch => "arch('x86_64', ...)",
            Builtin::HostnameMatches => "hostname_matches('*.web.prod', ...)",
            Builtin::Var => "var('name')",
            Builtin::Fact => "fact('name')",
            Builtin::VersionGe => "version_ge(facts.os_version, '12')",
            Builtin::VersionLt => "version_lt(facts.os_version, '12')",
            Builtin::HasCommand => "has_command('nginx')",
            Builtin::FileExists => "file_exists('/etc/nginx/nginx.conf')",
            Builtin::HourRange => "hour_range(2, 5)",
            Builtin::Weekday => "weekday('sat', 'sun')",
        }
    }

    /// The fewest and most arguments the builtin takes; `None` means no limit.
    fn arity(self) -> (usize, Option<usize>) {
        match self {
            Builtin::OsFamily
            | Builtin::Os
            | Builtin::Arch
            | Builtin::HostnameMatches
            | Builtin::Weekday => (1, None),
            Builtin::Var | Builtin::Fact | Builtin::HasCommand | Builtin::FileExists => {
                (1, Some(1))
            }
            Builtin::VersionGe | Builtin::VersionLt | Builtin::HourRange => (2, Some(2)),
        }
    }

    /// The kinds of value each argument may have.
    fn arg_kinds(self) -> &'static [Kind] {
        match self {
            Builtin::VersionGe | Builtin::VersionLt => &[Kind::Str, Kind::Int],
            Builtin::HourRange => &[Kind::Int],
            _ => &[Kind::Str],
        }
    }

    /// What the builtin returns when that is known before evaluation: `var()` and
    /// `fact()` return whatever the variable or fact holds.
    pub(super) fn returns(self) -> Option<Kind> {
        match self {
            Builtin::Var | Builtin::Fact => None,
            _ => Some(Kind::Bool),
        }
    }
}

/// Checks the number of arguments of a call.
pub(super) fn check_arity(builtin: Builtin, count: usize) -> Result<(), String> {
    let (min, max) = builtin.arity();
    let ok = count >= min && max.is_none_or(|max| count <= max);
    if ok {
        return Ok(());
    }
    let name = builtin.name();
    let arguments = |n: usize| match n {
        1 => String::from("1 argument"),
        n => format!("{n} arguments"),
    };
    let expected = match max {
        Some(max) if max == min => format!("exactly {}", arguments(max)),
        Some(max) => format!("{min} to {max} arguments"),
        None => format!("at least {}", arguments(min)),
    };
    Err(format!(
        "{name}() takes {expected}, got {count}; write e.g. {}",
        builtin.usage()
    ))
}

/// Checks that argument number `index` (0-based), known to be of `kind`, has a
/// kind the builtin accepts.
pub(super) fn check_arg_kind(builtin: Builtin, index: usize, kind: Kind) -> Result<(), String> {
    let allowed = builtin.arg_kinds();
    if allowed.contains(&kind) {
        return Ok(());
    }
    let wanted = match allowed {
        [Kind::Int] => "an integer",
        [Kind::Str] => "a string",
        _ => "a string or an integer",
    };
    Err(format!(
        "argument {} of {}() must be {wanted}, not {}; write e.g. {}",
        index + 1,
        builtin.name(),
        kind.describe(),
        builtin.usage()
    ))
}

/// Checks argument number `index` (0-based) whose value is known: its kind, and
/// for some builtins its content (a valid glob, hour or weekday).
pub(super) fn check_arg_value(builtin: Builtin, index: usize, value: &Value) -> Result<(), String> {
    check_arg_kind(builtin, index, Kind::of(value))?;
    match (builtin, value) {
        (Builtin::HostnameMatches, Value::Str(pattern)) => {
            validate_glob(pattern).map_err(|e| format!("in hostname_matches(): {e}"))
        }
        (Builtin::Var | Builtin::Fact, Value::Str(name)) if !is_name(name) => Err(format!(
            "'{name}' is not a valid name for {}(); names are letters, digits, '_' and '.'",
            builtin.name()
        )),
        (Builtin::HasCommand | Builtin::FileExists, Value::Str(s)) if s.is_empty() => Err(format!(
            "{}() needs a non-empty argument; write e.g. {}",
            builtin.name(),
            builtin.usage()
        )),
        (Builtin::HourRange, Value::Int(hour)) => {
            // The start is an hour of the day; the end may be 24 to mean "until midnight".
            let max = if index == 0 { 23 } else { 24 };
            if (0..=max).contains(hour) {
                Ok(())
            } else {
                Err(format!(
                    "hour {hour} is out of range in hour_range(); use 0 to {max}"
                ))
            }
        }
        (Builtin::Weekday, Value::Str(day)) => match parse_weekday(day) {
            Some(_) => Ok(()),
            None => Err(format!(
                "'{day}' is not a weekday; use mon, tue, wed, thu, fri, sat or sun"
            )),
        },
        _ => Ok(()),
    }
}

/// Whether `name` is a fact or variable name: identifier segments joined by dots.
pub(super) fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|segment| {
            let mut chars = segment.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// Parses a weekday name, short or full, ignoring ASCII case: 0 = Monday .. 6 = Sunday.
pub(super) fn parse_weekday(name: &str) -> Option<u8> {
    const DAYS: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let position = DAYS
        .iter()
        .position(|full| full.eq_ignore_ascii_case(name) || full[..3].eq_ignore_ascii_case(name))?;
    // There are seven days, so the position always fits.
    u8::try_from(position).ok()
}

/// Whether `hour` lies in `start <= hour < end`, wrapping past midnight when
/// `start > end` (so `hour_range(22, 6)` covers the night).
pub(super) fn in_hour_range(hour: i64, start: i64, end: i64) -> bool {
    if start <= end {
        start <= hour && hour < end
    } else {
        hour >= start || hour < end
    }
}

/// Compares dotted versions segment by segment: numerically when both segments
/// are all digits, as strings otherwise; a missing segment counts as `0`. So
/// `1.10 > 1.9` and `12.4 >= 12`.
pub(super) fn compare_versions(a: &str, b: &str) -> Ordering {
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        let (x, y) = match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (x, y) => (x.unwrap_or("0"), y.unwrap_or("0")),
        };
        let order = if is_number(x) && is_number(y) {
            compare_numbers(x, y)
        } else {
            x.cmp(y)
        };
        if order != Ordering::Equal {
            return order;
        }
    }
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Compares two strings of digits as numbers of any size.
fn compare_numbers(x: &str, y: &str) -> Ordering {
    let x = x.trim_start_matches('0');
    let y = y.trim_start_matches('0');
    x.len().cmp(&y.len()).then_with(|| x.cmp(y))
}

/// The builtin whose name is closest to `name`, if one is within two edits. Names
/// of one or two characters only get suggestions closer than their own length, so
/// that `x` does not turn into `os`.
pub(super) fn suggest(name: &str) -> Option<&'static str> {
    let length = name.chars().count();
    BUILTINS
        .iter()
        .map(|&(candidate, _)| (edit_distance(name, candidate), candidate))
        .filter(|&(distance, _)| distance <= 2 && distance < length)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance between two strings, counted in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: alloc::vec::Vec<char> = b.chars().collect();
    // One row of the dynamic-programming table: distances from a prefix of `a`.
    let mut row: alloc::vec::Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_and_enum_agree() {
        for &(name, side) in BUILTINS {
            let builtin = Builtin::from_name(name);
            assert_eq!(builtin.map(Builtin::name), Some(name));
            assert_eq!(builtin.map(Builtin::side), Some(side));
        }
    }

    fn check_versions(cases: &[(&str, &str, Ordering)]) {
        for &(a, b, expected) in cases {
            assert_eq!(
                compare_versions(a, b),
                expected,
                "compare_versions({a:?}, {b:?})"
            );
        }
    }

    #[test]
    fn versions() {
        use Ordering::{Equal, Greater, Less};
        check_versions(&[
            ("12", "12", Equal),
            ("12.4", "12", Greater),
            ("12", "12.0.0", Equal),
            ("1.10", "1.9", Greater),
            ("1.9", "1.10", Less),
            ("2", "10", Less),
            ("010", "10", Equal),
            ("99999999999999999999999", "9", Greater),
            ("1.0rc1", "1.0", Greater),
            ("1.a", "1.b", Less),
            ("", "0", Less),
        ]);
    }

    #[test]
    fn weekdays() {
        for (name, expected) in [
            ("mon", Some(0)),
            ("Monday", Some(0)),
            ("SUN", Some(6)),
            ("thursday", Some(3)),
            ("thurs", None),
            ("", None),
        ] {
            assert_eq!(parse_weekday(name), expected, "parse_weekday({name:?})");
        }
    }

    #[test]
    fn hour_ranges() {
        for (hour, start, end, expected) in [
            (2, 2, 5, true),
            (4, 2, 5, true),
            (5, 2, 5, false),
            (23, 22, 6, true),
            (0, 22, 6, true),
            (6, 22, 6, false),
            (12, 22, 6, false),
            (3, 3, 3, false),
            (23, 0, 24, true),
        ] {
            assert_eq!(
                in_hour_range(hour, start, end),
                expected,
                "{hour} in {start}..{end}"
            );
        }
    }

    #[test]
    fn suggestions() {
        for (name, expected) in [
            ("os_famly", Some("os_family")),
            ("has_cmd", None),
            ("hascommand", Some("has_command")),
            ("weekdays", Some("weekday")),
            ("frobnicate", None),
            ("x", None),
            ("o", None),
            ("oss", Some("os")),
        ] {
            assert_eq!(suggest(name), expected, "suggest({name:?})");
        }
    }

    #[test]
    fn names() {
        for (name, expected) in [
            ("os", true),
            ("os.name", true),
            ("_x1", true),
            ("", false),
            ("os.", false),
            ("1x", false),
            ("a-b", false),
        ] {
            assert_eq!(is_name(name), expected, "is_name({name:?})");
        }
    }
}
