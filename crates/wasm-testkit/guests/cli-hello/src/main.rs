//! A `wasi:cli` command: greets, prints its arguments (one per line) to stdout, a note to
//! stderr, echoes its stdin as `stdin: <text>` when given `--stdin`, and exits with the
//! code given as `--exit=N` (0 without it).

use std::io::Read;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    println!("hello from a wasi:cli guest");
    for (i, arg) in args.iter().enumerate() {
        println!("arg[{i}] = {arg}");
    }
    eprintln!("hello on stderr");
    if args.iter().any(|a| a == "--stdin") {
        let mut input = String::new();
        match std::io::stdin().read_to_string(&mut input) {
            Ok(_) => println!("stdin: {input}"),
            Err(e) => println!("stdin error: {e}"),
        }
    }
    let code = args
        .iter()
        .find_map(|a| a.strip_prefix("--exit="))
        .map_or(0, |n| n.parse::<u8>().unwrap_or(1));
    ExitCode::from(code)
}
