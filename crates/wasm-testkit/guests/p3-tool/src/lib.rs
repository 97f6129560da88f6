//! A WASI 0.3 component: `wasi:cli/run@0.3.0` (async) prints its arguments through a
//! WASI 0.3 stdout stream — or, when the first is a command, does what it names
//! through WASI 0.3 and prints `ok: …` or `error: …`:
//!
//! - `read PATH` / `write PATH TEXT`: a file under a preopened directory
//!   (`/data/…`: the path after the directory's guest name is passed to the host as
//!   is, `..` included);
//! - `connect IP:PORT`: a TCP socket, connected;
//! - `lookup NAME`: a name lookup.
//!
//! Async exports wait on WASI 0.3's clock. See `wit/p3-tool.wit`.

use std::hint::black_box;

use wasip3::clocks::monotonic_clock;

wit_bindgen::generate!({
    world: "p3-tool",
    path: "wit",
});

struct Tool;

impl Guest for Tool {
    async fn slow_double(x: u32, delay_ms: u32) -> u32 {
        monotonic_clock::wait_for(u64::from(delay_ms) * 1_000_000).await;
        x.wrapping_mul(2)
    }

    async fn never() {
        monotonic_clock::wait_for(u64::MAX).await;
    }

    async fn spin() {
        let mut n = 0u64;
        loop {
            n = black_box(n.wrapping_add(1));
        }
    }
}

export!(Tool);

impl wasip3::exports::cli::run::Guest for Tool {
    async fn run() -> Result<(), ()> {
        let args = wasip3::cli::environment::get_arguments();
        let (line, ok) = match args.get(1..).unwrap_or_default() {
            [cmd, path] if cmd == "read" => said(read(path).await),
            [cmd, path, text] if cmd == "write" => said(write(path, text).await),
            [cmd, addr] if cmd == "connect" => said(connect(addr).await),
            [cmd, name] if cmd == "lookup" => said(lookup(name).await),
            _ => (format!("hello from WASI 0.3: {}\n", args.join(" ")), true),
        };
        print(line).await?;
        if ok { Ok(()) } else { Err(()) }
    }
}

/// Writes `line` to stdout through a WASI 0.3 stream.
async fn print(line: String) -> Result<(), ()> {
    let (mut tx, rx) = wasip3::wit_stream::new();
    // The host starts reading when the call is made; write, close, then wait for it.
    let written = wasip3::cli::stdout::write_via_stream(rx);
    let rest = tx.write_all(line.into_bytes()).await;
    drop(tx);
    written.await.map_err(drop)?;
    if rest.is_empty() { Ok(()) } else { Err(()) }
}

fn said(r: Result<String, String>) -> (String, bool) {
    match r {
        Ok(s) => (format!("ok: {s}\n"), true),
        Err(e) => (format!("error: {e}\n"), false),
    }
}

use wasip3::filesystem::types::{Descriptor, DescriptorFlags, OpenFlags, PathFlags};

/// The preopened directory whose guest name starts `path`, and the rest of `path`.
fn under(path: &str) -> Result<(Descriptor, String), String> {
    for (dir, name) in wasip3::filesystem::preopens::get_directories() {
        let prefix = format!("{}/", name.trim_end_matches('/'));
        if let Some(rest) = path.strip_prefix(&prefix) {
            return Ok((dir, rest.to_owned()));
        }
    }
    Err(format!("no preopened directory holds {path}"))
}

async fn read(path: &str) -> Result<String, String> {
    let (dir, rest) = under(path)?;
    let file = dir
        .open_at(PathFlags::SYMLINK_FOLLOW, rest, OpenFlags::empty(), DescriptorFlags::READ)
        .await
        .map_err(|e| format!("{e:?}"))?;
    let (bytes, done) = file.read_via_stream(0);
    let bytes = bytes.collect().await;
    done.await.map_err(|e| format!("{e:?}"))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

async fn write(path: &str, text: &str) -> Result<String, String> {
    let (dir, rest) = under(path)?;
    let file = dir
        .open_at(
            PathFlags::empty(),
            rest,
            OpenFlags::CREATE | OpenFlags::TRUNCATE,
            DescriptorFlags::WRITE,
        )
        .await
        .map_err(|e| format!("{e:?}"))?;
    let (mut tx, rx) = wasip3::wit_stream::new();
    let done = file.write_via_stream(rx, 0);
    let rest = tx.write_all(text.as_bytes().to_vec()).await;
    drop(tx);
    done.await.map_err(|e| format!("{e:?}"))?;
    Ok(format!("wrote {} bytes", text.len() - rest.len()))
}

async fn connect(addr: &str) -> Result<String, String> {
    use wasip3::sockets::types::{
        IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, TcpSocket,
    };
    let addr: std::net::SocketAddrV4 = addr.parse().map_err(|e| format!("{e}"))?;
    let socket = TcpSocket::create(IpAddressFamily::Ipv4).map_err(|e| format!("{e:?}"))?;
    let o = addr.ip().octets();
    let remote = IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port: addr.port(),
        address: (o[0], o[1], o[2], o[3]),
    });
    socket.connect(remote).await.map_err(|e| format!("{e:?}"))?;
    Ok(format!("connected to {addr}"))
}

async fn lookup(name: &str) -> Result<String, String> {
    let found = wasip3::sockets::ip_name_lookup::resolve_addresses(name.to_owned())
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(format!("{} addresses", found.len()))
}

wasip3::cli::command::export!(Tool);
