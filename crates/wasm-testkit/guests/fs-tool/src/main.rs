//! Reads, writes and lists files through WASI preopens:
//!
//! ```text
//! fs-tool read PATH          prints "ok: <contents>"
//! fs-tool write PATH TEXT    writes TEXT, prints "ok: wrote N bytes"
//! fs-tool ls PATH            prints "ok: <name> <name> ..." (sorted)
//! ```
//!
//! Any failure prints "error: <the error>" and exits with 1.

use std::process::ExitCode;

fn run(args: &[String]) -> Result<String, String> {
    match args {
        [cmd, path] if cmd == "read" => std::fs::read_to_string(path).map_err(|e| e.to_string()),
        [cmd, path, text] if cmd == "write" => std::fs::write(path, text)
            .map(|()| format!("wrote {} bytes", text.len()))
            .map_err(|e| e.to_string()),
        [cmd, path] if cmd == "ls" => {
            let mut names = Vec::new();
            for entry in std::fs::read_dir(path).map_err(|e| e.to_string())? {
                let entry = entry.map_err(|e| e.to_string())?;
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
            names.sort();
            Ok(names.join(" "))
        }
        _ => Err("usage: fs-tool read PATH | write PATH TEXT | ls PATH".to_owned()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(out) => {
            println!("ok: {out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
