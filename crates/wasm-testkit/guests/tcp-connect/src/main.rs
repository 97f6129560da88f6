//! Talks to a TCP server, or resolves a name:
//!
//! ```text
//! tcp-connect connect ADDR MESSAGE   connects to ADDR (ip:port), sends MESSAGE and a
//!                                    newline, prints "reply: <the first line back>"
//! tcp-connect lookup HOST            resolves HOST, prints "resolved: <ip> ..."
//! ```
//!
//! Any failure prints "error: <the error>" and exits with 1.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;

fn run(args: &[String]) -> Result<String, String> {
    match args {
        [cmd, addr, message] if cmd == "connect" => {
            let mut stream = TcpStream::connect(addr.as_str()).map_err(|e| e.to_string())?;
            stream
                .write_all(format!("{message}\n").as_bytes())
                .map_err(|e| e.to_string())?;
            let mut line = String::new();
            BufReader::new(stream)
                .read_line(&mut line)
                .map_err(|e| e.to_string())?;
            Ok(format!("reply: {}", line.trim_end()))
        }
        [cmd, host] if cmd == "lookup" => {
            let addrs = (host.as_str(), 0)
                .to_socket_addrs()
                .map_err(|e| e.to_string())?;
            let ips: Vec<String> = addrs.map(|a| a.ip().to_string()).collect();
            Ok(format!("resolved: {}", ips.join(" ")))
        }
        _ => Err("usage: tcp-connect connect ADDR MESSAGE | lookup HOST".to_owned()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
