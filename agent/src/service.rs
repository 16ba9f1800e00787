//! `vigo-agent service`: `vigo-agent run` under the Windows Service Control Manager (SCM).
//! This file is the platform-independent half, unit-tested on every host: the status
//! reported at each step (state, accepted controls, checkpoint, wait hint, exit codes),
//! what each control does, the start parameters, the log file, and the order of the steps.
//! `service/windows.rs` only hands these values to advapi32 and back; on other systems the
//! command refuses, since their service managers start `vigo-agent run`.
// The SCM half below is called only from service/windows.rs; elsewhere it is compiled for
// its tests, so unused-code warnings would be noise there.
#![cfg_attr(not(windows), allow(dead_code))]

#[cfg(windows)]
mod windows;

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::cli::Exit;
use crate::run::{self, RunArgs};

// Values from winsvc.h and winerror.h. They live here rather than in the Windows module so
// that the tests can check the statuses on any host.
pub const SERVICE_STOPPED: u32 = 1;
pub const SERVICE_START_PENDING: u32 = 2;
pub const SERVICE_STOP_PENDING: u32 = 3;
pub const SERVICE_RUNNING: u32 = 4;
pub const SERVICE_ACCEPT_STOP: u32 = 0x1;
pub const SERVICE_ACCEPT_SHUTDOWN: u32 = 0x4;
pub const SERVICE_ACCEPT_PRESHUTDOWN: u32 = 0x100;
pub const SERVICE_CONTROL_STOP: u32 = 0x1;
pub const SERVICE_CONTROL_INTERROGATE: u32 = 0x4;
pub const SERVICE_CONTROL_SHUTDOWN: u32 = 0x5;
pub const SERVICE_CONTROL_PRESHUTDOWN: u32 = 0xF;
pub const NO_ERROR: u32 = 0;
pub const ERROR_CALL_NOT_IMPLEMENTED: u32 = 120;
pub const ERROR_SERVICE_SPECIFIC_ERROR: u32 = 1066;

/// How long the SCM should wait for the next checkpoint while starting or stopping.
pub const WAIT_HINT_MS: u32 = 10_000;
/// How often the checkpoint advances while pending: well within [`WAIT_HINT_MS`]. While
/// stopping, the cycle in progress is still working (its commands have their own
/// timeouts), so advancing the checkpoint is true progress, not a keep-alive trick.
pub const TICK: Duration = Duration::from_secs(2);
/// The service's log, in the state directory: stderr is redirected to it because a
/// service has no console.
pub const LOG_FILE: &str = "agent.log";
/// At start, a log larger than this is renamed to `agent.log.1` (replacing the older one).
pub const LOG_ROTATE_BYTES: u64 = 1 << 20;
/// The service name when the SCM passes none (it always passes one).
const DEFAULT_NAME: &str = "vigo-agent";

/// Runs `vigo-agent service`: hands the parsed `run` options to the SCM's dispatcher.
pub fn command(args: pico_args::Arguments) -> Result<u8, Exit> {
    // Parsed before connecting, but a usage error is reported through the SCM (as a
    // service-specific exit code) when the SCM started us, and on stderr otherwise.
    let parsed = run::parse(args);
    #[cfg(windows)]
    {
        windows::dispatch(parsed)
    }
    #[cfg(not(windows))]
    {
        parsed?;
        Err(crate::cli::refuse(
            "vigo-agent service is for the Windows Service Control Manager; on this system the \
             service manager runs vigo-agent run"
                .to_string(),
        ))
    }
}

/// The states this service reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    StartPending,
    Running,
    StopPending,
    Stopped,
}

impl State {
    fn code(self) -> u32 {
        match self {
            State::StartPending => SERVICE_START_PENDING,
            State::Running => SERVICE_RUNNING,
            State::StopPending => SERVICE_STOP_PENDING,
            State::Stopped => SERVICE_STOPPED,
        }
    }

    /// Controls are accepted only while running: a pending state is on its way elsewhere,
    /// and the SCM's advice is to accept none while starting.
    fn accepts(self) -> u32 {
        match self {
            State::Running => {
                SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN | SERVICE_ACCEPT_PRESHUTDOWN
            }
            State::StartPending | State::StopPending | State::Stopped => 0,
        }
    }

    fn pending(self) -> bool {
        matches!(self, State::StartPending | State::StopPending)
    }
}

/// One SERVICE_STATUS, less its service type (always an own-process service).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status {
    pub state: u32,
    pub controls_accepted: u32,
    pub win32_exit_code: u32,
    pub service_exit_code: u32,
    pub checkpoint: u32,
    pub wait_hint_ms: u32,
}

/// The service's state and the statuses each step reports. A transition that makes no
/// sense from the current state (back to running while stopping, anything after stopped)
/// reports nothing, so the order in which threads get here cannot confuse the SCM.
pub struct Tracker {
    state: State,
    checkpoint: u32,
    exit: (u32, u32),
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker {
            state: State::StartPending,
            checkpoint: 0,
            exit: (NO_ERROR, 0),
        }
    }

    /// The status to report now. Checkpoint and wait hint are zero unless pending, and
    /// the exit codes zero unless stopped, as the SCM documentation asks.
    pub fn status(&self) -> Status {
        let pending = self.state.pending();
        let (win32, specific) = if self.state == State::Stopped {
            self.exit
        } else {
            (NO_ERROR, 0)
        };
        Status {
            state: self.state.code(),
            controls_accepted: self.state.accepts(),
            win32_exit_code: win32,
            service_exit_code: specific,
            checkpoint: if pending { self.checkpoint } else { 0 },
            wait_hint_ms: if pending { WAIT_HINT_MS } else { 0 },
        }
    }

    fn enter(&mut self, state: State) -> Option<Status> {
        self.state = state;
        self.checkpoint = 0;
        Some(self.status())
    }

    pub fn running(&mut self) -> Option<Status> {
        match self.state {
            State::StartPending => self.enter(State::Running),
            State::Running | State::StopPending | State::Stopped => None,
        }
    }

    pub fn stopping(&mut self) -> Option<Status> {
        match self.state {
            State::StartPending | State::Running => self.enter(State::StopPending),
            State::StopPending | State::Stopped => None,
        }
    }

    /// The next checkpoint while pending.
    pub fn tick(&mut self) -> Option<Status> {
        if !self.state.pending() {
            return None;
        }
        self.checkpoint = self.checkpoint.saturating_add(1);
        Some(self.status())
    }

    pub fn stopped(&mut self, result: &Result<u8, Exit>) -> Option<Status> {
        if self.state == State::Stopped {
            return None;
        }
        self.exit = exit_codes(result);
        self.enter(State::Stopped)
    }
}

/// The SCM's exit codes for the outcome of `run`: success, or ERROR_SERVICE_SPECIFIC_ERROR
/// with the agent's own exit code (3: not enrolled, usage error; see vigo-agent --help).
pub fn exit_codes(result: &Result<u8, Exit>) -> (u32, u32) {
    match result {
        Ok(0) => (NO_ERROR, 0),
        Ok(code) => (ERROR_SERVICE_SPECIFIC_ERROR, u32::from(*code)),
        Err(e) => (ERROR_SERVICE_SPECIFIC_ERROR, u32::from(e.code)),
    }
}

/// What the control handler answers, and whether the loop must stop.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u32,
    pub stop: bool,
    pub report: Option<Status>,
}

/// One control from the SCM. Stop, shutdown and pre-shutdown all ask for the clean stop
/// that SIGTERM gives on Unix: the cycle in progress finishes, then the service stops.
/// Interrogate needs no new report (the SCM keeps the last one); anything else is not
/// ours to handle.
pub fn control(tracker: &mut Tracker, code: u32) -> Reply {
    match code {
        SERVICE_CONTROL_STOP | SERVICE_CONTROL_SHUTDOWN | SERVICE_CONTROL_PRESHUTDOWN => Reply {
            code: NO_ERROR,
            stop: true,
            report: tracker.stopping(),
        },
        SERVICE_CONTROL_INTERROGATE => Reply {
            code: NO_ERROR,
            stop: false,
            report: None,
        },
        _ => Reply {
            code: ERROR_CALL_NOT_IMPLEMENTED,
            stop: false,
            report: None,
        },
    }
}

/// The service's name and the start parameters (`sc.exe start vigo-agent A B`) from the
/// arguments the SCM passes to ServiceMain. The parameters are not used: the options are
/// those of the registered command line, so that a restart by the SCM runs the same.
pub fn start_parameters(mut args: Vec<String>) -> (String, Vec<String>) {
    if args.is_empty() {
        return (DEFAULT_NAME.to_string(), args);
    }
    let name = args.remove(0);
    if name.is_empty() {
        (DEFAULT_NAME.to_string(), args)
    } else {
        (name, args)
    }
}

/// Opens `agent.log` in the state directory for appending, first renaming a log larger
/// than [`LOG_ROTATE_BYTES`] to `agent.log.1`.
pub fn open_log(state: &Path) -> io::Result<(PathBuf, File)> {
    let path = state.join(LOG_FILE);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() > LOG_ROTATE_BYTES) {
        std::fs::rename(&path, state.join(format!("{LOG_FILE}.1")))?;
    }
    let file = OpenOptions::new().create(true).append(true).open(&path)?;
    Ok((path, file))
}

/// What the service needs from the SCM: reporting a status and sending stderr to a file.
/// `service/windows.rs` implements it with SetServiceStatus and SetStdHandle; the tests
/// with a recorder.
pub trait Scm: Sync {
    fn report(&self, status: Status) -> io::Result<()>;
    fn log_to(&self, file: File) -> io::Result<()>;
}

/// A service between its control handler's registration and SERVICE_STOPPED.
pub struct Service<S: Scm> {
    scm: S,
    tracker: Mutex<Tracker>,
}

impl<S: Scm> Service<S> {
    pub fn new(scm: S) -> Service<S> {
        Service {
            scm,
            tracker: Mutex::new(Tracker::new()),
        }
    }

    /// Applies one step to the tracker and reports its status, under the lock so that the
    /// SCM sees the statuses in the tracker's order.
    fn step(&self, f: impl FnOnce(&mut Tracker) -> Option<Status>) -> Option<Status> {
        // A poisoned lock only means another thread panicked mid-step; the tracker is
        // still a valid state, and the stop must still be reported.
        let mut t = self.tracker.lock().unwrap_or_else(PoisonError::into_inner);
        let status = f(&mut t)?;
        if let Err(e) = self.scm.report(status) {
            run::log(&format!("warning: cannot report the service status: {e}"));
        }
        Some(status)
    }

    /// The control handler's work; the caller sets the stop flag when `stop` is true.
    pub fn control(&self, code: u32) -> Reply {
        let mut reply = None;
        self.step(|t| {
            let r = control(t, code);
            let status = r.report;
            reply = Some(r);
            status
        });
        // `step` always runs its closure, so `reply` is set; the fallback is never used.
        reply.unwrap_or(Reply {
            code: ERROR_CALL_NOT_IMPLEMENTED,
            stop: false,
            report: None,
        })
    }

    /// ServiceMain: START_PENDING, the checks of `run`, RUNNING, the loop, then
    /// SERVICE_STOPPED with the exit codes. `params` are the ignored start parameters.
    /// Returns the agent's exit code, for the process.
    pub fn run(&self, args: Result<RunArgs, Exit>, params: &[String]) -> u8 {
        self.step(|t| Some(t.status()));
        let result = self.body(args, params);
        if let Err(e) = &result {
            run::log(&e.message);
        }
        let code = match &result {
            Ok(code) => *code,
            Err(e) => e.code,
        };
        run::log(&format!("service stopped (exit {code})"));
        self.step(|t| t.stopped(&result));
        code
    }

    fn body(&self, args: Result<RunArgs, Exit>, params: &[String]) -> Result<u8, Exit> {
        // A usage error has no state directory to log to; the SCM records the exit code.
        let a = args?;
        match open_log(&a.state) {
            Ok((path, file)) => {
                if let Err(e) = self.scm.log_to(file) {
                    run::log(&format!("warning: cannot log to {}: {e}", path.display()));
                }
            }
            // Most likely not enrolled (no state directory): `prepare` says so below.
            Err(e) => run::log(&format!(
                "warning: cannot open {}: {e}",
                a.state.join(LOG_FILE).display()
            )),
        }
        run::log(&format!(
            "service starting (vigo-agent {}, pid {})",
            env!("CARGO_PKG_VERSION"),
            std::process::id()
        ));
        if !params.is_empty() {
            run::log(&format!(
                "warning: ignoring the start parameters {}; options belong in the service's \
                 command line",
                params.join(" ")
            ));
        }
        let (done, ticks) = mpsc::channel::<()>();
        std::thread::scope(|s| {
            // Advances the checkpoint while starting and stopping until `done` is dropped.
            let ticker = std::thread::Builder::new()
                .name("service-checkpoint".to_string())
                .spawn_scoped(s, move || {
                    while let Err(RecvTimeoutError::Timeout) = ticks.recv_timeout(TICK) {
                        self.step(Tracker::tick);
                    }
                });
            if let Err(e) = ticker {
                run::log(&format!(
                    "warning: cannot start the checkpoint thread ({e}); a slow stop may be \
                     reported as hung"
                ));
            }
            let result = run::prepare(&a).and_then(|enrolled| {
                self.step(Tracker::running);
                run::log("service running");
                run::serve(&a, &enrolled)
            });
            drop(done);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::refuse;

    fn render(s: &Status) -> String {
        let state = match s.state {
            SERVICE_START_PENDING => "start-pending".to_string(),
            SERVICE_RUNNING => "running".to_string(),
            SERVICE_STOP_PENDING => "stop-pending".to_string(),
            SERVICE_STOPPED => "stopped".to_string(),
            other => format!("state-{other}"),
        };
        let mut accepts = Vec::new();
        for (bit, name) in [
            (SERVICE_ACCEPT_STOP, "stop"),
            (SERVICE_ACCEPT_SHUTDOWN, "shutdown"),
            (SERVICE_ACCEPT_PRESHUTDOWN, "preshutdown"),
        ] {
            if s.controls_accepted & bit != 0 {
                accepts.push(name);
            }
        }
        let rest = s.controls_accepted
            & !(SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN | SERVICE_ACCEPT_PRESHUTDOWN);
        let rest = format!("{rest:#x}");
        if rest != "0x0" {
            accepts.push(&rest);
        }
        let accepts = if accepts.is_empty() {
            "-".to_string()
        } else {
            accepts.join(",")
        };
        format!(
            "{state} accepts={accepts} exit={}/{} checkpoint={} wait={}",
            s.win32_exit_code, s.service_exit_code, s.checkpoint, s.wait_hint_ms
        )
    }

    fn outcome(word: &str) -> Result<u8, Exit> {
        match word {
            "ok" => Ok(0),
            "refused" => Err(refuse("not enrolled".to_string())),
            other => Ok(other
                .parse()
                .expect("a test outcome is ok, refused or a number")),
        }
    }

    /// Runs the events (`start`, `running`, `stop`, `shutdown`, `preshutdown`,
    /// `interrogate`, `control:N`, `tick`, `stopped:OUTCOME`) and prints one line per event:
    /// the handler's answer for controls, then the status reported, or `-` for none.
    fn check(events: &str, expected: &str) {
        let mut t = Tracker::new();
        let mut out = String::new();
        for event in events.split_whitespace() {
            let (line, report) = match event {
                "start" => (String::new(), Some(t.status())),
                "running" => (String::new(), t.running()),
                "tick" => (String::new(), t.tick()),
                _ if event.starts_with("stopped:") => {
                    (String::new(), t.stopped(&outcome(&event[8..])))
                }
                _ => {
                    let code = match event {
                        "stop" => SERVICE_CONTROL_STOP,
                        "shutdown" => SERVICE_CONTROL_SHUTDOWN,
                        "preshutdown" => SERVICE_CONTROL_PRESHUTDOWN,
                        "interrogate" => SERVICE_CONTROL_INTERROGATE,
                        _ => event
                            .strip_prefix("control:")
                            .and_then(|n| n.parse().ok())
                            .expect("a known test event"),
                    };
                    let r = control(&mut t, code);
                    (format!("reply={} stop={} ", r.code, r.stop), r.report)
                }
            };
            let report = report.map_or("-".to_string(), |s| render(&s));
            out.push_str(&format!("{event}: {line}{report}\n"));
        }
        assert_eq!(out.trim_end(), expected.trim(), "events: {events}");
    }

    #[test]
    fn a_clean_start_and_stop() {
        check(
            "start tick running tick stop tick tick stopped:ok",
            "
start: start-pending accepts=- exit=0/0 checkpoint=0 wait=10000
tick: start-pending accepts=- exit=0/0 checkpoint=1 wait=10000
running: running accepts=stop,shutdown,preshutdown exit=0/0 checkpoint=0 wait=0
tick: -
stop: reply=0 stop=true stop-pending accepts=- exit=0/0 checkpoint=0 wait=10000
tick: stop-pending accepts=- exit=0/0 checkpoint=1 wait=10000
tick: stop-pending accepts=- exit=0/0 checkpoint=2 wait=10000
stopped:ok: stopped accepts=- exit=0/0 checkpoint=0 wait=0",
        );
    }

    #[test]
    fn shutdown_and_preshutdown_stop_like_stop_and_repeats_report_nothing() {
        check(
            "start running preshutdown shutdown stop running stopped:ok tick stopped:ok stop",
            "
start: start-pending accepts=- exit=0/0 checkpoint=0 wait=10000
running: running accepts=stop,shutdown,preshutdown exit=0/0 checkpoint=0 wait=0
preshutdown: reply=0 stop=true stop-pending accepts=- exit=0/0 checkpoint=0 wait=10000
shutdown: reply=0 stop=true -
stop: reply=0 stop=true -
running: -
stopped:ok: stopped accepts=- exit=0/0 checkpoint=0 wait=0
tick: -
stopped:ok: -
stop: reply=0 stop=true -",
        );
        check(
            "start running shutdown",
            "
start: start-pending accepts=- exit=0/0 checkpoint=0 wait=10000
running: running accepts=stop,shutdown,preshutdown exit=0/0 checkpoint=0 wait=0
shutdown: reply=0 stop=true stop-pending accepts=- exit=0/0 checkpoint=0 wait=10000",
        );
    }

    #[test]
    fn other_controls_are_not_ours() {
        // 2 pause, 3 continue, 6 param change, 0x10 power event, 0x20 session change.
        check(
            "start running interrogate control:2 control:3 control:6 control:16 control:32",
            "
start: start-pending accepts=- exit=0/0 checkpoint=0 wait=10000
running: running accepts=stop,shutdown,preshutdown exit=0/0 checkpoint=0 wait=0
interrogate: reply=0 stop=false -
control:2: reply=120 stop=false -
control:3: reply=120 stop=false -
control:6: reply=120 stop=false -
control:16: reply=120 stop=false -
control:32: reply=120 stop=false -",
        );
    }

    #[test]
    fn failures_carry_the_agents_exit_code() {
        check(
            "start tick stopped:refused",
            "
start: start-pending accepts=- exit=0/0 checkpoint=0 wait=10000
tick: start-pending accepts=- exit=0/0 checkpoint=1 wait=10000
stopped:refused: stopped accepts=- exit=1066/3 checkpoint=0 wait=0",
        );
        check(
            "start running stopped:5",
            "
start: start-pending accepts=- exit=0/0 checkpoint=0 wait=10000
running: running accepts=stop,shutdown,preshutdown exit=0/0 checkpoint=0 wait=0
stopped:5: stopped accepts=- exit=1066/5 checkpoint=0 wait=0",
        );
        // A stop that arrives while starting ends the start without a RUNNING.
        check(
            "start stop running tick stopped:ok",
            "
start: start-pending accepts=- exit=0/0 checkpoint=0 wait=10000
stop: reply=0 stop=true stop-pending accepts=- exit=0/0 checkpoint=0 wait=10000
running: -
tick: stop-pending accepts=- exit=0/0 checkpoint=1 wait=10000
stopped:ok: stopped accepts=- exit=0/0 checkpoint=0 wait=0",
        );
    }

    #[test]
    fn start_parameters_name_the_service() {
        for (args, name, rest) in [
            (&[][..], "vigo-agent", &[][..]),
            (&[""][..], "vigo-agent", &[][..]),
            (&["vigo-agent"][..], "vigo-agent", &[][..]),
            (
                &["vigo-test", "--interval", "60"][..],
                "vigo-test",
                &["--interval", "60"][..],
            ),
        ] {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            let (n, r) = start_parameters(args.clone());
            let r: Vec<&str> = r.iter().map(String::as_str).collect();
            assert_eq!((n.as_str(), r.as_slice()), (name, rest), "{args:?}");
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vigo-service-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn the_log_appends_and_rotates_when_large() {
        use std::io::Write;
        let dir = temp("log");
        let (path, mut f) = open_log(&dir).expect("open the log");
        assert_eq!(path, dir.join("agent.log"));
        f.write_all(b"one\n").expect("write");
        drop(f);
        let (_, mut f) = open_log(&dir).expect("open the log again");
        f.write_all(b"two\n").expect("write");
        drop(f);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "one\ntwo\n");
        assert!(!dir.join("agent.log.1").exists());

        let big = vec![b'x'; LOG_ROTATE_BYTES as usize + 1];
        std::fs::write(&path, &big).expect("write a large log");
        std::fs::write(dir.join("agent.log.1"), "older\n").expect("write an old log");
        let (_, mut f) = open_log(&dir).expect("open and rotate");
        f.write_all(b"three\n").expect("write");
        drop(f);
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "three\n");
        assert_eq!(
            std::fs::metadata(dir.join("agent.log.1"))
                .expect("rotated")
                .len(),
            big.len() as u64
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Records what ServiceMain reports.
    struct Recorder {
        statuses: Mutex<Vec<Status>>,
        logs: Mutex<Vec<File>>,
    }

    impl Scm for Recorder {
        fn report(&self, status: Status) -> io::Result<()> {
            self.statuses.lock().expect("test lock").push(status);
            Ok(())
        }
        fn log_to(&self, file: File) -> io::Result<()> {
            self.logs.lock().expect("test lock").push(file);
            Ok(())
        }
    }

    fn run_service(args: Result<RunArgs, Exit>) -> (u8, String, usize) {
        let svc = Service::new(Recorder {
            statuses: Mutex::new(Vec::new()),
            logs: Mutex::new(Vec::new()),
        });
        let code = svc.run(args, &[]);
        let statuses = svc.scm.statuses.lock().expect("test lock");
        let lines: Vec<String> = statuses.iter().map(render).collect();
        let logs = svc.scm.logs.lock().expect("test lock").len();
        (code, lines.join("\n"), logs)
    }

    #[test]
    fn service_main_reports_why_it_cannot_start() {
        let (code, statuses, logs) = run_service(Err(refuse("bad option".to_string())));
        assert_eq!(code, 3);
        assert_eq!(logs, 0, "no state directory is known to log to");
        assert_eq!(
            statuses,
            "start-pending accepts=- exit=0/0 checkpoint=0 wait=10000
stopped accepts=- exit=1066/3 checkpoint=0 wait=0"
        );

        // An empty state directory: not enrolled, which no restart fixes.
        let dir = temp("unenrolled");
        let args = run::parse(pico_args::Arguments::from_vec(vec![
            "--state".into(),
            dir.clone().into_os_string(),
            "--root".into(),
            std::env::temp_dir().into_os_string(),
        ]));
        let (code, statuses, logs) = run_service(args);
        assert_eq!(code, 3);
        assert_eq!(logs, 1, "stderr goes to the log in the state directory");
        assert!(dir.join(LOG_FILE).is_file());
        assert_eq!(
            statuses,
            "start-pending accepts=- exit=0/0 checkpoint=0 wait=10000
stopped accepts=- exit=1066/3 checkpoint=0 wait=0"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
