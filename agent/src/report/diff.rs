//! A short line diff of file contents for run reports: unified-style `-`/`+` lines with a
//! little context, cut to a fixed number of lines. It is meant for people reading a
//! report, not for `patch`.

/// At most this many diff lines are shown; the rest is summarized in one line.
pub const MAX_LINES: usize = 20;

/// Lines of context kept around each change.
const CONTEXT: usize = 1;

/// Above this many cells the longest-common-subsequence table is not built and the changed
/// middle is shown as all removed, then all added.
const MAX_CELLS: usize = 1_000_000;

/// The diff from `old` to `new`, or `None` when either side is not text (not UTF-8, or
/// contains NUL bytes).
pub fn line_diff(old: &[u8], new: &[u8]) -> Option<String> {
    let old = text(old)?;
    let new = text(new)?;
    let a: Vec<&str> = old.split_inclusive('\n').collect();
    let b: Vec<&str> = new.split_inclusive('\n').collect();
    let ops = diff_ops(&a, &b);
    Some(render(&ops))
}

fn text(bytes: &[u8]) -> Option<&str> {
    if bytes.contains(&0) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op<'a> {
    Same(&'a str),
    Del(&'a str),
    Add(&'a str),
}

fn diff_ops<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<Op<'a>> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let rest_a = &a[prefix..];
    let rest_b = &b[prefix..];
    let suffix = rest_a
        .iter()
        .rev()
        .zip(rest_b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let mid_a = &rest_a[..rest_a.len() - suffix];
    let mid_b = &rest_b[..rest_b.len() - suffix];

    let mut ops: Vec<Op<'a>> = a[..prefix].iter().map(|l| Op::Same(l)).collect();
    if mid_a.len().saturating_mul(mid_b.len()) <= MAX_CELLS {
        lcs_ops(mid_a, mid_b, &mut ops);
    } else {
        ops.extend(mid_a.iter().map(|l| Op::Del(l)));
        ops.extend(mid_b.iter().map(|l| Op::Add(l)));
    }
    ops.extend(rest_a[rest_a.len() - suffix..].iter().map(|l| Op::Same(l)));
    ops
}

/// Classic dynamic-programming LCS; the inputs are small after prefix/suffix trimming.
fn lcs_ops<'a>(a: &[&'a str], b: &[&'a str], ops: &mut Vec<Op<'a>>) {
    let (n, m) = (a.len(), b.len());
    // table[i][j] = LCS length of a[i..] and b[j..], stored row-major.
    let mut table = vec![0u32; (n + 1) * (m + 1)];
    let at = |i: usize, j: usize| i * (m + 1) + j;
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[at(i, j)] = if a[i] == b[j] {
                table[at(i + 1, j + 1)] + 1
            } else {
                table[at(i + 1, j)].max(table[at(i, j + 1)])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < n && j < m {
        if a[i] == b[j] {
            ops.push(Op::Same(a[i]));
            i += 1;
            j += 1;
        } else if table[at(i + 1, j)] >= table[at(i, j + 1)] {
            ops.push(Op::Del(a[i]));
            i += 1;
        } else {
            ops.push(Op::Add(b[j]));
            j += 1;
        }
    }
    ops.extend(a[i..].iter().map(|l| Op::Del(l)));
    ops.extend(b[j..].iter().map(|l| Op::Add(l)));
}

fn render(ops: &[Op<'_>]) -> String {
    // Keep changed lines and CONTEXT lines around them; mark gaps with "…".
    let changed: Vec<bool> = ops.iter().map(|op| !matches!(op, Op::Same(_))).collect();
    let keep = |i: usize| {
        let lo = i.saturating_sub(CONTEXT);
        let hi = (i + CONTEXT).min(ops.len().saturating_sub(1));
        (lo..=hi).any(|k| changed[k])
    };
    let mut lines: Vec<String> = Vec::new();
    let mut gap = false;
    for (i, op) in ops.iter().enumerate() {
        if !keep(i) {
            gap = true;
            continue;
        }
        if gap && !lines.is_empty() {
            lines.push("…".to_string());
        }
        gap = false;
        let (sign, line) = match op {
            Op::Same(l) => (' ', *l),
            Op::Del(l) => ('-', *l),
            Op::Add(l) => ('+', *l),
        };
        let mut shown = format!("{sign}{}", line.strip_suffix('\n').unwrap_or(line));
        if !line.ends_with('\n') {
            shown.push_str(" (no newline at end)");
        }
        lines.push(shown);
    }
    if lines.len() > MAX_LINES {
        let more = lines.len() - MAX_LINES;
        lines.truncate(MAX_LINES);
        lines.push(format!("… {more} more diff lines"));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(old: &str, new: &str, expected: &str) {
        assert_eq!(
            line_diff(old.as_bytes(), new.as_bytes()).as_deref(),
            Some(expected),
            "{old:?} -> {new:?}"
        );
    }

    #[test]
    fn diffs() {
        check("", "hello\n", "+hello");
        check("a\nb\nc\n", "a\nB\nc\n", " a\n-b\n+B\n c");
        check("1\n2\n3\n4\n5\n6\n", "1\n2\n3\n4\n5\nsix\n", " 5\n-6\n+six");
        check(
            "a\nx\nb\nc\nd\ne\ny\nf\n",
            "a\nX\nb\nc\nd\ne\nY\nf\n",
            " a\n-x\n+X\n b\n…\n e\n-y\n+Y\n f",
        );
        check("a", "a\n", "-a (no newline at end)\n+a");
    }

    #[test]
    fn long_diffs_are_cut_and_binary_is_not_diffed() {
        let new: String = (0..50).map(|i| format!("{i}\n")).collect();
        let d = line_diff(b"", new.as_bytes()).expect("text");
        assert_eq!(d.lines().count(), MAX_LINES + 1);
        assert!(d.ends_with("… 30 more diff lines"), "{d}");
        assert_eq!(line_diff(b"\0", b"x"), None);
    }
}
