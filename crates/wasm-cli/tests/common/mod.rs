//! Helpers shared by the CLI's integration tests.
#![allow(dead_code, clippy::expect_used)]

use std::process::{Command, Output};

/// Limits for a bare component on the command line: 16 MiB, a billion fuel, 5 s.
pub const LIMITS: [&str; 6] = [
    "--memory",
    "16MiB",
    "--fuel",
    "1000000000",
    "--timeout",
    "5s",
];

/// The `airssys-wasm` binary with an empty environment: no cache directory, no host
/// variables, unless the test sets them.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_airssys-wasm"));
    c.env_clear();
    c
}

/// The exit code; a death by signal fails the test.
pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exited by a signal")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
