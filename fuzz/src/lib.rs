//! What every fuzz target shares: an allocator that turns one huge
//! allocation into a crash libFuzzer reports (its own `-malloc_limit_mb`
//! needs a sanitizer's malloc hooks, which a stable build has not).

use std::alloc::{GlobalAlloc, Layout, System};

/// The largest single allocation a target may make: what `-malloc_limit_mb`
/// says in `cargo xtask fuzz`.
pub const MALLOC_LIMIT_BYTES: usize = 512 << 20;

/// [`System`], aborting on an allocation over [`MALLOC_LIMIT_BYTES`].
pub struct LimitedAlloc;

impl LimitedAlloc {
    fn check(size: usize) {
        if size > MALLOC_LIMIT_BYTES {
            // No allocation here: print with a fixed buffer and abort (a
            // deadly signal libFuzzer saves the input for).
            let msg = b"==fuzz== allocation over the malloc limit (512 MB)\n";
            unsafe { libc_write(2, msg.as_ptr(), msg.len()) };
            std::process::abort();
        }
    }
}

extern "C" {
    #[link_name = "write"]
    fn libc_write(fd: i32, buf: *const u8, count: usize) -> isize;
}

unsafe impl GlobalAlloc for LimitedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::check(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::check(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::check(new_size);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

/// The stack of the daemon's tokio worker threads, where requests are
/// evaluated: 2 MiB (tokio's default), a quarter of a main thread's.
pub const DAEMON_STACK_BYTES: usize = 2 << 20;

/// Runs `f` on a thread with the daemon's stack, so recursion that would
/// overflow a worker's stack crashes here too.
pub fn on_daemon_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(DAEMON_STACK_BYTES)
            .spawn_scoped(s, f)
            .expect("a thread")
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}
