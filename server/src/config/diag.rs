//! Diagnostics: what is wrong in the config, exactly where, and what to do about it.
//!
//! The loader never stops at the first problem; it collects every [`Diagnostic`] so that
//! `vigocli config validate` can report all of them at once.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::yaml::Pos;

/// A place in the config directory.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Span {
    /// The file, relative to the config directory (`modules/web.yaml`).
    pub file: PathBuf,
    /// Line and column of the node.
    #[serde(flatten)]
    pub pos: PosJson,
}

/// [`Pos`] as JSON fields.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct PosJson {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub col: u32,
}

impl Span {
    /// A span at `pos` in `file`.
    pub fn new(file: &Path, pos: Pos) -> Span {
        Span {
            file: file.to_path_buf(),
            pos: PosJson {
                line: pos.line,
                col: pos.col,
            },
        }
    }

    /// The start of `file` (for problems with the file as a whole).
    pub fn file(file: &Path) -> Span {
        Span::new(file, Pos { line: 1, col: 1 })
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.file.display(),
            self.pos.line,
            self.pos.col
        )
    }
}

/// One problem in the config.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Diagnostic {
    /// Where.
    pub span: Span,
    /// What is wrong (lowercase, no trailing period).
    pub message: String,
    /// What to do, when there is something specific to say ("did you mean `owner`?").
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A diagnostic without a hint.
    pub fn new(span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            span,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.span, self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

/// The closest candidate within a small edit distance, for "did you mean" hints.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let limit = match word.chars().count() {
        0..=3 => 1,
        4..=7 => 2,
        _ => 3,
    };
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| format!("did you mean `{c}`?"))
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        let keys = ["owner", "group", "mode", "content", "path"];
        let cases = [
            ("ownr", Some("did you mean `owner`?")),
            ("contnet", Some("did you mean `content`?")),
            ("mdoe", Some("did you mean `mode`?")),
            ("xyz", None),
            ("permissions", None),
        ];
        for (word, want) in cases {
            assert_eq!(did_you_mean(word, keys).as_deref(), want, "{word}");
        }
    }
}
