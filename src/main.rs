//! The `vireid` command line. Only argument parsing and dispatch live here;
//! each subcommand's work is in `vireid::cli` (or, for a tool's own command,
//! in the tool: `synth`, `eval distmat`).

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "vireid", version, about = "Visible–infrared person re-identification for dual-spectrum camera boxes")]
struct Cli {
    /// Log filter (e.g. `info`, `vireid=debug`; RUST_LOG overrides it). ONNX Runtime's internals stay at
    /// warn unless named (`info,ort=info`).
    #[arg(long, global = true, env = "VIREID_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check a config file as `vireid run` would start it (model, token, cameras' pipelines) and print what it describes.
    CheckConfig(vireid::cli::check_config::CheckConfigArgs),
    /// Detect (and optionally track) people in every frame of a video file; JSON lines out.
    #[cfg(feature = "media")]
    Detect(vireid::cli::detect::DetectArgs),
    /// Run the cameras of a config: ingest → detect → track → pair → embed → gallery → events (and the API).
    #[cfg(feature = "media")]
    Run(vireid::cli::run::RunArgs),
    /// Serve H.264 MP4 files or test patterns over RTSP (stand-in cameras for demos and tests).
    #[cfg(feature = "media")]
    ServeRtsp(vireid::cli::serve_rtsp::ServeRtspArgs),
    /// Synthetic dual-spectrum people: SYSU-MM01/RegDB datasets, scene videos, contact sheet.
    Synth(vireid::synth::SynthArgs),
    /// Benchmark protocols: SYSU-MM01, RegDB, LLCM (CMC, mAP, mINP).
    Eval(vireid::cli::eval::EvalArgs),
    // --- embed / gallery / events / score (backend) ---
    /// Embed a folder of person crops into an .npy feature matrix.
    Embed(vireid::cli::embed::EmbedArgs),
    /// Inspect or edit the gallery: list identities, show one, forget one.
    Gallery {
        #[command(subcommand)]
        command: vireid::cli::gallery::GalleryCommand,
    },
    /// Enrol a watch-list identity from images.
    Enrol(vireid::cli::gallery::EnrolArgs),
    /// Serve the HTTP API and dashboard over the gallery ([api] in the config).
    Serve(vireid::cli::serve::ServeArgs),
    /// Look a person crop up in the gallery.
    Query(vireid::cli::gallery::QueryArgs),
    /// Derive same- and cross-modality thresholds from a labelled dataset at a target false-match rate.
    Thresholds(vireid::cli::thresholds::ThresholdsArgs),
    /// Fit the cross-modal adapter on the box's own harvest and write an adapted model.
    Adapt(vireid::cli::adapt::AdaptArgs),
    /// Score sightings against a synthetic scene's ground truth.
    Score(vireid::cli::score::ScoreArgs),
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// A command this build leaves out (built without the `media` feature).
    #[cfg(not(feature = "media"))]
    #[command(external_subcommand)]
    Unavailable(Vec<String>),
}

/// Commands a build without the `media` feature (GStreamer, OpenCV) leaves out.
#[cfg(not(feature = "media"))]
const MEDIA_COMMANDS: [&str; 3] = ["run", "detect", "serve-rtsp"];

#[derive(Subcommand)]
enum BenchCommand {
    /// Embedder throughput (crops/s) at a batch size.
    Embed(vireid::cli::embed::BenchEmbedArgs),
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    init_logging(&cli.log);
    end_quietly_on_closed_stdout(&cli.command);
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // The whole chain on one line: the thing and the fix (a cause a
            // message already quotes is not repeated).
            eprintln!("error: {}", vireid::core::error_chain(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// glibc gives threads that allocate their own malloc arenas (up to 8 per
/// core) and keeps what they free: with GStreamer's threads coming and going
/// at every camera reconnect, `vireid run`'s RSS grew 28 % over 100
/// reconnects, and with 2 arenas it stayed flat (`bench/soak_cameras.sh`,
/// BENCHMARKS.md). An explicit `MALLOC_ARENA_MAX` is left to glibc.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: sets one allocator parameter, before any thread is started.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// Rust ignores SIGPIPE, so a command whose reader goes away (`vireid synth
/// scene … | head -1`) panicked in `println!`. One-shot commands take the
/// default action instead and end quietly, as other Unix tools do. The
/// service commands keep ignoring it: a peer that drops a socket (MQTT, the
/// API, RTSP) must be an error to handle, not the end of the process.
fn end_quietly_on_closed_stdout(command: &Command) {
    #[cfg(feature = "media")]
    if matches!(command, Command::Run(_) | Command::ServeRtsp(_)) {
        return;
    }
    if matches!(command, Command::Serve(_)) {
        return;
    }
    #[cfg(unix)]
    // SAFETY: sets one signal disposition, before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The log policy. The filter is RUST_LOG, else `--log` / VIREID_LOG (a bad
/// one falls back to `info`). ONNX Runtime's internals (`ort`: arena
/// growth, graph rewrites, several hundred lines per model load) stay at
/// `warn` unless the filter names `ort`; GStreamer logs only through its own
/// GST_DEBUG. Colour only when stderr is a terminal (and NO_COLOR is unset),
/// so files and the journal get plain text.
fn init_logging(filter: &str) {
    use std::io::IsTerminal;
    let asked = std::env::var("RUST_LOG")
        .ok()
        .filter(|f| tracing_subscriber::EnvFilter::try_new(f).is_ok())
        .unwrap_or_else(|| filter.to_string());
    let asked = if tracing_subscriber::EnvFilter::try_new(&asked).is_ok() { asked } else { "info".to_string() };
    let env_filter = tracing_subscriber::EnvFilter::new(quiet_internals(&asked));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt().with_env_filter(env_filter).with_ansi(colour).with_writer(std::io::stderr).init();
}

/// `filter` with `ort=warn` added unless it already says what `ort` logs.
fn quiet_internals(filter: &str) -> String {
    let names_ort = filter.split(',').any(|d| {
        let target = d.trim().split(['=', '[']).next().unwrap_or("");
        target == "ort" || target.starts_with("ort::")
    });
    match (names_ort, filter.trim().is_empty()) {
        (true, _) => filter.to_string(),
        (false, true) => "ort=warn".to_string(),
        (false, false) => format!("{filter},ort=warn"),
    }
}

fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::CheckConfig(args) => vireid::cli::check_config::run(&args),
        #[cfg(feature = "media")]
        Command::Detect(args) => vireid::cli::detect::run_detect(args),
        #[cfg(feature = "media")]
        Command::Run(args) => vireid::cli::run::run(args),
        #[cfg(feature = "media")]
        Command::ServeRtsp(args) => vireid::cli::serve_rtsp::run(args),
        #[cfg(not(feature = "media"))]
        Command::Unavailable(args) => {
            let name = args.first().map(String::as_str).unwrap_or("");
            if MEDIA_COMMANDS.contains(&name) {
                anyhow::bail!(
                    "`vireid {name}` needs cameras and video (GStreamer, OpenCV), and this vireid was built without \
                     the `media` feature: use a default build (cargo build --release)"
                )
            }
            anyhow::bail!("unknown command '{name}': see `vireid --help`")
        }
        Command::Synth(args) => Ok(vireid::synth::run(&args)?),
        Command::Eval(args) => vireid::cli::eval::run(args),
        Command::Embed(args) => vireid::cli::embed::run_embed(&args),
        Command::Gallery { command } => vireid::cli::gallery::run_gallery(&command),
        Command::Enrol(args) => vireid::cli::gallery::run_enrol(&args),
        Command::Serve(args) => vireid::cli::serve::run(args),
        Command::Query(args) => vireid::cli::gallery::run_query(&args),
        Command::Thresholds(args) => vireid::cli::thresholds::run_thresholds(&args),
        Command::Adapt(args) => vireid::cli::adapt::run_adapt(&args),
        Command::Score(args) => vireid::cli::score::run(&args),
        Command::Bench { what: BenchCommand::Embed(args) } => vireid::cli::embed::run_bench_embed(&args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// `--help` explains every option of every command (`gallery … --config`,
    /// `enrol/query --modality` and `query --top` once had no text).
    #[test]
    fn every_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} --{}", a.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = vec![];
        walk(&super::Cli::command(), "vireid", &mut missing);
        assert!(missing.is_empty(), "arguments without help text: {missing:#?}");
    }
}
