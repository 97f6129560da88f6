//! The built-in `wasi:logging/logging@0.1.0-draft`: a granted component's records go to
//! `tracing` (target [`GUEST_LOG_TARGET`]) with its name, level and context — bounded
//! per call, so that a guest cannot flood the host's logs or memory: past
//! [`MAX_LOG_RECORDS_PER_CALL`] records are counted instead
//! ([`ExecutionReport::log_records_dropped`](crate::ExecutionReport::log_records_dropped))
//! and summarised in one warning when the call ends, as are the records past
//! [`MAX_LOG_BYTES_PER_CALL`]; a message is cut at [`MAX_LOG_MESSAGE_BYTES`] and a
//! context at [`MAX_LOG_CONTEXT_CHARS`]. Both are escaped
//! ([`airssys_wasm_core::text::escape`]): a guest cannot write a newline, an escape
//! sequence or any other control character into the host's log, so it cannot forge a
//! line or drive the operator's terminal.

use wasmtime::component::{HasData, Linker};

mod bindings {
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({
        path: "builtin-wit/logging.wit",
        world: "imports",
    });
}

use bindings::wasi::logging::logging::{Host, Level};

/// The interface, as registered.
pub(crate) const LOGGING: &str = "wasi:logging/logging@0.1.0-draft";

/// The `tracing` target of guests' records.
pub const GUEST_LOG_TARGET: &str = "airssys_wasm::guest";

/// Records one call may emit; later ones are counted, not emitted.
pub const MAX_LOG_RECORDS_PER_CALL: u32 = 1_000;

/// The longest message emitted, in bytes; a longer one is cut (at a character
/// boundary) and marked.
pub const MAX_LOG_MESSAGE_BYTES: usize = 4_096;

/// The longest context emitted, in characters (escapes counted); a longer one is cut
/// and marked.
pub const MAX_LOG_CONTEXT_CHARS: usize = 256;

/// The most bytes (context and message, as emitted) of all the records of one call;
/// the records past it are counted as dropped.
pub const MAX_LOG_BYTES_PER_CALL: u64 = 256 * 1024;

/// Links `wasi:logging` through `getter`, the store's view of it.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    getter: fn(&mut T) -> LoggingView<'_>,
) -> wasmtime::Result<()> {
    bindings::wasi::logging::logging::add_to_linker::<T, HasLogging>(linker, getter)
}

/// What `wasi:logging` sees of an instance: its records' budget and its name.
pub(crate) struct LoggingView<'a> {
    pub(crate) budget: &'a mut LogBudget,
    pub(crate) component: &'a str,
}

/// The [`HasData`] of [`LoggingView`].
struct HasLogging;

impl HasData for HasLogging {
    type Data<'a> = LoggingView<'a>;
}

/// The records of the current call: emitted, and dropped past the bound.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct LogBudget {
    pub(crate) emitted: u32,
    pub(crate) bytes: u64,
    pub(crate) dropped: u64,
}

impl Host for LoggingView<'_> {
    fn log(&mut self, level: Level, context: String, message: String) {
        if self.budget.emitted >= MAX_LOG_RECORDS_PER_CALL {
            self.budget.dropped += 1;
            return;
        }
        let message = cut(&message);
        let message = airssys_wasm_core::text::escape(&message, usize::MAX);
        let context = airssys_wasm_core::text::escape(&context, MAX_LOG_CONTEXT_CHARS);
        let bytes = (context.len() + message.len()) as u64;
        if self.budget.bytes.saturating_add(bytes) > MAX_LOG_BYTES_PER_CALL {
            self.budget.dropped += 1;
            return;
        }
        self.budget.emitted += 1;
        self.budget.bytes += bytes;
        let context = &*context;
        let component = self.component;
        match level {
            Level::Trace => {
                tracing::trace!(target: GUEST_LOG_TARGET, component, context, "{message}")
            }
            Level::Debug => {
                tracing::debug!(target: GUEST_LOG_TARGET, component, context, "{message}")
            }
            Level::Info => {
                tracing::info!(target: GUEST_LOG_TARGET, component, context, "{message}")
            }
            Level::Warn => {
                tracing::warn!(target: GUEST_LOG_TARGET, component, context, "{message}")
            }
            Level::Error => {
                tracing::error!(target: GUEST_LOG_TARGET, component, context, "{message}")
            }
            Level::Critical => {
                tracing::error!(target: GUEST_LOG_TARGET, component, context, critical = true, "{message}");
            }
        }
    }
}

/// `message`, cut at [`MAX_LOG_MESSAGE_BYTES`].
fn cut(message: &str) -> std::borrow::Cow<'_, str> {
    if message.len() <= MAX_LOG_MESSAGE_BYTES {
        return message.into();
    }
    let mut end = MAX_LOG_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes cut)", &message[..end], message.len() - end).into()
}

/// Says, once per call, how many records the bound dropped.
#[cold]
pub(crate) fn summarise_dropped(component: &str, dropped: u64) {
    tracing::warn!(
        target: GUEST_LOG_TARGET,
        component,
        dropped,
        "{dropped} log record(s) of this call were dropped: a call may emit at most \
         {MAX_LOG_RECORDS_PER_CALL} records and {MAX_LOG_BYTES_PER_CALL} bytes"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        assert_eq!(cut("short"), "short");
        let long = "é".repeat(MAX_LOG_MESSAGE_BYTES);
        let c = cut(&long);
        assert!(c.len() < MAX_LOG_MESSAGE_BYTES + 40, "{}", c.len());
        assert!(c.ends_with("bytes cut)"), "{c}");
    }
}
