//! Prints the environment the guest sees.
//!
//! ```text
//! env-print          every variable as NAME=VALUE, sorted, then "count: N"
//! env-print NAME     "NAME=VALUE", or "NAME is not set" and exit code 1
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    match std::env::args().nth(1) {
        Some(name) => match std::env::var(&name) {
            Ok(value) => {
                println!("{name}={value}");
                ExitCode::SUCCESS
            }
            Err(_) => {
                println!("{name} is not set");
                ExitCode::FAILURE
            }
        },
        None => {
            let mut vars: Vec<(String, String)> = std::env::vars().collect();
            vars.sort();
            for (k, v) in &vars {
                println!("{k}={v}");
            }
            println!("count: {}", vars.len());
            ExitCode::SUCCESS
        }
    }
}
