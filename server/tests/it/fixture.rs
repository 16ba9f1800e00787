//! Multi-file fixtures and expectation files.
//!
//! A fixture is one text file holding several files, each introduced by a line
//! `//- path`; paths under `config/` land in the config directory and paths under
//! `secrets/` in the secrets directory beside it. The expected output sits next to the
//! fixture as `NAME.expected`; run with `UPDATE_EXPECT=1` to rewrite it, then review the
//! diff.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "vigo-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes the files of a fixture text into `root`.
pub fn materialize(text: &str, root: &Path) {
    let mut current: Option<(PathBuf, String)> = None;
    let flush = |cur: &mut Option<(PathBuf, String)>| {
        if let Some((path, body)) = cur.take() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, body).unwrap();
        }
    };
    for line in text.split_inclusive('\n') {
        if let Some(path) = line.strip_prefix("//- ") {
            flush(&mut current);
            current = Some((root.join(path.trim()), String::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
        }
    }
    flush(&mut current);
    std::fs::create_dir_all(root.join("config")).unwrap();
}

/// Every fixture file (`*.txt`) in a folder of `tests/fixtures`.
pub fn fixtures(area: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(area);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no fixtures in {}", dir.display());
    out
}

/// Compares `actual` with `FIXTURE.expected`, or rewrites it under `UPDATE_EXPECT=1`.
/// Returns a failure description instead of panicking so all fixtures are checked.
pub fn expect(fixture: &Path, actual: &str) -> Option<String> {
    let path = fixture.with_extension("expected");
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, actual).unwrap();
        return None;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    (expected != actual).then(|| {
        format!(
            "{}: output differs from {} (rerun with UPDATE_EXPECT=1 and review the diff)\n--- expected\n{expected}\n--- actual\n{actual}",
            fixture.display(),
            path.display()
        )
    })
}
