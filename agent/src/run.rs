//! `vigo-agent run`: the long-running agent. Repeats [`once::cycle`] on the schedule of
//! [`Schedule`] (the server's interval, ±10% jitter), converging from the cached bundle
//! while the server is unavailable and retrying check-ins in between with exponential
//! backoff. It never exits on a transient failure; it exits 0 after SIGTERM or SIGINT
//! (once the current cycle is done) and with a message when no progress is possible.
//! `vigo-agent service` (service.rs) runs the same [`prepare`] and [`serve`] under the
//! Windows Service Control Manager, whose stop controls set the same flag as the signals.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::cli::{Exit, finish, refuse};
use crate::once::{self, Enrolled, RunOptions};
use crate::schedule::{Due, Rng, Schedule, Timetable};
use crate::signal;
use crate::state;

/// The sleep is cut into slices this long so that a signal ends it promptly.
const SLICE: Duration = Duration::from_millis(100);

/// The options of `run`, which `service` shares.
pub struct RunArgs {
    pub state: PathBuf,
    root: PathBuf,
    family: Option<String>,
    interval: Option<Duration>,
    max_cycles: Option<u64>,
}

pub fn parse(mut args: pico_args::Arguments) -> Result<RunArgs, Exit> {
    let bad = |e: pico_args::Error| refuse(format!("{e}; see vigo-agent --help"));
    let path = |s: &std::ffi::OsStr| -> Result<PathBuf, &'static str> { Ok(PathBuf::from(s)) };
    let state: Option<PathBuf> = args.opt_value_from_os_str("--state", path).map_err(bad)?;
    let root: Option<PathBuf> = args.opt_value_from_os_str("--root", path).map_err(bad)?;
    let family: Option<String> = args.opt_value_from_str("--family").map_err(bad)?;
    let interval: Option<u64> = args.opt_value_from_str("--interval").map_err(bad)?;
    // For tests only (not in --help): stop after N cycles, and a sub-second interval.
    let max_cycles: Option<u64> = args.opt_value_from_str("--max-cycles").map_err(bad)?;
    let interval_ms: Option<u64> = args.opt_value_from_str("--interval-ms").map_err(bad)?;
    finish(args)?;
    let interval = match (interval, interval_ms) {
        (Some(_), Some(_)) => {
            return Err(refuse(
                "give --interval or --interval-ms, not both".to_string(),
            ));
        }
        (Some(s), None) if s < 10 => {
            return Err(refuse(format!(
                "--interval {s} is too short; use at least 10 seconds"
            )));
        }
        (Some(s), None) => Some(Duration::from_secs(s)),
        (None, Some(_)) if max_cycles.is_none() => {
            return Err(refuse(
                "--interval-ms is for tests and needs --max-cycles".to_string(),
            ));
        }
        (None, Some(ms)) => Some(Duration::from_millis(ms.max(1))),
        (None, None) => None,
    };
    Ok(RunArgs {
        state: state.unwrap_or_else(|| PathBuf::from(state::DEFAULT_STATE)),
        root: root.unwrap_or_else(|| PathBuf::from("/")),
        family,
        interval,
        max_cycles,
    })
}

/// Runs `vigo-agent run`.
pub fn command(args: pico_args::Arguments) -> Result<u8, Exit> {
    let a = parse(args)?;
    let enrolled = prepare(&a)?;
    signal::install()
        .map_err(|e| refuse(format!("cannot install the SIGTERM/SIGINT handler: {e}")))?;
    serve(&a, &enrolled)
}

/// What must hold before the loop starts: an existing root and an enrollment.
pub fn prepare(a: &RunArgs) -> Result<Enrolled, Exit> {
    if !a.root.is_dir() {
        return Err(refuse(format!(
            "--root {} is not a directory",
            a.root.display()
        )));
    }
    // Not enrolled is permanent: nothing this loop does can fix it.
    once::load(&a.state).map_err(refuse)
}

/// The loop until [`signal::stop_requested`] (or `--max-cycles`); 0 when it stopped.
pub fn serve(a: &RunArgs, enrolled: &Enrolled) -> Result<u8, Exit> {
    let opts = RunOptions {
        root: &a.root,
        family: a.family.as_deref(),
        observe: false,
    };
    let schedule = Schedule::new(
        a.interval,
        enrolled.dir.interval_secs(),
        Rng::from_entropy(),
    );
    run_loop(enrolled, &opts, schedule, a.max_cycles)?;
    log("stopping: stop requested or cycles done");
    Ok(0)
}

/// The loop. Times are measured from `origin` on the monotonic clock; the [`Timetable`]
/// decides (and is tested with a simulated clock), this function only acts and sleeps.
fn run_loop(
    e: &Enrolled,
    opts: &RunOptions<'_>,
    schedule: Schedule,
    max_cycles: Option<u64>,
) -> Result<(), Exit> {
    let origin = Instant::now();
    let now = || origin.elapsed();
    let mut table = Timetable::new(schedule);
    let mut cycles = 0u64;
    while !signal::stop_requested() {
        match table.due(now()) {
            Due::Cycle => {
                let c = once::cycle(e, opts)?;
                cycles += 1;
                for w in &c.warnings {
                    log(&format!("warning: {w}"));
                }
                if let Some(secs) = c.interval_secs {
                    remember_interval(e, &mut table.schedule, secs);
                }
                let t = now();
                table.cycle_done(t, c.offline.is_none());
                let summary = match &c.report {
                    Some(r) => r.summary_line(),
                    None => "nothing applied (no usable cached bundle)".to_string(),
                };
                let server = match &c.offline {
                    None => "server ok".to_string(),
                    Some(why) => format!("server unavailable ({why}), used the cached bundle"),
                };
                log(&format!(
                    "cycle {cycles}: {summary}; {server}; {} queued; next run in {}",
                    e.dir.results().list().len(),
                    when(table.next_cycle() - t)
                ));
                if max_cycles.is_some_and(|m| cycles >= m) {
                    return Ok(());
                }
            }
            Due::Checkin => {
                let mut warnings = Vec::new();
                let result = once::checkin_only(e, &mut warnings);
                for w in &warnings {
                    log(&format!("warning: {w}"));
                }
                if let Ok(secs) = result {
                    remember_interval(e, &mut table.schedule, secs);
                }
                let t = now();
                table.checkin_done(t, result.is_ok());
                match (&result, table.next_checkin()) {
                    (Ok(_), _) => log(&format!(
                        "check-in: server back; {} queued",
                        e.dir.results().list().len()
                    )),
                    (Err(why), Some(at)) => log(&format!(
                        "check-in: server unavailable ({why}); retry in {}",
                        when(at - t)
                    )),
                    (Err(_), None) => {}
                }
            }
            Due::Wait(wake) => {
                // Short slices, so that a signal ends the wait promptly.
                while !signal::stop_requested() {
                    let left = wake.saturating_sub(now());
                    if left.is_zero() {
                        break;
                    }
                    std::thread::sleep(left.min(SLICE));
                }
            }
        }
    }
    Ok(())
}

fn remember_interval(e: &Enrolled, schedule: &mut Schedule, secs: u64) {
    schedule.set_server_interval(secs);
    if let Err(err) = e.dir.set_interval_secs(secs) {
        log(&format!(
            "warning: cannot record the interval in {}: {err}",
            e.dir.path().display()
        ));
    }
}

/// `12 s (at unix 1790000000)`: a duration and the wall-clock time it ends.
fn when(d: Duration) -> String {
    let at = SystemTime::now()
        .checked_add(d)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |t| t.as_secs());
    if d < Duration::from_secs(1) {
        format!("{} ms (at unix {at})", d.as_millis())
    } else {
        format!("{} s (at unix {at})", d.as_secs())
    }
}

/// One line on stderr (under the Windows service, stderr is the log file).
pub fn log(line: &str) {
    let _ = writeln!(std::io::stderr(), "vigo-agent: {line}");
}
