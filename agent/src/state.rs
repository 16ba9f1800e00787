//! The agent's state directory: its identity from enrollment, the request sequence, the
//! facts the server last acknowledged, the cached bundle and the queue of run results.
//!
//! Layout (the directory is mode 0700; see docs/agent.md):
//! `node.key` (0600, created with that mode), `node.pem`, `ca.pem`, `bundle.pub`,
//! `server`, `node`, `seq`, `interval`, `facts.json`, `cache/bundle`, `results/<seq>.json`,
//! `results-dropped`. Every file that changes after enrollment is replaced atomically
//! (written beside, flushed, renamed, directory flushed), so a crash leaves the old or the
//! new content, never half of one.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use vigo_shared::sign::{BundleError, PublicKey, VerifiedBundle, verify_bundle};

/// The state directory used without `--state`.
pub const DEFAULT_STATE: &str = "/var/lib/vigo/agent";

/// At most this many run results wait on disk; the oldest go first.
pub const MAX_QUEUED_RESULTS: usize = 1000;

/// Names of the files in the state directory.
pub const NODE_KEY: &str = "node.key";
pub const NODE_CERT: &str = "node.pem";
pub const CA_CERT: &str = "ca.pem";
pub const BUNDLE_KEY: &str = "bundle.pub";
pub const SERVER: &str = "server";
pub const NODE: &str = "node";
const SEQ: &str = "seq";
const INTERVAL: &str = "interval";
const FACTS: &str = "facts.json";
const CACHE: &str = "cache/bundle";
const RESULTS: &str = "results";
const DROPPED: &str = "results-dropped";

/// One state directory.
#[derive(Clone, Debug)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// The state directory at `dir` (not created yet).
    pub fn new(dir: &Path) -> StateDir {
        StateDir {
            dir: dir.to_path_buf(),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// A file inside it.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Creates the directory (and `cache/`, `results/`) with mode 0700.
    pub fn create(&self) -> io::Result<()> {
        for d in [
            self.dir.clone(),
            self.dir.join("cache"),
            self.dir.join(RESULTS),
        ] {
            fs::create_dir_all(&d)?;
            restrict_dir(&d)?;
        }
        Ok(())
    }

    /// Whether an enrollment is stored here.
    pub fn is_enrolled(&self) -> bool {
        self.file(NODE_KEY).exists() || self.file(NODE_CERT).exists()
    }

    /// Reads a text file of the state, trimmed of surrounding whitespace.
    pub fn read_text(&self, name: &str) -> io::Result<String> {
        fs::read_to_string(self.file(name)).map(|s| s.trim().to_string())
    }

    /// Replaces a file atomically. `private` files get mode 0600.
    pub fn write(&self, name: &str, bytes: &[u8], private: bool) -> io::Result<()> {
        write_atomic(&self.file(name), bytes, private)
    }

    /// The next sequence number for a request or a result: greater than the last one
    /// (which is persisted before it is used) and at least the current Unix time in
    /// microseconds, so that it keeps increasing across a lost state file too.
    pub fn next_seq(&self) -> io::Result<u64> {
        let last = self
            .read_text(SEQ)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let seq = last.saturating_add(1).max(now);
        self.write(SEQ, format!("{seq}\n").as_bytes(), false)?;
        Ok(seq)
    }

    /// The check-in interval the server gave last, in seconds, so that a restart while the
    /// server is down keeps its schedule.
    pub fn interval_secs(&self) -> Option<u64> {
        self.read_text(INTERVAL).ok()?.parse().ok()
    }

    /// Records the interval the server gave (only when it changed: no write per cycle).
    pub fn set_interval_secs(&self, secs: u64) -> io::Result<()> {
        if self.interval_secs() == Some(secs) {
            return Ok(());
        }
        self.write(INTERVAL, format!("{secs}\n").as_bytes(), false)
    }

    /// The facts the server last acknowledged (JSON object text), if any.
    pub fn acknowledged_facts(&self) -> Option<String> {
        fs::read_to_string(self.file(FACTS)).ok()
    }

    /// Records the facts the server just acknowledged.
    pub fn set_acknowledged_facts(&self, json: &str) -> io::Result<()> {
        self.write(FACTS, json.as_bytes(), false)
    }

    /// Forgets the acknowledged facts, so the next check-in sends all of them.
    pub fn forget_facts(&self) -> io::Result<()> {
        remove_if_present(&self.file(FACTS))
    }

    /// The cached bundle, verified against `trusted`. A cache that does not verify (corrupt,
    /// truncated, unsigned, signed by another key) is removed, so that the next check-in
    /// fetches the bundle again, and reported as the error.
    pub fn cached_bundle(
        &self,
        trusted: &[PublicKey],
    ) -> Result<Option<VerifiedBundle>, BundleError> {
        let path = self.file(CACHE);
        let Ok(bytes) = fs::read(&path) else {
            return Ok(None);
        };
        match verify_bundle(&bytes, trusted) {
            Ok(v) => Ok(Some(v)),
            Err(e) => {
                let _ = fs::remove_file(&path);
                Err(e)
            }
        }
    }

    /// Removes the cached bundle.
    pub fn forget_cache(&self) -> io::Result<()> {
        remove_if_present(&self.file(CACHE))
    }

    /// Caches a signed bundle (the caller verified it first).
    pub fn cache_bundle(&self, signed: &[u8]) -> io::Result<()> {
        fs::create_dir_all(self.dir.join("cache"))?;
        self.write(CACHE, signed, false)
    }

    /// The queue of run results.
    pub fn results(&self) -> ResultQueue {
        ResultQueue {
            dir: self.dir.join(RESULTS),
            dropped_file: self.dir.join(DROPPED),
            cap: MAX_QUEUED_RESULTS,
        }
    }
}

/// Run results waiting for the server to store them: one file per result sequence number.
#[derive(Clone, Debug)]
pub struct ResultQueue {
    dir: PathBuf,
    dropped_file: PathBuf,
    cap: usize,
}

impl ResultQueue {
    /// A queue in `dir` holding at most `cap` results (for tests).
    #[cfg(test)]
    pub fn with_cap(dir: &Path, cap: usize) -> ResultQueue {
        ResultQueue {
            dir: dir.join(RESULTS),
            dropped_file: dir.join(DROPPED),
            cap,
        }
    }

    /// Queued results, oldest first: sequence number and file.
    pub fn list(&self) -> Vec<(u64, PathBuf)> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut out: Vec<(u64, PathBuf)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name();
                let seq = name.to_str()?.strip_suffix(".json")?.parse::<u64>().ok()?;
                Some((seq, e.path()))
            })
            .collect();
        out.sort();
        out
    }

    /// Adds a result; when the queue is over its bound, drops the oldest and counts them.
    /// Returns how many were dropped now.
    pub fn push(&self, seq: u64, json: &str) -> io::Result<usize> {
        fs::create_dir_all(&self.dir)?;
        write_atomic(
            &self.dir.join(format!("{seq:020}.json")),
            json.as_bytes(),
            false,
        )?;
        let queued = self.list();
        let excess = queued.len().saturating_sub(self.cap);
        for (_, path) in &queued[..excess] {
            remove_if_present(path)?;
        }
        if excess > 0 {
            let total = self.dropped() + excess as u64;
            write_atomic(&self.dropped_file, format!("{total}\n").as_bytes(), false)?;
        }
        Ok(excess)
    }

    /// Deletes every result the server stored: sequence numbers up to `stored`, never above.
    pub fn acknowledge(&self, stored: u64) -> io::Result<usize> {
        let mut n = 0;
        for (seq, path) in self.list() {
            if seq <= stored {
                remove_if_present(&path)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// How many results were ever dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        fs::read_to_string(&self.dropped_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Writes `bytes` to a temporary file beside `path` (mode 0600 when `private`, else 0644),
/// flushes it, renames it over `path` and flushes the directory.
pub fn write_atomic(path: &Path, bytes: &[u8], private: bool) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = create_file(&tmp, private)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates (truncating) a file whose mode is 0600 from its first byte when `private`.
fn create_file(path: &Path, private: bool) -> io::Result<fs::File> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if private { 0o600 } else { 0o644 });
    }
    let _ = private;
    let f = opts.open(path)?;
    // A leftover temporary file keeps its old mode through `open`; set it explicitly.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(if private {
            0o600
        } else {
            0o644
        }))?;
    }
    Ok(f)
}

fn restrict_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vigo-state-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    fn seqs(q: &ResultQueue) -> Vec<u64> {
        q.list().into_iter().map(|(s, _)| s).collect()
    }

    #[test]
    fn the_queue_is_bounded_and_drops_the_oldest_with_a_counter() {
        let dir = temp("bounded");
        let q = ResultQueue::with_cap(&dir, 3);
        for seq in [10, 11, 12] {
            assert_eq!(q.push(seq, "{}").expect("push"), 0);
        }
        assert_eq!(q.push(13, "{}").expect("push"), 1);
        assert_eq!(q.push(14, "{}").expect("push"), 1);
        assert_eq!(seqs(&q), [12, 13, 14]);
        assert_eq!(q.dropped(), 2);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn acknowledgement_deletes_only_up_to_results_stored() {
        let dir = temp("ack");
        let q = ResultQueue::with_cap(&dir, 100);
        for seq in [5, 9, 1_000_000_000_000_000, 1_000_000_000_000_001] {
            q.push(seq, "{}").expect("push");
        }
        // Files that are not results (temporary files, strays) are left alone.
        fs::write(dir.join(RESULTS).join(".x.tmp-1"), "").expect("stray");
        assert_eq!(q.acknowledge(0).expect("ack"), 0);
        assert_eq!(q.acknowledge(8).expect("ack"), 1);
        assert_eq!(seqs(&q), [9, 1_000_000_000_000_000, 1_000_000_000_000_001]);
        assert_eq!(q.acknowledge(1_000_000_000_000_000).expect("ack"), 2);
        assert_eq!(seqs(&q), [1_000_000_000_000_001]);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn sequence_numbers_increase_and_persist() {
        let dir = temp("seq");
        let s = StateDir::new(&dir);
        let a = s.next_seq().expect("seq");
        let b = s.next_seq().expect("seq");
        assert!(b > a);
        s.write(SEQ, format!("{}\n", u64::MAX / 2).as_bytes(), false)
            .expect("write");
        assert_eq!(s.next_seq().expect("seq"), u64::MAX / 2 + 1);
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_corrupted_cache_is_refused_and_removed() {
        use vigo_shared::bundle::Bundle;
        use vigo_shared::sign::SigningKey;
        let dir = temp("cache");
        let s = StateDir::new(&dir);
        s.create().expect("create");
        let key = SigningKey::from_seed([4; 32]);
        let bundle = Bundle {
            node: "web01".to_string(),
            policy: "p".to_string(),
            observe: false,
            interval_secs: 60,
            resources: Vec::new(),
        };
        let signed = key.sign_bundle(&bundle);
        s.cache_bundle(&signed).expect("cache");
        let ok = s.cached_bundle(&[key.public()]).expect("verifies");
        assert_eq!(
            ok.map(|v| v.bundle().node.clone()),
            Some("web01".to_string())
        );

        let mut bad = signed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x40;
        s.cache_bundle(&bad).expect("cache");
        assert!(s.cached_bundle(&[key.public()]).is_err());
        assert!(!s.file(CACHE).exists(), "the corrupted cache is removed");
        assert!(matches!(s.cached_bundle(&[key.public()]), Ok(None)));

        // Signed by a key that is not the server's: refused and removed too.
        s.cache_bundle(&SigningKey::from_seed([5; 32]).sign_bundle(&bundle))
            .expect("cache");
        assert!(s.cached_bundle(&[key.public()]).is_err());
        assert!(!s.file(CACHE).exists());
        let _ = fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_0600_and_the_directory_0700() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp("modes");
        let s = StateDir::new(&dir.join("state"));
        s.create().expect("create");
        s.write(NODE_KEY, b"secret", true).expect("write");
        let mode = |p: &Path| fs::metadata(p).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode(&s.file(NODE_KEY)), 0o600);
        assert_eq!(mode(s.path()), 0o700);
        let _ = fs::remove_dir_all(&dir);
    }
}
