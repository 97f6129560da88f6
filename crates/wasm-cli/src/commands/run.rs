//! `airssys-wasm run`: a component run once under its limits — an export called with
//! WAVE arguments, or a command's `wasi:cli/run`.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use airssys_wasm_core::units::format_duration;
use airssys_wasm_engine::CallOutcome;

use crate::setup::{
    CacheArgs, EngineArgs, Failure, LimitArgs, NetArgs, Operator, Target, grants, limits_for, load,
    parse_config, sandbox_for, usage,
};
use crate::state;

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    /// A `.wasm` or `.wat` component, a `Component.toml`, or a directory holding one.
    pub(crate) path: PathBuf,
    #[command(flatten)]
    pub(crate) limits: LimitArgs,
    /// The export to call, with arguments in WAVE syntax, e.g. `double(21)` or
    /// `greet("you")`. Without it, a command component's `wasi:cli/run` runs.
    #[arg(long, value_name = "CALL")]
    pub(crate) invoke: Option<String>,
    /// Print what the call used (fuel, wall time, peak memory) to stderr.
    #[arg(long)]
    pub(crate) report: bool,
    /// The least severe of the guest's `wasi:logging` records shown on stderr (each
    /// prefixed with the component's name): `trace`, `debug`, `info`, `warn`, `error`
    /// or `off`.
    #[arg(long, value_name = "LEVEL", default_value = "info", value_parser = ["trace", "debug", "info", "warn", "error", "off"])]
    pub(crate) log_level: String,
    /// A configuration value for this run (`wasi:config/store`), overriding the
    /// manifest's `[config]`; repeatable. Grants `wasi:config` like a `[config]` table.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_config)]
    pub(crate) config: Vec<(String, String)>,
    /// Accept a precompiled artifact (from `airssys-wasm compile`) as the component.
    /// Artifacts are native code run without validation: only pass ones you trust.
    #[arg(long)]
    pub(crate) allow_precompiled: bool,
    #[command(flatten)]
    pub(crate) state: state::StateArgs,
    #[command(flatten)]
    pub(crate) net: NetArgs,
    /// Arguments for the guest (after `--`).
    #[arg(last = true, value_name = "ARGS")]
    pub(crate) args: Vec<String>,
}

pub(crate) async fn run(
    engine: &EngineArgs,
    args: RunArgs,
    cache: &CacheArgs,
) -> Result<u8, Failure> {
    let target = Target::resolve(&args.path)?;
    // Limits first: a run without them is refused before anything is compiled.
    let limits = limits_for(&target, &args.limits)?;
    let granted = grants(&target, &args.config)?;
    let runtime_config = args.state.runtime_config().map_err(usage)?;
    let component = load(engine, &target, cache, args.allow_precompiled).await?;
    let mut guest_args = vec![component.name().to_owned()];
    guest_args.extend(args.args.iter().cloned());
    let operator = Operator {
        state: &args.state,
        runtime_config: &runtime_config,
        net: &args.net,
    };
    let sandbox = sandbox_for(&component, &target, &limits, granted, operator)
        .await?
        .with_args(guest_args)
        .measure_wall_time(args.report);
    tracing::debug!(component = component.name(), %limits, "instantiating");
    let mut instance = component.instantiate(&sandbox).await?;

    let code = match &args.invoke {
        Some(call) => match instance.invoke(call).await {
            Ok(outcome) => print_results(&outcome).map(|()| 0),
            Err(e) => Err(Failure::from(e)),
        },
        None => {
            if component.command_export().is_none() {
                return Err(usage(anyhow::anyhow!(
                    "component `{}` has no `wasi:cli/run` entry point; choose an export with \
                     --invoke '<export>(<args>)':{}",
                    component.name(),
                    component
                        .export_signatures()
                        .iter()
                        .map(|s| format!("\n  {s}"))
                        .collect::<String>()
                )));
            }
            instance
                .run_command()
                .await
                .map(|(code, _)| code)
                .map_err(Failure::from)
        }
    };
    let _ = std::io::stdout().flush();
    // The report of a call that ran, also when the guest trapped or hit a limit (what
    // it used up to then is what one wants to see); not after a usage error.
    if args.report && matches!(&code, Ok(_) | Err(Failure { code: 1 | 4, .. })) {
        eprintln!(
            "report: {} (timeout {})",
            instance.last_report(),
            format_duration(limits.timeout())
        );
    }
    Ok(u8::try_from(code?.clamp(0, 255)).unwrap_or(1))
}

/// Prints an invoked export's results, one WAVE value a line.
pub(crate) fn print_results(outcome: &CallOutcome) -> Result<(), Failure> {
    let results = outcome.results_wave().map_err(Failure::from)?;
    let mut out = std::io::stdout().lock();
    for r in results {
        writeln!(out, "{r}")
            .context("writing the result to stdout")
            .map_err(|e| Failure { code: 1, error: e })?;
    }
    Ok(())
}
