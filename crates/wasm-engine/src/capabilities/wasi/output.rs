//! A granted stdout or stderr that goes to the host's log instead of the host's own
//! stream ([`Sandbox::log_output`](crate::Sandbox::log_output)): each line one record
//! at [`GUEST_LOG_TARGET`] with the component's name and the stream (`stdout`,
//! `stderr`) as its context, escaped like `wasi:logging` records, cut at
//! [`MAX_OUTPUT_LINE_BYTES`], and at most [`MAX_OUTPUT_BYTES`] per stream of one
//! instance — what a server needs, whose stderr carries its access log: a guest's
//! output can neither interleave with it unmarked nor forge its lines.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use crate::capabilities::logging::GUEST_LOG_TARGET;

/// The longest line emitted, in bytes; a longer one is emitted in pieces of this size.
pub const MAX_OUTPUT_LINE_BYTES: usize = 4_096;

/// The most bytes one stream of one instance emits; the lines past it are counted
/// and summarised in one warning when the instance ends.
pub const MAX_OUTPUT_BYTES: u64 = 64 * 1024;

/// One stream of one instance, as a WASI output.
#[derive(Clone)]
pub(crate) struct GuestOutput {
    lines: Arc<Mutex<Lines>>,
}

struct Lines {
    component: Arc<str>,
    stream: &'static str,
    partial: Vec<u8>,
    emitted: u64,
    dropped: u64,
}

impl GuestOutput {
    /// The stream `stream` (`stdout` or `stderr`) of an instance of `component`.
    pub(crate) fn new(component: Arc<str>, stream: &'static str) -> Self {
        Self {
            lines: Arc::new(Mutex::new(Lines {
                component,
                stream,
                partial: Vec::new(),
                emitted: 0,
                dropped: 0,
            })),
        }
    }
}

impl Lines {
    fn write(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let room = MAX_OUTPUT_LINE_BYTES - self.partial.len();
            let take = bytes.len().min(room);
            match bytes[..take].iter().position(|&b| b == b'\n') {
                Some(nl) => {
                    self.partial.extend_from_slice(&bytes[..nl]);
                    self.flush_line();
                    bytes = &bytes[nl + 1..];
                }
                None => {
                    self.partial.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if self.partial.len() >= MAX_OUTPUT_LINE_BYTES {
                        self.flush_line();
                    }
                }
            }
        }
    }

    fn flush_line(&mut self) {
        let line = String::from_utf8_lossy(&self.partial);
        let line = airssys_wasm_core::text::escape(&line, usize::MAX);
        // Its newline too: empty lines are not free.
        let len = line.len() as u64 + 1;
        if self.emitted.saturating_add(len) > MAX_OUTPUT_BYTES {
            self.dropped += 1;
        } else {
            self.emitted += len;
            tracing::info!(
                target: GUEST_LOG_TARGET,
                component = &*self.component,
                context = self.stream,
                "{line}"
            );
        }
        self.partial.clear();
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        if !self.partial.is_empty() {
            self.flush_line();
        }
        if self.dropped > 0 {
            tracing::warn!(
                target: GUEST_LOG_TARGET,
                component = &*self.component,
                context = self.stream,
                dropped = self.dropped,
                "{} line(s) of the instance's {} were dropped: an instance may write at most \
                 {MAX_OUTPUT_BYTES} bytes to each stream",
                self.dropped,
                self.stream
            );
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_cut_and_bounded() {
        let out = GuestOutput::new("c".into(), "stderr");
        let mut l = out.lines.lock().unwrap();
        l.write(b"one\ntw");
        assert_eq!(l.partial, b"tw");
        l.write(b"o\n");
        assert!(l.partial.is_empty());
        assert_eq!(l.emitted, 8);
        l.write(&vec![b'x'; MAX_OUTPUT_LINE_BYTES + 10]);
        assert_eq!(l.partial.len(), 10);
        l.write(&vec![b'\n'; 100_000]);
        assert!(l.dropped > 0);
        assert!(l.emitted <= MAX_OUTPUT_BYTES);
    }
}
