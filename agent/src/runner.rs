//! The real process [`Runner`]: spawns a command, feeds its stdin, captures stdout and
//! stderr (keeping the last [`CAPTURE_LIMIT`] bytes of each), and kills it — with every
//! process it started — when it runs past its timeout.

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::providers::{Command, Output, ProviderError, Runner};

/// Each of stdout and stderr keeps at most this many bytes: the end, where errors are.
pub const CAPTURE_LIMIT: usize = 16 << 20;

/// After the command exits (or is killed), how long to wait for processes it left behind
/// to close its output pipes before reporting what was captured so far.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Spawns real processes.
pub struct ProcessRunner;

impl Runner for ProcessRunner {
    fn run(&self, cmd: &Command) -> Result<Output, ProviderError> {
        let mut command = std::process::Command::new(&cmd.program);
        command
            .args(&cmd.args)
            .envs(cmd.env.iter().map(|(k, v)| (k, v)))
            .stdin(if cmd.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        sys::own_process_group(&mut command);
        let mut child = command
            .spawn()
            .map_err(|e| ProviderError(format!("could not start {}: {e}", cmd.program)))?;

        if let (Some(input), Some(mut stdin)) = (cmd.stdin.clone(), child.stdin.take()) {
            // A separate thread, so a command that does not read its input cannot block us.
            thread::spawn(move || {
                let _ = stdin.write_all(&input);
            });
        }
        let (done_tx, done_rx) = mpsc::channel();
        let stdout = capture(
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            done_tx.clone(),
        );
        let stderr = capture(
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            done_tx,
        );

        let (status, timed_out) = wait(&mut child, cmd.timeout)?;
        // Both readers end when every holder of the pipes has exited; a daemon the command
        // left running may keep them open, so wait only briefly for that.
        let deadline = Instant::now() + DRAIN_GRACE;
        for _ in 0..2 {
            let left = deadline.saturating_duration_since(Instant::now());
            if done_rx.recv_timeout(left).is_err() {
                break;
            }
        }
        Ok(Output {
            status,
            stdout: take(&stdout),
            stderr: take(&stderr),
            timed_out,
        })
    }
}

/// Waits for the child until `timeout`; past it, kills the child's process group.
fn wait(child: &mut Child, timeout: Duration) -> Result<(Option<i32>, bool), ProviderError> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok((status.code(), false)),
            Ok(None) => {}
            Err(e) => return Err(ProviderError(format!("waiting for a command: {e}"))),
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            sys::kill_group(child);
            let _ = child.kill();
            let _ = child.wait();
            return Ok((None, true));
        }
        thread::sleep(pause.min(timeout - elapsed));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

type Buffer = Arc<Mutex<Vec<u8>>>;

/// Reads `pipe` on a thread into a shared buffer, keeping its last [`CAPTURE_LIMIT`] bytes.
fn capture(pipe: Option<Box<dyn Read + Send>>, done: mpsc::Sender<()>) -> Buffer {
    let buf: Buffer = Arc::default();
    let Some(mut pipe) = pipe else {
        let _ = done.send(());
        return buf;
    };
    let shared = Arc::clone(&buf);
    thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut b = shared.lock().unwrap_or_else(|p| p.into_inner());
                    b.extend_from_slice(&chunk[..n]);
                    if b.len() > 2 * CAPTURE_LIMIT {
                        let cut = b.len() - CAPTURE_LIMIT;
                        b.drain(..cut);
                    }
                }
            }
        }
        let _ = done.send(());
    });
    buf
}

fn take(buf: &Buffer) -> Vec<u8> {
    let mut b = buf.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = std::mem::take(&mut *b);
    if out.len() > CAPTURE_LIMIT {
        out.drain(..out.len() - CAPTURE_LIMIT);
    }
    out
}

#[cfg(unix)]
mod sys {
    //! Unix: the command leads its own process group, so a timeout kills everything it
    //! started, not only the shell.

    use std::os::unix::process::CommandExt;
    use std::process::{Child, Stdio};

    pub fn own_process_group(command: &mut std::process::Command) {
        command.process_group(0);
    }

    /// Kills the group through kill(1), which keeps this crate free of unsafe code.
    pub fn kill_group(child: &Child) {
        let group = format!("-{}", child.id());
        let _ = std::process::Command::new("kill")
            .args(["-s", "KILL", "--", &group])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[cfg(not(unix))]
mod sys {
    //! Elsewhere only the command itself is killed.

    use std::process::Child;

    pub fn own_process_group(_command: &mut std::process::Command) {}

    pub fn kill_group(_child: &Child) {}
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn sh(script: &str, timeout_ms: u64) -> Output {
        let mut cmd = Command::new("/bin/sh", &["-c", script]);
        cmd.timeout = Duration::from_millis(timeout_ms);
        ProcessRunner.run(&cmd).expect("sh starts")
    }

    #[test]
    fn captures_status_output_and_stdin() {
        let out = sh("echo out; echo err >&2; exit 3", 5000);
        assert_eq!(
            (out.status, out.stdout.as_slice(), out.stderr.as_slice()),
            (Some(3), &b"out\n"[..], &b"err\n"[..])
        );
        let mut cmd = Command::new("/bin/sh", &["-c", "tr a-z A-Z"]);
        cmd.stdin = Some(b"hello".to_vec());
        cmd.env.push(("X".into(), "1".into()));
        assert_eq!(ProcessRunner.run(&cmd).expect("sh starts").stdout, b"HELLO");
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let start = Instant::now();
        let out = sh("sleep 30 & sleep 30; echo never", 200);
        assert!(out.timed_out && out.status.is_none(), "{out:?}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn missing_program_is_an_error() {
        let err = ProcessRunner
            .run(&Command::new("/nonexistent/vigo-test", &[]))
            .unwrap_err();
        assert!(
            err.0.contains("could not start /nonexistent/vigo-test"),
            "{err}"
        );
    }
}
