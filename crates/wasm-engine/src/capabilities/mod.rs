//! The capabilities half of the engine: what a guest may reach, each granted by its
//! manifest, each in its own module — WASI with its refusals audited (`wasi/`: the
//! grant, stdout and stderr to the log, the audited layers), `wasi:logging`
//! (`logging.rs`), `wasi:config` (`config.rs`), `wasi:keyvalue` (`keyvalue/`),
//! `wasi:http` (`http/`: outgoing requests, the fields and bodies charged, serving),
//! the embedder's host interfaces (`host_interface.rs`), and the audit trail every
//! refusal goes to (`audit.rs`). The runtime they run in is the other half,
//! `crate::runtime`.
//!
//! Each capability keeps its per-instance state, the view its host functions run on
//! (`LoggingView`, `KeyValueView`, …: only what it needs of the store), how it is
//! linked, the step from its grant to its state, and its host-side bounds. The
//! store's data ([`HostState`]) is a record of their states, whose getters make the
//! views; this file is where each is linked: one line a capability.

pub(crate) mod audit;
pub(crate) mod config;
pub(crate) mod host_interface;
pub(crate) mod http;
pub mod keyvalue;
pub(crate) mod logging;
pub(crate) mod wasi;

use std::sync::Arc;

use wasmtime::component::Linker;

use airssys_wasm_core::interface::{WASI_CONFIG_STORE, WASI_LOGGING};
use airssys_wasm_core::keyvalue::WASI_KEYVALUE;

use crate::runtime::host::HostState;
use host_interface::Registered;

/// Links what every instance gets, its grants deciding what it reaches: WASI 0.2 (and
/// 0.3 with `p3`) with its refusals audited, and `wasi:http`'s outgoing side, charged.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>, p3: bool) -> Result<(), String> {
    wasi::add_to_linker(linker, HostState::audited_wasi, p3)?;
    http::add_to_linker(linker, HostState::charged)
}

/// Whether `import` (`wasi:cli/environment@0.2.6`) is an interface of WASI that
/// [`add_to_linker`] links: WASI 0.2's and `wasi:http`'s outgoing side (`@0.2.x`), and
/// with `p3` WASI 0.3's (`@0.3.x`). Answered from the tables that link them.
pub(crate) fn links_wasi(import: &str, p3: bool) -> bool {
    let Some((path, version)) = import
        .strip_prefix("wasi:")
        .and_then(|rest| rest.split_once('@'))
    else {
        return false;
    };
    wasi::links(path, version, p3) || http::links(path, version)
}

/// Appends the built-in interfaces to `registered`, after the embedder's (whose getters
/// know their positions), except those the embedder registered itself (its own
/// registration replaces the built-in one).
pub(crate) fn register_builtins(registered: &mut Vec<Registered>) {
    let taken = |registered: &[Registered], name: fn(&str) -> bool| {
        registered.iter().any(|r| name(&r.name))
    };
    if !taken(registered, |n| n == WASI_LOGGING) {
        registered.push(Registered::builtin(
            logging::LOGGING,
            None,
            Arc::new(|l: &mut Linker<HostState>| logging::add_to_linker(l, HostState::logging)),
        ));
    }
    if !taken(registered, |n| n == WASI_CONFIG_STORE) {
        for (name, add) in config::interfaces::<HostState>() {
            registered.push(Registered::builtin(
                name,
                Some(config::GRANT),
                Arc::new(move |l: &mut Linker<HostState>| add(l, HostState::config)),
            ));
        }
    }
    if !taken(registered, |n| n.starts_with(WASI_KEYVALUE)) {
        let draft = keyvalue::draft::interfaces::<HostState>();
        let draft2 = keyvalue::draft2::interfaces::<HostState>();
        for (name, add) in draft.into_iter().chain(draft2) {
            registered.push(Registered::ungated(
                name,
                Arc::new(move |l: &mut Linker<HostState>| add(l, HostState::keyvalue)),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_linked_wasi_interfaces_count_as_wasi() {
        assert!(links_wasi("wasi:cli/environment@0.2.6", false));
        assert!(links_wasi("wasi:sockets/tcp@0.2.0", false));
        assert!(links_wasi("wasi:io/poll@0.2.3", false));
        assert!(links_wasi("wasi:http/outgoing-handler@0.2.6", false));
        assert!(links_wasi("wasi:http/types@0.2.0", true));
        assert!(!links_wasi("wasi:http/incoming-handler@0.2.6", false));
        assert!(!links_wasi("wasi:cli/environment@0.3.0", false));
        assert!(links_wasi("wasi:cli/environment@0.3.0", true));
        assert!(links_wasi("wasi:clocks/monotonic-clock@0.3.0", true));
        assert!(links_wasi("wasi:sockets/types@0.3.0", true));
        assert!(!links_wasi("wasi:io/poll@0.3.0", true));
        assert!(!links_wasi("wasi:http/handler@0.3.0", true));
        assert!(!links_wasi("wasi:http/types@0.3.0", true));
        assert!(!links_wasi("wasi:cli/environment", true));
        assert!(!links_wasi("wasi:keyvalue/store@0.2.0-draft", true));
        assert!(!links_wasi("host:env/log", true));
        assert!(!links_wasi("log", true));
    }
}
