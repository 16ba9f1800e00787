//! Homebrew on macOS and winget on Windows.
//!
//! Homebrew refuses to run as root, and the agent runs as root: brew is run as the owner
//! of the brew executable (`sudo -u #UID`), with auto-update and analytics off so a check
//! stays fast and changes nothing.

use super::{Manager, change, cmd, query, stdout};
use crate::accounts::os;
use crate::providers::{Command, Ctx, ProviderError};

/// Homebrew, at the path found under the root and run as its owner.
pub struct Brew {
    program: String,
    owner: Option<u32>,
}

impl Brew {
    /// Finds brew (Apple silicon prefix first, then Intel); falls back to `brew` on PATH.
    pub fn locate(ctx: &Ctx<'_>) -> Brew {
        for path in ["/opt/homebrew/bin/brew", "/usr/local/bin/brew"] {
            if let Ok(Some(meta)) = os::meta(&ctx.path(path)) {
                return Brew {
                    program: path.to_string(),
                    owner: Some(meta.uid).filter(|uid| *uid != 0),
                };
            }
        }
        Brew {
            program: "brew".to_string(),
            owner: None,
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let env = ["HOMEBREW_NO_AUTO_UPDATE=1", "HOMEBREW_NO_ANALYTICS=1"];
        match self.owner {
            Some(uid) => {
                let user = format!("#{uid}");
                let mut all = vec!["-u", &user, "-H", "env", env[0], env[1], &self.program];
                all.extend_from_slice(args);
                cmd("sudo", &all)
            }
            None => {
                let mut c = cmd(&self.program, args);
                for e in env {
                    let (k, v) = e.split_once('=').expect("KEY=VALUE");
                    c.env.push((k.to_string(), v.to_string()));
                }
                c
            }
        }
    }
}

impl Manager for Brew {
    fn query(&self, ctx: &Ctx<'_>, name: &str) -> Result<Option<String>, ProviderError> {
        // `brew list --versions wget` → `wget 1.21.3 1.21.4`; exit 1 when not installed.
        let out = query(ctx, &self.cmd(&["list", "--versions", name]))?;
        Ok(out
            .success()
            .then(|| {
                stdout(&out)
                    .split_whitespace()
                    .skip(1)
                    .last()
                    .map(str::to_string)
            })
            .flatten())
    }

    fn newer(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        _installed: &str,
    ) -> Result<Option<String>, ProviderError> {
        // `brew outdated --verbose wget` → `wget (1.21.3) < 1.21.4`; empty when current.
        let out = query(ctx, &self.cmd(&["outdated", "--verbose", name]))?;
        let text = stdout(&out);
        Ok(text
            .lines()
            .find_map(|l| l.split_once(" < ").map(|(_, new)| new.trim().to_string())))
    }

    fn install(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        version: Option<&str>,
    ) -> Result<(), ProviderError> {
        // Homebrew versions are separate formulae: `postgresql@16`.
        let target = version.map_or(name.to_string(), |v| format!("{name}@{v}"));
        change(
            ctx,
            self.cmd(&["install", &target]),
            "installing",
            name,
            &[],
        )
    }

    fn upgrade(&self, ctx: &Ctx<'_>, name: &str) -> Result<(), ProviderError> {
        change(ctx, self.cmd(&["upgrade", name]), "upgrading", name, &[])
    }

    fn remove(&self, ctx: &Ctx<'_>, name: &str) -> Result<(), ProviderError> {
        change(ctx, self.cmd(&["uninstall", name]), "removing", name, &[])
    }
}

/// Windows Package Manager. `package` is the winget id (`Git.Git`), matched exactly.
pub struct Winget;

const AGREE: [&str; 2] = ["--accept-source-agreements", "--disable-interactivity"];

fn winget(args: &[&str]) -> Command {
    let mut all = args.to_vec();
    all.extend(AGREE);
    cmd("winget", &all)
}

/// Parses the table of `winget list`: (installed version, available version) of the row
/// whose Id is `id`. Columns are found from the header's word positions, so the header's
/// language does not matter; the spinner winget draws before it (ending in `\r`) is cut.
pub fn parse_winget_list(id: &str, text: &str) -> Option<(String, Option<String>)> {
    let lines: Vec<Vec<char>> = text
        .lines()
        .map(|l| {
            l.rsplit('\r')
                .next()
                .unwrap_or("")
                .trim_end()
                .chars()
                .collect()
        })
        .collect();
    let dashes = lines
        .iter()
        .position(|l| l.len() > 10 && l.iter().all(|c| *c == '-'))?;
    let header = lines.get(dashes.checked_sub(1)?)?;
    let starts: Vec<usize> = (0..header.len())
        .filter(|&i| header[i] != ' ' && (i == 0 || header[i - 1] == ' '))
        .collect();
    if starts.len() < 4 {
        return None;
    }
    let col = |row: &[char], n: usize| -> String {
        let from = starts[n].min(row.len());
        let to = starts.get(n + 1).map_or(row.len(), |e| (*e).min(row.len()));
        row[from..to].iter().collect::<String>().trim().to_string()
    };
    lines[dashes + 1..].iter().find_map(|row| {
        if !col(row, 1).eq_ignore_ascii_case(id) {
            return None;
        }
        let available = (starts.len() >= 5)
            .then(|| col(row, 3))
            .filter(|a| !a.is_empty());
        Some((col(row, 2), available))
    })
}

impl Manager for Winget {
    fn query(&self, ctx: &Ctx<'_>, name: &str) -> Result<Option<String>, ProviderError> {
        let out = query(ctx, &winget(&["list", "--id", name, "--exact"]))?;
        Ok(parse_winget_list(name, &stdout(&out)).map(|(v, _)| v))
    }

    fn newer(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        _installed: &str,
    ) -> Result<Option<String>, ProviderError> {
        let out = query(ctx, &winget(&["list", "--id", name, "--exact"]))?;
        Ok(parse_winget_list(name, &stdout(&out)).and_then(|(_, available)| available))
    }

    fn install(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        version: Option<&str>,
    ) -> Result<(), ProviderError> {
        let mut args = vec![
            "install",
            "--id",
            name,
            "--exact",
            "--silent",
            "--accept-package-agreements",
        ];
        if let Some(v) = version {
            args.extend(["--version", v]);
        }
        change(ctx, winget(&args), "installing", name, &[])
    }

    fn upgrade(&self, ctx: &Ctx<'_>, name: &str) -> Result<(), ProviderError> {
        let args = [
            "upgrade",
            "--id",
            name,
            "--exact",
            "--silent",
            "--accept-package-agreements",
        ];
        change(ctx, winget(&args), "upgrading", name, &[])
    }

    fn remove(&self, ctx: &Ctx<'_>, name: &str) -> Result<(), ProviderError> {
        change(
            ctx,
            winget(&["uninstall", "--id", name, "--exact", "--silent"]),
            "removing",
            name,
            &[],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn winget_tables_parse() {
        let text = "   - \r   \\ \rName               Id                    Version  Available Source\n\
                    -----------------------------------------------------------------------\n\
                    Git                Git.Git               2.43.0   2.44.0    winget\n";
        assert_eq!(
            parse_winget_list("git.git", text),
            Some(("2.43.0".into(), Some("2.44.0".into())))
        );
        let current = "Name  Id       Version Source\n------------------------------\nGit   Git.Git  2.44.0  winget\n";
        assert_eq!(
            parse_winget_list("Git.Git", current),
            Some(("2.44.0".into(), None))
        );
        assert_eq!(
            parse_winget_list(
                "Git.Git",
                "No installed package found matching input criteria.\n"
            ),
            None
        );
    }
}
