//! Colon-separated account databases (`passwd`, `group`, `shadow`, `gshadow`,
//! `master.passwd`) as editable lines: the lines Vigo does not touch stay byte-identical,
//! and a touched line keeps every field it does not set.

use crate::providers::ProviderError;

/// One database file as lines. Comments, blank lines and NIS compat lines (`+`, `-`) are
/// kept but never matched by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    lines: Vec<String>,
    trailing_newline: bool,
}

impl Table {
    /// Parses the text of a database file.
    pub fn parse(text: &str) -> Table {
        let trailing_newline = text.is_empty() || text.ends_with('\n');
        let body = text.strip_suffix('\n').unwrap_or(text);
        let lines = if body.is_empty() && text.len() <= 1 {
            Vec::new()
        } else {
            body.split('\n').map(str::to_string).collect()
        };
        Table {
            lines,
            trailing_newline,
        }
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut text = self.lines.join("\n");
        if self.trailing_newline && !self.lines.is_empty() {
            text.push('\n');
        }
        text
    }

    fn is_entry(line: &str) -> bool {
        !(line.is_empty()
            || line.starts_with('#')
            || line.starts_with('+')
            || line.starts_with('-'))
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.lines
            .iter()
            .position(|l| Table::is_entry(l) && l.split(':').next() == Some(name))
    }

    /// The fields of the entry named `name`.
    pub fn get(&self, name: &str) -> Option<Vec<&str>> {
        self.index(name).map(|i| self.lines[i].split(':').collect())
    }

    /// The fields of every entry, in file order.
    pub fn entries(&self) -> impl Iterator<Item = Vec<&str>> {
        self.lines
            .iter()
            .filter(|l| Table::is_entry(l))
            .map(|l| l.split(':').collect())
    }

    /// Sets field `idx` of entry `name`; returns whether the line changed. Missing fields up
    /// to `idx` are added empty.
    pub fn set_field(&mut self, name: &str, idx: usize, value: &str) -> bool {
        let Some(i) = self.index(name) else {
            return false;
        };
        let mut fields: Vec<String> = self.lines[i].split(':').map(str::to_string).collect();
        if fields.len() <= idx {
            fields.resize(idx + 1, String::new());
        }
        if fields[idx] == value {
            return false;
        }
        fields[idx] = value.to_string();
        self.lines[i] = fields.join(":");
        true
    }

    /// Adds an entry. Like shadow-utils it goes before the first NIS `+` line, so that
    /// local entries keep precedence; otherwise at the end.
    pub fn push(&mut self, fields: &[String]) {
        let line = fields.join(":");
        match self.lines.iter().position(|l| l.starts_with('+')) {
            Some(i) => self.lines.insert(i, line),
            None => self.lines.push(line),
        }
        self.trailing_newline = true;
    }

    /// Removes the entry named `name`; returns whether it existed.
    pub fn remove(&mut self, name: &str) -> bool {
        match self.index(name) {
            Some(i) => {
                self.lines.remove(i);
                true
            }
            None => false,
        }
    }

    /// Names of every entry.
    pub fn names(&self) -> Vec<String> {
        self.entries().map(|f| f[0].to_string()).collect()
    }
}

/// An entry of `/etc/passwd`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswdEntry {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// The GECOS (comment) field.
    pub gecos: String,
    /// Home folder.
    pub home: String,
    /// Login shell.
    pub shell: String,
}

impl PasswdEntry {
    /// Reads an entry from its fields, or explains what is wrong with the line.
    pub fn from_fields(fields: &[&str], file: &str) -> Result<PasswdEntry, ProviderError> {
        let bad = || {
            ProviderError(format!(
                "reading {file}: the entry for `{}` is malformed (expected 7 fields \
                 name:x:uid:gid:gecos:home:shell); fix the line by hand",
                fields.first().unwrap_or(&"")
            ))
        };
        if fields.len() < 7 {
            return Err(bad());
        }
        Ok(PasswdEntry {
            name: fields[0].to_string(),
            uid: fields[2].parse().map_err(|_| bad())?,
            gid: fields[3].parse().map_err(|_| bad())?,
            gecos: fields[4].to_string(),
            home: fields[5].to_string(),
            shell: fields[6].to_string(),
        })
    }
}

/// An entry of `/etc/group`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupEntry {
    /// Group name.
    pub name: String,
    /// Group id.
    pub gid: u32,
    /// Supplementary members, in file order.
    pub members: Vec<String>,
}

impl GroupEntry {
    /// Reads an entry from its fields, or explains what is wrong with the line.
    pub fn from_fields(fields: &[&str], file: &str) -> Result<GroupEntry, ProviderError> {
        let bad = || {
            ProviderError(format!(
                "reading {file}: the entry for `{}` is malformed (expected name:x:gid:members); \
                 fix the line by hand",
                fields.first().unwrap_or(&"")
            ))
        };
        if fields.len() < 3 {
            return Err(bad());
        }
        Ok(GroupEntry {
            name: fields[0].to_string(),
            gid: fields[2].parse().map_err(|_| bad())?,
            members: split_members(fields.get(3).copied().unwrap_or("")),
        })
    }
}

/// Splits a comma-separated member list, ignoring empty items.
pub fn split_members(field: &str) -> Vec<String> {
    field
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect()
}

/// `current` with the members not in `wanted` removed and the missing ones appended, so
/// that members Vigo keeps stay in their original order (and the line stays unchanged when
/// nothing differs).
pub fn merge_members(current: &[String], wanted: &[String]) -> Vec<String> {
    let mut out: Vec<String> = current
        .iter()
        .filter(|m| wanted.contains(m))
        .cloned()
        .collect();
    out.dedup();
    for m in wanted {
        if !out.contains(m) {
            out.push(m.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untouched_lines_stay_byte_identical() {
        let text = "root:x:0:0:root:/root:/bin/bash\n# comment\n\nbob:x:1001:1001::/home/bob:/bin/sh\n+::::::\n";
        let mut t = Table::parse(text);
        assert_eq!(t.render(), text);
        assert!(t.set_field("bob", 6, "/bin/bash"));
        assert!(!t.set_field("bob", 6, "/bin/bash"));
        t.push(&["carol", "x", "1002", "1002", "", "/home/carol", "/bin/sh"].map(String::from));
        assert_eq!(
            t.render(),
            "root:x:0:0:root:/root:/bin/bash\n# comment\n\nbob:x:1001:1001::/home/bob:/bin/bash\n\
             carol:x:1002:1002::/home/carol:/bin/sh\n+::::::\n"
        );
        assert!(t.remove("carol"));
        assert!(!t.remove("carol"));
        assert_eq!(t.get("bob").unwrap()[2], "1001");
        assert_eq!(t.get("+"), None);
    }

    #[test]
    fn missing_trailing_newline_is_kept_until_a_line_is_added() {
        let mut t = Table::parse("a:x:1:");
        assert_eq!(t.render(), "a:x:1:");
        t.push(&[
            "b".to_string(),
            "x".to_string(),
            "2".to_string(),
            String::new(),
        ]);
        assert_eq!(t.render(), "a:x:1:\nb:x:2:\n");
        assert_eq!(Table::parse("").render(), "");
    }

    #[test]
    fn members_merge_keeps_order() {
        let cur = split_members("a,b,c");
        assert_eq!(
            merge_members(&cur, &["c".into(), "d".into(), "a".into()]),
            ["a", "c", "d"]
        );
        assert_eq!(split_members(""), Vec::<String>::new());
    }

    #[test]
    fn malformed_lines_are_reported() {
        let err = PasswdEntry::from_fields(
            &["bob", "x", "nope", "1", "", "/", "/bin/sh"],
            "/r/etc/passwd",
        )
        .unwrap_err();
        assert!(err.0.contains("`bob` is malformed"), "{err}");
    }
}
