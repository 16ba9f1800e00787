//! SIGTERM and SIGINT for `vigo-agent run`: the handler only sets a flag that the loop
//! polls, so a signal never interrupts a cycle halfway; the loop finishes the cycle and
//! exits 0. The Windows service's stop controls set the same flag (`request_stop`).
//! The agent's Unix module with unsafe code (sigaction has no safe std API); the Windows
//! one is `service/windows.rs`.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

/// Whether SIGTERM or SIGINT arrived, or the service manager asked the service to stop.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Asks the loop to stop as SIGTERM does: the Windows service's stop, shutdown and
/// pre-shutdown controls (`service/windows.rs`).
#[cfg(windows)]
pub fn request_stop() {
    STOP.store(true, Ordering::Relaxed);
}

#[cfg(unix)]
extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::Relaxed);
}

/// Installs the handler for SIGTERM and SIGINT.
#[cfg(unix)]
pub fn install() -> std::io::Result<()> {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: `sa` is fully initialised (zeroed, then the mask emptied and the handler
        // set) before sigaction reads it; the handler is an `extern "C" fn(c_int)` that
        // only stores to an atomic, which is async-signal-safe. SA_RESTART keeps the
        // interrupted system calls of a running cycle (reads, waits on children) going.
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            sa.sa_flags = libc::SA_RESTART;
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Nothing to install elsewhere: on Windows `vigo-agent service` sets the flag from the
/// service control handler, and a console `run` ends on Ctrl+C directly.
#[cfg(not(unix))]
pub fn install() -> std::io::Result<()> {
    Ok(())
}
