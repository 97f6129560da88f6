//! `airssys-wasm`: validate, inspect and run WebAssembly components in a sandbox.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use airssys_wasm_core::WasmError;

mod commands;
mod logs;
mod server;
mod setup;
mod state;

use setup::{CacheArgs, EngineArgs, Failure};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the guest trapped (or failed at run time)
  2  usage or configuration error: bad flags, missing limits, an invalid Component.toml,
     unknown export, wrong argument types
  3  invalid component: not WebAssembly, not a component, fails validation, or needs
     imports this host does not provide or the manifest does not grant
  4  a resource limit was exceeded: memory, fuel or timeout
A command component (`wasi:cli/run`) run without --invoke exits with the guest's own exit code.";

const SERVE_EXIT_CODES: &str = "\
Exit codes:
  0  stopped by SIGINT or SIGTERM after every request in flight finished
  1  stopped, but the grace period ran out with requests still in flight
  2  usage or configuration error (including an address that cannot be listened on)
  3  invalid component, or not a wasi:http/incoming-handler

Responses: a guest that traps or returns without answering gets 500 with a generic body
(the details go to the log); a limit gets 500 (fuel, memory) or 503 (timeout); beyond
--max-concurrency requests wait in a queue of --max-queue, then get 503. One access-log
line per request goes to stderr (target airssys_wasm::access; AIRSSYS_LOG filters).";

const UP_EXIT_CODES: &str = "\
Exit codes:
  0  stopped by SIGINT or SIGTERM (or after --once) with every mailbox drained
  1  an actor failed to start, a --send or --request failed, or the root supervisor gave
     up (its children failed more often than its restart intensity allows)
  2  usage or configuration error: an invalid System.toml or Component.toml (with the
     file, line and column), a cycle or a duplicate name in the tree
  3  invalid component, or a component that is not an actor (it does not export
     airssys:actor/handler)";

/// Run WebAssembly components in a sandbox the host controls completely.
#[derive(Parser, Debug)]
#[command(name = "airssys-wasm", version, about, after_help = EXIT_CODES, args_override_self = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    engine: EngineArgs,
    /// How log lines are written to stderr: `text` (tracing's format; guests' records as
    /// `[component] LEVEL context: message`), or `json`, one object per line, for log
    /// pipelines (the access log and the audit trail included).
    #[arg(long, global = true, value_enum, default_value_t = logs::Format::Text)]
    log_format: logs::Format,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check a component (or a Component.toml and the component it names) without
    /// running it.
    #[command(after_help = EXIT_CODES)]
    Validate {
        /// A `.wasm` or `.wat` component, a `Component.toml`, or a directory holding one.
        path: PathBuf,
    },
    /// Print a component's imports and exports with their types.
    #[command(after_help = EXIT_CODES)]
    Inspect {
        /// A `.wasm` or `.wat` component, a `Component.toml`, or a directory holding one.
        path: PathBuf,
    },
    /// Run a component under memory, fuel and wall-clock limits.
    #[command(after_help = EXIT_CODES)]
    Run(commands::run::RunArgs),
    /// Serve HTTP with a component exporting `wasi:http/incoming-handler`: a fresh
    /// sandboxed instance per request, under the manifest's limits and grants.
    #[command(after_help = SERVE_EXIT_CODES)]
    Serve(commands::serve::ServeArgs),
    /// Start an actor system from its `System.toml`: components as supervised actors
    /// (see docs/actors.md); SIGINT or SIGTERM stops it, draining mailboxes.
    #[command(after_help = UP_EXIT_CODES)]
    Up(commands::up::UpArgs),
    /// Compile a component ahead of time into a native artifact for this machine and
    /// configuration (like `wasmtime compile`); run it with `run --allow-precompiled`.
    #[command(after_help = EXIT_CODES)]
    Compile {
        /// A `.wasm` or `.wat` component, a `Component.toml`, or a directory holding one.
        path: PathBuf,
        /// Where to write the artifact (default: the component's name with `.cwasm`, in
        /// the current directory).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let guest_level = match &cli.command {
        Command::Run(args) => args.log_level.as_str(),
        _ => "info",
    };
    let serving = matches!(cli.command, Command::Serve(_) | Command::Up(_));
    logs::init(guest_level, serving, cli.log_format);
    // A server uses every core; a single run needs one thread.
    let runtime = if serving {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(dispatch(cli.command, &cli.cache, &cli.engine));
    // Guest output first, then any report of ours.
    let _ = std::io::stdout().flush();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            report_failure(&failure.error);
            ExitCode::from(failure.code)
        }
    }
}

/// One line saying what happened (and how to fix it), then the details.
fn report_failure(error: &anyhow::Error) {
    eprintln!("error: {error}");
    let mut source = error.source();
    while let Some(s) = source {
        eprintln!("  caused by: {s}");
        source = s.source();
    }
    if let Some(bt) = error
        .downcast_ref::<WasmError>()
        .and_then(WasmError::guest_backtrace)
    {
        eprintln!("guest backtrace:\n{bt}");
    }
}

async fn dispatch(command: Command, cache: &CacheArgs, engine: &EngineArgs) -> Result<u8, Failure> {
    match command {
        Command::Validate { path } => commands::validate::validate(engine, &path).await,
        Command::Inspect { path } => commands::inspect::inspect(engine, &path, cache).await,
        Command::Run(args) => commands::run::run(engine, args, cache).await,
        Command::Serve(args) => commands::serve::serve(engine, args, cache).await,
        Command::Up(args) => commands::up::up(engine, args, cache).await,
        Command::Compile { path, output } => {
            commands::compile::compile(engine, &path, output).await
        }
    }
}
