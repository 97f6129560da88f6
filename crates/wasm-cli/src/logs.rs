//! Where the CLI's logs go: its own diagnostics (`AIRSSYS_LOG`, default `warn`) in
//! `tracing`'s format, and guests' `wasi:logging` records as `[component] LEVEL
//! context: message` lines (`run --log-level`), both on stderr; or, with
//! `--log-format json`, every line one JSON object. What a guest or a client chose is
//! escaped before it gets here (no control characters): a line is one line.

#[cfg(doc)]
use airssys_wasm_engine::ACCESS_LOG_TARGET;
use airssys_wasm_engine::GUEST_LOG_TARGET;

/// Our own diagnostics at `AIRSSYS_LOG` (default `warn`), in tracing's format; the
/// guests' `wasi:logging` records at `guest_level`, as `[component] LEVEL context:
/// message` lines — both on stderr.
///
/// A server (`serving`) also logs its access log ([`ACCESS_LOG_TARGET`]) at `info`
/// unless `AIRSSYS_LOG` says otherwise.
pub(crate) fn init(guest_level: &str, serving: bool, format: Format) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let ours = tracing_subscriber::EnvFilter::try_from_env("AIRSSYS_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(if serving {
            "warn,airssys_wasm::access=info"
        } else {
            "warn"
        })
    });
    let guest_level: tracing_subscriber::filter::LevelFilter = guest_level
        .parse()
        .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    if format == Format::Json {
        // One object per line, for everything: ours and the guests' (whose component
        // and context are fields of their own).
        let guests = tracing_subscriber::filter::filter_fn(|m| m.target() == GUEST_LOG_TARGET);
        let _ = tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .with_filter(tracing_subscriber::filter::filter_fn(|m| {
                        m.target() != GUEST_LOG_TARGET
                    }))
                    .with_filter(ours),
            )
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr)
                    .with_filter(guests)
                    .with_filter(guest_level),
            )
            .try_init();
        return;
    }
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Colours for a terminal only, not for a file or a pipe.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_filter(tracing_subscriber::filter::filter_fn(|m| {
                    m.target() != GUEST_LOG_TARGET
                }))
                .with_filter(ours),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .event_format(GuestRecord)
                .with_filter(tracing_subscriber::filter::filter_fn(|m| {
                    m.target() == GUEST_LOG_TARGET
                }))
                .with_filter(guest_level),
        )
        .try_init();
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A guest's log record as one line: `[component] LEVEL context: message`.
struct GuestRecord;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for GuestRecord
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        #[derive(Default)]
        struct Fields {
            component: String,
            context: String,
            message: String,
            critical: bool,
        }
        impl tracing::field::Visit for Fields {
            fn record_str(&mut self, f: &tracing::field::Field, v: &str) {
                match f.name() {
                    "component" => v.clone_into(&mut self.component),
                    "context" => v.clone_into(&mut self.context),
                    _ => {}
                }
            }
            fn record_bool(&mut self, f: &tracing::field::Field, v: bool) {
                if f.name() == "critical" {
                    self.critical = v;
                }
            }
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                if f.name() == "message" {
                    self.message = format!("{v:?}");
                }
            }
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let level = if fields.critical {
            "CRITICAL".to_owned()
        } else {
            event.metadata().level().to_string()
        };
        let context = if fields.context.is_empty() {
            String::new()
        } else {
            format!("{}: ", fields.context)
        };
        writeln!(
            writer,
            "[{}] {level} {context}{}",
            fields.component, fields.message
        )
    }
}
