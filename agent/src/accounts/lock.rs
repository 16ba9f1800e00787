//! The lock held while Vigo edits a root's account databases.
//!
//! Two conventions guard these files and Vigo honours both, so that it neither races
//! another Vigo run nor a shadow-utils tool (`useradd --prefix`, `vipw`) working on the same
//! root:
//! - an exclusive `flock` on `<root>/etc/.pwd.lock` (the file `lckpwdf(3)` uses);
//! - shadow-utils' per-file lock: a file `<db>.<pid>` holding our pid, hard-linked to
//!   `<db>.lock`. The link fails while another process holds it; a lock whose pid no
//!   longer runs is stale and removed, as shadow-utils does.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::os;
use crate::providers::ProviderError;

/// How long to wait for another process to release the account databases; shadow-utils
/// tools retry for about as long.
const WAIT: Duration = Duration::from_secs(15);

/// Held while editing; releases both kinds of lock on drop.
pub struct Lock {
    _flock: File,
    links: Vec<PathBuf>,
}

impl Lock {
    /// Locks the account databases of `root` (those of `dbs` that exist).
    pub fn acquire(root: &Path, dbs: &[&str]) -> Result<Lock, ProviderError> {
        let etc = root.join("etc");
        let lock_path = etc.join(".pwd.lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| {
                ProviderError(format!(
                    "opening the lock file {}: {e}",
                    lock_path.display()
                ))
            })?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if start.elapsed() < WAIT => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(ProviderError(format!(
                        "locking {}: another process has held it for {}s; retry when it \
                         finishes",
                        lock_path.display(),
                        WAIT.as_secs()
                    )));
                }
                Err(TryLockError::Error(e)) => {
                    return Err(ProviderError(format!(
                        "locking {}: {e}",
                        lock_path.display()
                    )));
                }
            }
        }
        let mut lock = Lock {
            _flock: file,
            links: Vec::new(),
        };
        for db in dbs {
            let path = etc.join(db);
            if path.exists() {
                lock.links.push(link_lock(&path, start)?);
            }
        }
        Ok(lock)
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        for link in &self.links {
            let _ = fs::remove_file(link);
        }
    }
}

/// Takes shadow-utils' lock on `db`, returning the `<db>.lock` path to remove later.
fn link_lock(db: &Path, start: Instant) -> Result<PathBuf, ProviderError> {
    let pid = std::process::id();
    let name = db
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let own = db.with_file_name(format!("{name}.{pid}"));
    let lock = db.with_file_name(format!("{name}.lock"));
    fs::write(&own, pid.to_string())
        .map_err(|e| ProviderError(format!("creating the lock file {}: {e}", own.display())))?;
    let result = loop {
        match fs::hard_link(&own, &lock) {
            Ok(()) => break Ok(lock.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let holder = fs::read_to_string(&lock)
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
                match holder {
                    Some(holder) if holder != pid && !os::process_alive(holder) => {
                        // The holder died without cleaning up: the lock is stale.
                        let _ = fs::remove_file(&lock);
                    }
                    _ if start.elapsed() < WAIT => std::thread::sleep(Duration::from_millis(100)),
                    _ => {
                        break Err(ProviderError(format!(
                            "locking {}: {} is held by another process; retry when it \
                             finishes, or remove it if no such process runs",
                            db.display(),
                            lock.display()
                        )));
                    }
                }
            }
            Err(e) => {
                break Err(ProviderError(format!("locking {}: {e}", db.display())));
            }
        }
    };
    let _ = fs::remove_file(&own);
    result
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::providers::testing::TempDir;

    #[test]
    fn locks_are_taken_and_released() {
        let dir = TempDir::new("lock");
        dir.write("etc/passwd", "root:x:0:0::/root:/bin/sh\n");
        {
            let _lock = Lock::acquire(dir.path(), &["passwd", "shadow"]).unwrap();
            assert!(dir.path().join("etc/passwd.lock").exists());
            assert!(!dir.path().join("etc/shadow.lock").exists());
        }
        assert!(!dir.path().join("etc/passwd.lock").exists());
        assert!(dir.path().join("etc/.pwd.lock").exists());
    }

    #[test]
    fn a_stale_shadow_utils_lock_is_broken() {
        let dir = TempDir::new("stale");
        dir.write("etc/group", "root:x:0:\n");
        // No process has this pid on Linux (pid_max is at most 2^22).
        dir.write("etc/group.lock", "99999999");
        let _lock = Lock::acquire(dir.path(), &["group"]).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("etc/group.lock")).unwrap(),
            std::process::id().to_string()
        );
    }
}
