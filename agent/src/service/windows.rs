//! The Windows half of `vigo-agent service`: hand-written declarations of the few advapi32
//! and kernel32 functions and structures it needs (StartServiceCtrlDispatcherW,
//! RegisterServiceCtrlHandlerExW, SetServiceStatus, SetStdHandle; SERVICE_TABLE_ENTRYW,
//! SERVICE_STATUS), rather than a crate, to keep the agent's dependency budget, and the two
//! callbacks the Service Control Manager calls. Every decision is made in service.rs; this
//! file only converts. The agent's one Windows module with unsafe code: each block has a
//! `// SAFETY:` comment.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::fs::File;
use std::io;
use std::os::windows::io::IntoRawHandle;
use std::sync::{Mutex, OnceLock, PoisonError};

use super::{Scm, Service, Status};
use crate::cli::{Exit, refuse};
use crate::run::{self, RunArgs};
use crate::signal;

type Bool = i32;
type Handle = *mut c_void;
type ServiceMainFn = unsafe extern "system" fn(argc: u32, argv: *mut *mut u16);
type HandlerFn = unsafe extern "system" fn(
    control: u32,
    event_type: u32,
    event_data: *mut c_void,
    context: *mut c_void,
) -> u32;

/// SERVICE_TABLE_ENTRYW (winsvc.h).
#[repr(C)]
struct ServiceTableEntryW {
    service_name: *mut u16,
    service_proc: Option<ServiceMainFn>,
}

/// SERVICE_STATUS (winsvc.h).
#[repr(C)]
struct ServiceStatus {
    service_type: u32,
    current_state: u32,
    controls_accepted: u32,
    win32_exit_code: u32,
    service_specific_exit_code: u32,
    check_point: u32,
    wait_hint: u32,
}

const SERVICE_WIN32_OWN_PROCESS: u32 = 0x10;
/// STD_ERROR_HANDLE is `(DWORD)-12`.
const STD_ERROR_HANDLE: u32 = -12i32 as u32;
const ERROR_FAILED_SERVICE_CONTROLLER_CONNECT: i32 = 1063;

#[link(name = "advapi32")]
unsafe extern "system" {
    fn StartServiceCtrlDispatcherW(service_start_table: *const ServiceTableEntryW) -> Bool;
    fn RegisterServiceCtrlHandlerExW(
        service_name: *const u16,
        handler: Option<HandlerFn>,
        context: *mut c_void,
    ) -> Handle;
    fn SetServiceStatus(service_status: Handle, status: *const ServiceStatus) -> Bool;
}

#[link(name = "kernel32")]
unsafe extern "system" {
    fn SetStdHandle(std_handle: u32, handle: Handle) -> Bool;
}

/// The parsed options, from `dispatch` to ServiceMain (which the SCM calls with no
/// context pointer of ours).
static ARGS: Mutex<Option<Result<RunArgs, Exit>>> = Mutex::new(None);
/// The one service of this process, for the control handler.
static SERVICE: OnceLock<Service<Advapi>> = OnceLock::new();
/// The exit code ServiceMain ended with, for the process.
static EXIT: Mutex<Option<u8>> = Mutex::new(None);

/// The SCM through advapi32: the status handle from RegisterServiceCtrlHandlerExW, kept
/// as an integer because a raw pointer is neither Send nor Sync (it is only an opaque
/// token that the SCM documents as usable from any thread).
struct Advapi {
    handle: usize,
}

impl Scm for Advapi {
    fn report(&self, s: Status) -> io::Result<()> {
        let status = ServiceStatus {
            service_type: SERVICE_WIN32_OWN_PROCESS,
            current_state: s.state,
            controls_accepted: s.controls_accepted,
            win32_exit_code: s.win32_exit_code,
            service_specific_exit_code: s.service_exit_code,
            check_point: s.checkpoint,
            wait_hint: s.wait_hint_ms,
        };
        // SAFETY: `handle` came from RegisterServiceCtrlHandlerExW and is never closed (the
        // SCM owns it); `status` is a fully initialised SERVICE_STATUS that outlives the
        // call, which only reads it.
        let ok = unsafe { SetServiceStatus(self.handle as Handle, &status) };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn log_to(&self, file: File) -> io::Result<()> {
        // The handle is handed over for the rest of the process: std's stderr looks the
        // standard handle up on every write, so `run::log` now writes to the file.
        let handle = file.into_raw_handle();
        // SAFETY: `handle` is an open file handle that nothing else owns or closes (it came
        // out of `into_raw_handle`); SetStdHandle only stores it.
        let ok = unsafe { SetStdHandle(STD_ERROR_HANDLE, handle) };
        if ok == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// NUL-terminated UTF-16.
fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

/// Connects to the SCM, which then calls [`service_main`] on a thread of its own; returns
/// once the service has reported SERVICE_STOPPED.
pub fn dispatch(args: Result<RunArgs, Exit>) -> Result<u8, Exit> {
    *ARGS.lock().unwrap_or_else(PoisonError::into_inner) = Some(args);
    // The name is ignored for an own-process service but must not be null.
    let mut name = wide("vigo-agent");
    let table = [
        ServiceTableEntryW {
            service_name: name.as_mut_ptr(),
            service_proc: Some(service_main),
        },
        ServiceTableEntryW {
            service_name: std::ptr::null_mut(),
            service_proc: None,
        },
    ];
    // SAFETY: `table` ends with the all-null entry the API requires, and it and `name`
    // live until the call returns, which is after the service stopped.
    let ok = unsafe { StartServiceCtrlDispatcherW(table.as_ptr()) };
    if ok == 0 {
        let err = io::Error::last_os_error();
        let args = ARGS.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(Err(usage)) = args {
            return Err(usage);
        }
        if err.raw_os_error() == Some(ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
            return Err(refuse(
                "vigo-agent service is started by the Windows Service Control Manager \
                 (Start-Service vigo-agent); in a console, use vigo-agent run"
                    .to_string(),
            ));
        }
        return Err(refuse(format!(
            "cannot connect to the Service Control Manager: {err}"
        )));
    }
    // The SCM already has the exit code; the process exits with the same one.
    Ok(EXIT
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .unwrap_or(0))
}

/// ServiceMain, called by the SCM on its own thread.
unsafe extern "system" fn service_main(argc: u32, argv: *mut *mut u16) {
    // SAFETY: the SCM passes `argc` pointers to NUL-terminated UTF-16 strings in `argv`,
    // valid for the duration of this call.
    let params = unsafe { read_args(argc, argv) };
    let (name, extra) = super::start_parameters(params);
    let wname = wide(&name);
    // SAFETY: `wname` is NUL-terminated and outlives the call; `control_handler` matches
    // LPHANDLER_FUNCTION_EX; the context pointer is unused.
    let handle = unsafe {
        RegisterServiceCtrlHandlerExW(wname.as_ptr(), Some(control_handler), std::ptr::null_mut())
    };
    if handle.is_null() {
        // Nothing can be reported to the SCM without the handle; it will see the process
        // end when the dispatcher returns.
        run::log(&format!(
            "cannot register the service control handler: {}",
            io::Error::last_os_error()
        ));
        return;
    }
    let service = SERVICE.get_or_init(|| {
        Service::new(Advapi {
            handle: handle as usize,
        })
    });
    let args = ARGS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
        .unwrap_or_else(|| Err(refuse("the service was started twice".to_string())));
    let code = service.run(args, &extra);
    *EXIT.lock().unwrap_or_else(PoisonError::into_inner) = Some(code);
}

/// Reads ServiceMain's arguments.
///
/// # Safety
/// `argv` must hold `argc` pointers, each null or to a NUL-terminated UTF-16 string.
unsafe fn read_args(argc: u32, argv: *mut *mut u16) -> Vec<String> {
    let mut out = Vec::new();
    if argv.is_null() {
        return out;
    }
    for i in 0..argc as usize {
        // SAFETY: `i < argc`, so the pointer read is within the caller's array.
        let p = unsafe { *argv.add(i) };
        if p.is_null() {
            continue;
        }
        let mut len = 0;
        // SAFETY: the string is NUL-terminated, so every read up to the NUL is within it.
        while unsafe { *p.add(len) } != 0 {
            len += 1;
        }
        // SAFETY: the `len` units before the NUL were just read, so they are valid.
        let units = unsafe { std::slice::from_raw_parts(p, len) };
        out.push(String::from_utf16_lossy(units));
    }
    out
}

/// HandlerEx, called by the SCM on the dispatcher thread. It only updates the status and
/// sets the stop flag, so it returns at once as the SCM requires.
unsafe extern "system" fn control_handler(
    control: u32,
    _event_type: u32,
    _event_data: *mut c_void,
    _context: *mut c_void,
) -> u32 {
    let reply = match SERVICE.get() {
        Some(service) => service.control(control),
        // Registered but not yet stored: nothing to report; a stop still stops.
        None => super::control(&mut super::Tracker::new(), control),
    };
    if reply.stop {
        signal::request_stop();
    }
    reply.code
}
