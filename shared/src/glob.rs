//! Host-name glob matching (`*.web.prod`, `db0?.staging`), shared by node rules,
//! enrollment tokens and the `hostname_matches()` builtin.
//!
//! The syntax is the familiar shell one: `*` matches any run of characters (dots
//! included, possibly none), `?` exactly one character, `[abc]`, `[a-z]` and `[!a-z]`
//! one character from (or not from) a class. Everything else matches itself, ignoring
//! ASCII case because host names are case-insensitive.

use alloc::vec::Vec;
use core::fmt;

/// Why a glob pattern was rejected by [`validate_glob`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GlobError {
    /// The pattern is the empty string, which would match only an empty host name.
    Empty,
    /// A `[` opens a character class that is never closed by `]`.
    UnclosedClass {
        /// 1-based character column of the `[`.
        column: usize,
    },
    /// A range such as `[z-a]` whose end comes before its start and so matches nothing.
    ReversedRange {
        /// 1-based character column of the range's first character.
        column: usize,
        /// The first character of the range.
        start: char,
        /// The last character of the range.
        end: char,
    },
}

impl core::error::Error for GlobError {}

impl fmt::Display for GlobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GlobError::Empty => write!(f, "the host pattern is empty; use '*' to match every host"),
            GlobError::UnclosedClass { column } => write!(
                f,
                "the '[' at column {column} is never closed; add a ']' or remove the '['"
            ),
            GlobError::ReversedRange { column, start, end } => write!(
                f,
                "the range '{start}-{end}' at column {column} is reversed; write it as '{end}-{start}'"
            ),
        }
    }
}

/// Checks that `pattern` is a well-formed glob: not empty, every `[` closed, no
/// reversed ranges. [`glob_match`] accepts any pattern (an unclosed `[` matches a
/// literal `[`), so call this where patterns are written, to report mistakes early.
pub fn validate_glob(pattern: &str) -> Result<(), GlobError> {
    if pattern.is_empty() {
        return Err(GlobError::Empty);
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '[' {
            let Some(class) = parse_class(&chars, i) else {
                return Err(GlobError::UnclosedClass { column: i + 1 });
            };
            for (item, &column) in class.items.iter().zip(&class.item_columns) {
                if let ClassItem::Range(start, end) = *item
                    && start > end
                {
                    return Err(GlobError::ReversedRange { column, start, end });
                }
            }
            i = class.next;
        } else {
            i += 1;
        }
    }
    Ok(())
}

/// Reports whether `text` matches the glob `pattern`, ignoring ASCII case.
///
/// Never panics and runs in O(pattern × text) time at worst: a `*` is retried one
/// character further on mismatch, and only the most recent `*` is ever retried.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();

    let mut p = 0;
    let mut t = 0;
    // Where to resume after the most recent `*`: the pattern position just after it
    // and the text position it has swallowed up to so far.
    let mut star: Option<(usize, usize)> = None;

    while t < text.len() {
        if p < pattern.len() {
            if pattern[p] == '*' {
                star = Some((p + 1, t));
                p += 1;
                continue;
            }
            if let Some(next) = match_one(&pattern, p, text[t]) {
                p = next;
                t += 1;
                continue;
            }
        }
        // Mismatch: let the last `*` swallow one more character and try again.
        match star {
            Some((star_p, star_t)) => {
                p = star_p;
                t = star_t + 1;
                star = Some((star_p, star_t + 1));
            }
            None => return false,
        }
    }
    // The text is used up: what is left of the pattern must be able to match nothing.
    pattern[p..].iter().all(|&c| c == '*')
}

/// Matches the single pattern element at `pattern[p]` (not a `*`) against `c`,
/// returning the position of the next element on success.
fn match_one(pattern: &[char], p: usize, c: char) -> Option<usize> {
    match pattern[p] {
        '?' => Some(p + 1),
        '[' => match parse_class(pattern, p) {
            Some(class) => class.matches(c).then_some(class.next),
            // An unclosed `[` stands for itself.
            None => (c == '[').then_some(p + 1),
        },
        literal => literal.eq_ignore_ascii_case(&c).then_some(p + 1),
    }
}

#[derive(Clone, Copy)]
enum ClassItem {
    Single(char),
    Range(char, char),
}

/// A parsed `[...]` character class.
struct Class {
    negated: bool,
    items: Vec<ClassItem>,
    /// 1-based column of each item, for error messages.
    item_columns: Vec<usize>,
    /// Pattern position just after the closing `]`.
    next: usize,
}

impl Class {
    fn matches(&self, c: char) -> bool {
        let lower = c.to_ascii_lowercase();
        let upper = c.to_ascii_uppercase();
        let found = self.items.iter().any(|item| match *item {
            ClassItem::Single(s) => s.eq_ignore_ascii_case(&c),
            ClassItem::Range(start, end) => {
                [c, lower, upper].iter().any(|x| start <= *x && *x <= end)
            }
        });
        found != self.negated
    }
}

/// Parses the class whose `[` is at `pattern[open]`; `None` if it is never closed.
/// As in the shell, a `]` right after `[` or `[!` is a member, not the end.
fn parse_class(pattern: &[char], open: usize) -> Option<Class> {
    let mut i = open + 1;
    let negated = pattern.get(i) == Some(&'!');
    if negated {
        i += 1;
    }
    let mut items = Vec::new();
    let mut item_columns = Vec::new();
    loop {
        let c = *pattern.get(i)?;
        if c == ']' && !items.is_empty() {
            return Some(Class {
                negated,
                items,
                item_columns,
                next: i + 1,
            });
        }
        item_columns.push(i + 1);
        // `a-z` is a range; a `-` first or last in the class is a literal.
        match (pattern.get(i + 1), pattern.get(i + 2)) {
            (Some('-'), Some(&end)) if end != ']' => {
                items.push(ClassItem::Range(c, end));
                i += 3;
            }
            _ => {
                items.push(ClassItem::Single(c));
                i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_match(cases: &[(&str, &str, bool)]) {
        for &(pattern, text, expected) in cases {
            assert_eq!(
                glob_match(pattern, text),
                expected,
                "glob_match({pattern:?}, {text:?})"
            );
        }
    }

    #[test]
    fn matching() {
        check_match(&[
            // Literals, ignoring ASCII case.
            ("web01", "web01", true),
            ("WEB01", "web01", true),
            ("web01", "web02", false),
            ("web01", "web011", false),
            ("web011", "web01", false),
            ("", "", true),
            ("", "a", false),
            // `*` matches any run, dots included, possibly empty.
            ("*", "", true),
            ("*", "anything.at.all", true),
            ("*.web.prod", "a.web.prod", true),
            ("*.web.prod", "a.b.web.prod", true),
            ("*.web.prod", ".web.prod", true),
            ("*.web.prod", "web.prod", false),
            ("*.web.prod", "db01.staging", false),
            ("db*", "db", true),
            ("db*01", "db-eu-01", true),
            ("db*01", "db-eu-02", false),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "acb", false),
            ("**", "x", true),
            ("*a", "aaaa", true),
            ("*ab", "aab", true),
            // `?` matches exactly one character.
            ("db0?.staging", "db01.staging", true),
            ("db0?.staging", "db0.staging", false),
            ("db0?.staging", "db012.staging", false),
            ("?", "é", true),
            // Character classes.
            ("db[12]", "db1", true),
            ("db[12]", "db3", false),
            ("db[0-9][0-9]", "db42", true),
            ("db[0-9][0-9]", "db4x", false),
            ("db[!0-9]", "dbx", true),
            ("db[!0-9]", "db7", false),
            ("[a-z]*", "Web", true),
            ("[A-Z]*", "web", true),
            ("[!a-z]*", "Web", false),
            ("[-a]", "-", true),
            ("[a-]", "-", true),
            ("[]]", "]", true),
            ("[!]]", "a", true),
            ("[!]]", "]", false),
            // An unclosed `[` is a literal.
            ("db[1", "db[1", true),
            ("db[1", "db1", false),
        ]);
    }

    #[test]
    fn no_exponential_blowup() {
        // With naive recursion this takes 2^30 steps; with star backtracking it is quick.
        let pattern = "*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b";
        let text = "a".repeat(200);
        assert!(!glob_match(pattern, &text));
    }

    fn check_validate(cases: &[(&str, Result<(), GlobError>)]) {
        for (pattern, expected) in cases {
            assert_eq!(
                &validate_glob(pattern),
                expected,
                "validate_glob({pattern:?})"
            );
        }
    }

    #[test]
    fn validation() {
        check_validate(&[
            ("*.web.prod", Ok(())),
            ("db[0-9]?", Ok(())),
            ("[]]", Ok(())),
            ("", Err(GlobError::Empty)),
            ("db[12", Err(GlobError::UnclosedClass { column: 3 })),
            ("é[", Err(GlobError::UnclosedClass { column: 2 })),
            ("[]", Err(GlobError::UnclosedClass { column: 1 })),
            ("[!]", Err(GlobError::UnclosedClass { column: 1 })),
            (
                "db[z-a]",
                Err(GlobError::ReversedRange {
                    column: 4,
                    start: 'z',
                    end: 'a',
                }),
            ),
        ]);
    }

    #[test]
    fn error_messages() {
        use alloc::string::ToString;
        assert_eq!(
            GlobError::UnclosedClass { column: 3 }.to_string(),
            "the '[' at column 3 is never closed; add a ']' or remove the '['"
        );
        assert_eq!(
            GlobError::Empty.to_string(),
            "the host pattern is empty; use '*' to match every host"
        );
    }
}
