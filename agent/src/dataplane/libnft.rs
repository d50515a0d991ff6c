//! nftables in-process: libnftables (the library the `nft` program is a thin
//! front end of), loaded at run time, run on a short-lived thread that has
//! entered the namespace. No fork of the daemon per namespace: a `nft` child
//! of a large daemon costs a fork of its whole address space, which is what
//! made big labs slow (issue 15).
//!
//! The library opens its netlink socket in the network namespace of the
//! thread that creates its context, so each command gets a fresh thread that
//! `setns`es first and ends after; no thread goes back to a pool in the wrong
//! namespace. The thread also gets a file table of its own with only a few
//! fds (see `run`): the library's select(2) cannot take fd numbers past
//! 1,023, which a 1,000-instance lab's daemon passes. When the library is
//! missing the caller falls back to `nft`.

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::os::fd::RawFd;
use std::sync::OnceLock;

use anyhow::{anyhow, Context, Result};

/// `NFT_CTX_DEFAULT`.
const CTX_DEFAULT: c_uint = 0;
/// `NFT_CTX_OUTPUT_JSON`: JSON listings, and JSON input is parsed as such.
const OUTPUT_JSON: c_uint = 1 << 4;

struct Lib {
    ctx_new: unsafe extern "C" fn(c_uint) -> *mut c_void,
    ctx_free: unsafe extern "C" fn(*mut c_void),
    output_set_flags: unsafe extern "C" fn(*mut c_void, c_uint),
    buffer_output: unsafe extern "C" fn(*mut c_void) -> c_int,
    buffer_error: unsafe extern "C" fn(*mut c_void) -> c_int,
    output_buffer: unsafe extern "C" fn(*mut c_void) -> *const c_char,
    error_buffer: unsafe extern "C" fn(*mut c_void) -> *const c_char,
    run_cmd: unsafe extern "C" fn(*mut c_void, *const c_char) -> c_int,
}

// SAFETY: plain function pointers into a library that is never unloaded.
unsafe impl Send for Lib {}
unsafe impl Sync for Lib {}

fn lib() -> Option<&'static Lib> {
    static LIB: OnceLock<Option<Lib>> = OnceLock::new();
    LIB.get_or_init(|| {
        if std::env::var_os("VNET_AGENT_NFT_PROCESS").is_some() {
            return None;
        }
        // SAFETY: dlopen/dlsym with NUL-terminated names; each symbol is
        // cast to the signature libnftables(3) documents for it.
        unsafe {
            let h = libc::dlopen(
                c"libnftables.so.1".as_ptr(),
                libc::RTLD_NOW | libc::RTLD_LOCAL,
            );
            if h.is_null() {
                tracing::info!(
                    "libnftables.so.1 not found: nft batches run through the nft program"
                );
                return None;
            }
            macro_rules! sym {
                ($name:literal: $ty:ty) => {{
                    let p = libc::dlsym(h, $name.as_ptr());
                    if p.is_null() {
                        return None;
                    }
                    std::mem::transmute::<*mut c_void, $ty>(p)
                }};
            }
            type Ctx = *mut c_void;
            Some(Lib {
                ctx_new: sym!(c"nft_ctx_new": unsafe extern "C" fn(c_uint) -> Ctx),
                ctx_free: sym!(c"nft_ctx_free": unsafe extern "C" fn(Ctx)),
                output_set_flags: sym!(c"nft_ctx_output_set_flags": unsafe extern "C" fn(Ctx, c_uint)),
                buffer_output: sym!(c"nft_ctx_buffer_output": unsafe extern "C" fn(Ctx) -> c_int),
                buffer_error: sym!(c"nft_ctx_buffer_error": unsafe extern "C" fn(Ctx) -> c_int),
                output_buffer: sym!(c"nft_ctx_get_output_buffer": unsafe extern "C" fn(Ctx) -> *const c_char),
                error_buffer: sym!(c"nft_ctx_get_error_buffer": unsafe extern "C" fn(Ctx) -> *const c_char),
                run_cmd: sym!(c"nft_run_cmd_from_buffer": unsafe extern "C" fn(Ctx, *const c_char) -> c_int),
            })
        }
    })
    .as_ref()
}

/// Whether commands run in-process.
pub(crate) fn available() -> bool {
    lib().is_some()
}

/// What one command printed, and whether it succeeded.
pub(crate) struct Outcome {
    pub ok: bool,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Runs one nft command (text, or a JSON batch) with JSON output inside the
/// namespace whose file is open as `ns_fd`.
pub(crate) async fn run(ns_fd: RawFd, command: String) -> Result<Outcome> {
    let lib = lib().context("libnftables is not loaded")?;
    // The thread gets its own copy of the namespace fd: it stays valid even
    // if the caller's future is dropped while the thread still runs.
    // SAFETY: dup of an fd the caller holds open.
    let fd = unsafe { libc::dup(ns_fd) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("dup of the namespace fd");
    }
    let command = CString::new(command).context("nft command with a NUL byte")?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    // The command's thread closes the runtime's fds in its private file
    // table, so it cannot wake the runtime itself: a second thread, with the
    // process's table, waits for it and delivers the answer.
    let work = move || {
        // SAFETY: setns on this thread only (it ends after the command),
        // then libnftables' documented calls on a context used by this
        // thread alone; buffers are copied out before the context is freed.
        let r = unsafe {
            // A file table of this thread's own, holding only stdio and
            // the namespace: libnftables waits on its netlink socket with
            // select(2), which aborts on an fd number >= 1024, and a
            // daemon of a big lab holds thousands of fds. In the private
            // table the socket gets fd 3 or 4. The process's table is
            // untouched; this one goes away with the thread.
            if libc::unshare(libc::CLONE_FILES) == 0 {
                libc::close_range(3, fd as libc::c_uint - 1, 0);
                libc::close_range(fd as libc::c_uint + 1, libc::c_uint::MAX, 0);
            }
            let entered = libc::setns(fd, libc::CLONE_NEWNET);
            libc::close(fd);
            if entered != 0 {
                Err(anyhow!(
                    "entering the namespace: {}",
                    std::io::Error::last_os_error()
                ))
            } else {
                let ctx = (lib.ctx_new)(CTX_DEFAULT);
                if ctx.is_null() {
                    Err(anyhow!("nft_ctx_new failed"))
                } else {
                    (lib.output_set_flags)(ctx, OUTPUT_JSON);
                    (lib.buffer_output)(ctx);
                    (lib.buffer_error)(ctx);
                    let rc = (lib.run_cmd)(ctx, command.as_ptr());
                    let text = |p: *const c_char| {
                        if p.is_null() {
                            Vec::new()
                        } else {
                            CStr::from_ptr(p).to_bytes().to_vec()
                        }
                    };
                    let out = Outcome {
                        ok: rc == 0,
                        stdout: text((lib.output_buffer)(ctx)),
                        stderr: String::from_utf8_lossy(&text((lib.error_buffer)(ctx)))
                            .into_owned(),
                    };
                    (lib.ctx_free)(ctx);
                    Ok(out)
                }
            }
        };
        r
    };
    std::thread::Builder::new()
        .name("nft-wait".into())
        .spawn(move || {
            let r = std::thread::Builder::new()
                .name("nft".into())
                .spawn(work)
                .map_err(|e| anyhow!("spawning the nft thread: {e}"))
                .and_then(|h| h.join().map_err(|_| anyhow!("nft thread panicked"))?);
            let _ = tx.send(r);
        })
        .context("spawning the nft thread")?;
    rx.await.map_err(|_| anyhow!("nft thread panicked"))?
}
