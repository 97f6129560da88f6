//! The WASI interfaces this host links, each named once beside the call that links it
//! (the audited ones, `p2.rs` and `p3.rs`, in place of `wasmtime-wasi`'s) — as
//! `wasmtime-wasi`'s `p2::add_to_linker_async` and `p3::add_to_linker` link them, one
//! interface at a time. What linking calls "provided by WASI" is these names, so the
//! two cannot drift apart.

use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
use wasmtime_wasi::random::{WasiRandom, WasiRandomView};
use wasmtime_wasi::sockets::{WasiSockets, WasiSocketsView};

use super::{Getter, p2 as audited2, p3 as audited3};

/// One interface: its name (`wasi:` + this + `@0.2.x`, or `@0.3.x`) and how it is
/// linked (given the audited view, which the audited interfaces run on).
pub(crate) type Interface<T> = (
    &'static str,
    fn(&mut Linker<T>, Getter<T>) -> wasmtime::Result<()>,
);

/// The resource table, which `wasi:io` runs on.
struct HasTable;

impl HasData for HasTable {
    type Data<'a> = &'a mut ResourceTable;
}

fn table<T: WasiView>(t: &mut T) -> &mut ResourceTable {
    t.ctx().table
}

/// WASI 0.2 (`@0.2.x`).
pub(crate) fn p2<T: WasiView + 'static>() -> [Interface<T>; 27] {
    use wasmtime_wasi::p2::bindings::{LinkOptions, cli, clocks, filesystem, io, random, sockets};
    [
        ("io/error", |l, _| {
            io::error::add_to_linker::<T, HasTable>(l, table)
        }),
        ("io/poll", |l, _| {
            io::poll::add_to_linker::<T, HasTable>(l, table)
        }),
        ("io/streams", |l, _| {
            io::streams::add_to_linker::<T, HasTable>(l, table)
        }),
        ("clocks/wall-clock", |l, _| {
            clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)
        }),
        ("clocks/monotonic-clock", |l, _| {
            clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)
        }),
        ("filesystem/types", audited2::add_types),
        ("filesystem/preopens", |l, _| {
            filesystem::preopens::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)
        }),
        ("random/random", |l, _| {
            random::random::add_to_linker::<T, WasiRandom>(l, T::random)
        }),
        ("random/insecure", |l, _| {
            random::insecure::add_to_linker::<T, WasiRandom>(l, T::random)
        }),
        ("random/insecure-seed", |l, _| {
            random::insecure_seed::add_to_linker::<T, WasiRandom>(l, T::random)
        }),
        ("cli/exit", |l, _| {
            cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)
        }),
        ("cli/environment", |l, _| {
            cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)
        }),
        ("cli/stdin", |l, _| {
            cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)
        }),
        ("cli/stdout", |l, _| {
            cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)
        }),
        ("cli/stderr", |l, _| {
            cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)
        }),
        ("cli/terminal-input", |l, _| {
            cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)
        }),
        ("cli/terminal-output", |l, _| {
            cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)
        }),
        ("cli/terminal-stdin", |l, _| {
            cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)
        }),
        ("cli/terminal-stdout", |l, _| {
            cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)
        }),
        ("cli/terminal-stderr", |l, _| {
            cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)
        }),
        ("sockets/network", |l, _| {
            let options = LinkOptions::default();
            sockets::network::add_to_linker::<T, WasiSockets>(l, &(&options).into(), T::sockets)
        }),
        ("sockets/instance-network", |l, _| {
            sockets::instance_network::add_to_linker::<T, WasiSockets>(l, T::sockets)
        }),
        ("sockets/tcp-create-socket", audited2::add_tcp_create_socket),
        ("sockets/tcp", |l, _| {
            sockets::tcp::add_to_linker::<T, WasiSockets>(l, T::sockets)
        }),
        ("sockets/udp-create-socket", |l, _| {
            sockets::udp_create_socket::add_to_linker::<T, WasiSockets>(l, T::sockets)
        }),
        ("sockets/udp", |l, _| {
            sockets::udp::add_to_linker::<T, WasiSockets>(l, T::sockets)
        }),
        ("sockets/ip-name-lookup", audited2::add_ip_name_lookup),
    ]
}

/// WASI 0.3 (`@0.3.x`), linked when component-model async is on.
pub(crate) fn p3<T: WasiView + 'static>() -> [Interface<T>; 21] {
    use wasmtime_wasi::p3::bindings::{cli, clocks, filesystem, random};
    [
        ("cli/exit", |l, _| {
            cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)
        }),
        ("cli/environment", |l, _| {
            cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)
        }),
        ("cli/stdin", |l, _| {
            cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)
        }),
        ("cli/stdout", |l, _| {
            cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)
        }),
        ("cli/stderr", |l, _| {
            cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)
        }),
        // Types only (the error code its streams carry): nothing to link, and an import
        // of it is satisfied as it is.
        ("cli/types", |_, _| Ok(())),
        ("cli/terminal-input", |l, _| {
            cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)
        }),
        ("cli/terminal-output", |l, _| {
            cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)
        }),
        ("cli/terminal-stdin", |l, _| {
            cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)
        }),
        ("cli/terminal-stdout", |l, _| {
            cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)
        }),
        ("cli/terminal-stderr", |l, _| {
            cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)
        }),
        ("clocks/types", |l, _| {
            clocks::types::add_to_linker::<T, WasiClocks>(l, T::clocks)
        }),
        ("clocks/monotonic-clock", |l, _| {
            clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)
        }),
        ("clocks/system-clock", |l, _| {
            clocks::system_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)
        }),
        ("filesystem/types", audited3::add_types),
        ("filesystem/preopens", |l, _| {
            filesystem::preopens::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)
        }),
        ("random/random", |l, _| {
            random::random::add_to_linker::<T, WasiRandom>(l, T::random)
        }),
        ("random/insecure", |l, _| {
            random::insecure::add_to_linker::<T, WasiRandom>(l, T::random)
        }),
        ("random/insecure-seed", |l, _| {
            random::insecure_seed::add_to_linker::<T, WasiRandom>(l, T::random)
        }),
        ("sockets/types", audited3::add_sockets_types),
        ("sockets/ip-name-lookup", audited3::add_ip_name_lookup),
    ]
}
