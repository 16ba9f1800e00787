//! The run report: per resource `ok | changed | failed | skipped` with what changed, and
//! a summary. It is plain data with a JSON encoder and decoder (miniserde), so the same
//! type can later travel to the server and queue on disk; the human rendering is for the
//! terminal. Field names are documented in docs/agent.md and are a contract.

pub mod diff;

use std::fmt::Write as _;

use miniserde::{Deserialize, Serialize, json};

/// Version of the report layout; bumped on an incompatible change.
pub const REPORT_FORMAT: u32 = 1;

/// What happened to one resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Already in the desired state.
    #[serde(rename = "ok")]
    Ok,
    /// Changed (in observe mode: would change).
    #[serde(rename = "changed")]
    Changed,
    /// Could not be converged.
    #[serde(rename = "failed")]
    Failed,
    /// Not applied: a false condition, an error in the resource or a failed dependency.
    #[serde(rename = "skipped")]
    Skipped,
}

impl Status {
    /// The word used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Changed => "changed",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
        }
    }
}

/// One field that changed: `mode: 0600 → 0644`. The fields `diff` (a content diff) and
/// `output` (the end of a command's output) carry their text in `to`, with `from` empty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeReport {
    /// What changed.
    pub field: String,
    /// The value before (`absent` when the thing did not exist).
    pub from: String,
    /// The value after.
    pub to: String,
}

/// The outcome for one resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceReport {
    /// `type:name`.
    pub id: String,
    /// The resource type.
    pub kind: String,
    /// The resource name.
    pub name: String,
    /// The module it came from.
    pub module: String,
    /// Where it was defined: `modules/x.yaml:12:5`.
    pub origin: String,
    /// What happened.
    pub status: Status,
    /// Why it failed or was skipped.
    pub message: Option<String>,
    /// What changed (or would change, in observe mode).
    pub changes: Vec<ChangeReport>,
    /// Set when another resource notified this one: `refreshed`, `would refresh` or
    /// `failed: …`.
    pub refresh: Option<String>,
    /// Compliance tags of the resource.
    pub compliance: Vec<String>,
    /// Time spent on it, in milliseconds.
    pub duration_ms: u64,
}

/// Counts per status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of resources.
    pub total: u32,
    /// Already converged.
    pub ok: u32,
    /// Changed (or would change).
    pub changed: u32,
    /// Failed.
    pub failed: u32,
    /// Skipped.
    pub skipped: u32,
}

/// One run of one bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// [`REPORT_FORMAT`].
    pub format: u32,
    /// The node the bundle was for.
    pub node: String,
    /// The policy (config snapshot hash) the bundle was compiled from.
    pub policy: String,
    /// SHA-256 of the bundle.
    pub bundle: String,
    /// Nothing was changed; changes are what would change.
    pub observe: bool,
    /// When the run started, in seconds since 1970 (UTC).
    pub started_unix: u64,
    /// How long the run took, in milliseconds.
    pub duration_ms: u64,
    /// Resources in the order they were processed.
    pub resources: Vec<ResourceReport>,
    /// Counts per status.
    pub summary: Summary,
}

/// A report that could not be read back.
// Reading reports back is for the on-disk queue of run results (PRODUCT.md: results queue on
// disk and drain on reconnect); until that lands only the tests read them.
#[cfg_attr(not(test), allow(dead_code))]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportError;

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a valid vigo run report (JSON with the fields described in docs/agent.md)")
    }
}

/// How the run ended, as the process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing changed and nothing failed: exit 0.
    Clean,
    /// Something changed (or would change, in observe mode): exit 2.
    Changed,
    /// At least one resource failed: exit 1.
    Failed,
}

impl Outcome {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Clean => 0,
            Outcome::Failed => 1,
            Outcome::Changed => 2,
        }
    }
}

impl Report {
    /// Counts the statuses into [`Report::summary`].
    pub fn summarize(&mut self) {
        let mut s = Summary {
            total: u32::try_from(self.resources.len()).unwrap_or(u32::MAX),
            ..<Summary as Default>::default()
        };
        for r in &self.resources {
            match r.status {
                Status::Ok => s.ok += 1,
                Status::Changed => s.changed += 1,
                Status::Failed => s.failed += 1,
                Status::Skipped => s.skipped += 1,
            }
        }
        self.summary = s;
    }

    /// Failed beats changed beats clean.
    pub fn outcome(&self) -> Outcome {
        if self.summary.failed > 0 {
            Outcome::Failed
        } else if self.summary.changed > 0 {
            Outcome::Changed
        } else {
            Outcome::Clean
        }
    }

    /// `N resources: a ok, b changed, c failed, d skipped` (plus ` (observe)`).
    pub fn summary_line(&self) -> String {
        let s = &self.summary;
        let noun = if s.total == 1 {
            "resource"
        } else {
            "resources"
        };
        let mut line = format!(
            "{} {noun}: {} ok, {} changed, {} failed, {} skipped",
            s.total, s.ok, s.changed, s.failed, s.skipped
        );
        if self.observe {
            line.push_str(" (observe)");
        }
        line
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> String {
        json::to_string(self)
    }

    /// Reads a report written by [`Report::to_json`].
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn from_json(text: &str) -> Result<Report, ReportError> {
        json::from_str(text).map_err(|_| ReportError)
    }

    /// The report for people: one line per resource, indented details, the summary.
    pub fn render_human(&self) -> String {
        let mut out = String::new();
        if self.observe {
            out.push_str("observe mode: nothing was changed; \"changed\" means would change\n");
        }
        for r in &self.resources {
            let _ = write!(out, "{:<8} {}", r.status.as_str(), r.id);
            if r.status != Status::Ok && !r.origin.is_empty() {
                let _ = write!(out, "  ({})", r.origin);
            }
            out.push('\n');
            if let Some(msg) = &r.message {
                indent(&mut out, msg, "    ");
            }
            for c in &r.changes {
                if c.from.is_empty() && (c.field == "diff" || c.field == "output") {
                    let _ = writeln!(out, "    {}:", c.field);
                    indent(&mut out, &c.to, "      ");
                } else {
                    let _ = writeln!(
                        out,
                        "    {}: {} → {}",
                        c.field,
                        one_line(&c.from),
                        one_line(&c.to)
                    );
                }
            }
            if let Some(refresh) = &r.refresh {
                let _ = writeln!(out, "    refresh: {refresh}");
            }
        }
        out.push_str(&self.summary_line());
        out.push('\n');
        out
    }
}

fn indent(out: &mut String, text: &str, prefix: &str) {
    for line in text.lines() {
        out.push_str(prefix);
        out.push_str(line);
        out.push('\n');
    }
}

/// Values shown inline are kept to one short line.
fn one_line(s: &str) -> String {
    const MAX: usize = 120;
    let line = s.replace('\n', "\\n");
    if line.chars().count() <= MAX {
        return line;
    }
    let mut cut: String = line.chars().take(MAX).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        let mut r = Report {
            format: REPORT_FORMAT,
            node: "web01".into(),
            policy: "p1".into(),
            bundle: "ab".into(),
            observe: true,
            started_unix: 1,
            duration_ms: 2,
            resources: vec![
                ResourceReport {
                    id: "file:/etc/motd".into(),
                    kind: "file".into(),
                    name: "/etc/motd".into(),
                    module: "base".into(),
                    origin: "modules/base.yaml:3:5".into(),
                    status: Status::Changed,
                    message: None,
                    changes: vec![
                        ChangeReport {
                            field: "mode".into(),
                            from: "0600".into(),
                            to: "0644".into(),
                        },
                        ChangeReport {
                            field: "diff".into(),
                            from: String::new(),
                            to: "-a\n+b".into(),
                        },
                    ],
                    refresh: None,
                    compliance: vec!["cis-1".into()],
                    duration_ms: 0,
                },
                ResourceReport {
                    id: "exec:x".into(),
                    kind: "exec".into(),
                    name: "x".into(),
                    module: "base".into(),
                    origin: "modules/base.yaml:9:5".into(),
                    status: Status::Skipped,
                    message: Some("condition false: has_command('x')".into()),
                    changes: vec![],
                    refresh: None,
                    compliance: vec![],
                    duration_ms: 0,
                },
            ],
            summary: <Summary as Default>::default(),
        };
        r.summarize();
        r
    }

    #[test]
    fn json_round_trips() {
        let r = sample();
        let text = r.to_json();
        assert!(text.contains(r#""status":"changed""#), "{text}");
        assert_eq!(Report::from_json(&text), Ok(r));
        assert_eq!(Report::from_json("{}"), Err(ReportError));
    }

    #[test]
    fn human_rendering() {
        let expected = "observe mode: nothing was changed; \"changed\" means would change
changed  file:/etc/motd  (modules/base.yaml:3:5)
    mode: 0600 → 0644
    diff:
      -a
      +b
skipped  exec:x  (modules/base.yaml:9:5)
    condition false: has_command('x')
2 resources: 0 ok, 1 changed, 0 failed, 1 skipped (observe)
";
        assert_eq!(sample().render_human(), expected);
        assert_eq!(sample().outcome(), Outcome::Changed);
    }
}
