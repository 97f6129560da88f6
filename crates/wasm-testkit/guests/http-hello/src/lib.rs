//! The smallest useful `wasi:http/incoming-handler`: imports the HTTP proxy world and
//! nothing else. `GET /` answers `hello from a wasi:http component`; `/echo` answers
//! the request body; `/count` adds 1 to a global and answers `count N` (1 on every
//! request when each gets a fresh instance). `no_std` (with `dlmalloc` for the heap): nothing of Rust's std,
//! which would import the rest of WASI.

#![no_std]

extern crate alloc;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

#[global_allocator]
static HEAP: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// The allocator the host calls to pass lists and strings in (wasi-libc provides it
/// to std builds; wit-bindgen leaves it to libc on wasm32-wasip2).
///
/// # Safety
///
/// Called by the canonical ABI only, with a pointer it got from here.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn cabi_realloc(
    old: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    use alloc::alloc::{Layout, alloc, handle_alloc_error, realloc};
    if new_len == 0 {
        return align as *mut u8;
    }
    let Ok(layout) = Layout::from_size_align(new_len, align) else {
        core::arch::wasm32::unreachable()
    };
    let ptr = unsafe {
        if old_len == 0 {
            alloc(layout)
        } else {
            realloc(old, Layout::from_size_align_unchecked(old_len, align), new_len)
        }
    };
    if ptr.is_null() {
        handle_alloc_error(layout);
    }
    ptr
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

use wasip2::exports::http::incoming_handler::Guest;

include!("../../http-common/respond.rs");

struct Hello;

/// Requests this instance has seen on `/count`.
static COUNT: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

impl Guest for Hello {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        if path(&request) == "/count" {
            let n = COUNT.fetch_add(1, core::sync::atomic::Ordering::Relaxed) + 1;
            return respond(out, 200, format!("count {n}\n").as_bytes());
        }
        if path(&request) == "/echo" {
            let body = request.consume().unwrap();
            match read_all(&body) {
                Ok(bytes) => respond(out, 200, &bytes),
                Err(e) => respond(out, 400, format!("cannot read the body: {e}\n").as_bytes()),
            }
            return;
        }
        respond(out, 200, b"hello from a wasi:http component\n");
    }
}

wasip2::http::proxy::export!(Hello);
