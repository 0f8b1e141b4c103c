//! `esb`: the integration server binary. Parses flags and hands over to the library.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "esb",
    version,
    about = "Integration server with zero-downtime hot deployment"
)]
struct Cli {
    /// Configuration directory holding esb.toml and deployments/.
    #[arg(long, default_value = "conf", global = true)]
    conf: PathBuf,
    /// Refuse to start if any unit fails to deploy (for CI).
    #[arg(long)]
    strict: bool,
    /// Do not watch conf/deployments for changes (overrides [hot_deploy] watch).
    #[arg(long)]
    no_watch: bool,
    /// Data-plane worker threads (default: [server] workers, or one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Log format on stderr: `text` (colours only on a terminal, and not with NO_COLOR) or
    /// `json` (one object per line: timestamp, level, target, fields).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Check the root config and every unit offline; exit 1 if anything is invalid.
    Validate {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    // Before any other thread exists: all but the data plane's run in short slices.
    esb_core::sched::background();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Validate { json }) => {
            let report = deployments::check::check_dir(&cli.conf);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).expect("report serializes")
                );
            } else {
                print!("{}", report.render());
            }
            if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        None => serve(cli),
    }
}

fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("ESB_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().with_ansi(false).init(),
        LogFormat::Text => {
            let colour = std::io::stderr().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            builder.with_ansi(colour).init()
        }
    }
}

fn serve(cli: Cli) -> ExitCode {
    esb_core::upgrade::remember_exe();
    init_logging(cli.log_format);
    // Started by a binary upgrade: the listening sockets come from the old process.
    let inherited = match esb_core::upgrade::inherit() {
        Some(Ok(i)) => Some(i),
        Some(Err(e)) => {
            eprintln!("esb: {e}");
            return ExitCode::FAILURE;
        }
        None => None,
    };
    let workers = cli.workers.or_else(|| {
        deployments::RootConfig::load(&cli.conf)
            .ok()
            .map(|r| r.server.workers)
            .filter(|w| *w > 0)
    });
    // The data plane: `workers` threads, each with its own runtime, serving the client
    // connections handed to it.
    let workers = workers.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    if let Err(e) = esb_core::workers::start(workers) {
        eprintln!("esb: cannot start {workers} worker threads: {e}");
        return ExitCode::FAILURE;
    }
    // Management, the engine, watchers, the accept loops, and the message and file
    // consumers and scheduled tasks (whose pipelines may be as busy as the data plane's):
    // as many threads as the data plane has (blocking work such as a deploy's build steps
    // aside with `block_in_place`).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        // Parsing a unit nests as deep as TOML allows (80 levels): leave room for it
        // beyond the 2 MiB default.
        .thread_stack_size(4 << 20)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut opts = esb_core::server::Options {
        conf_dir: cli.conf,
        strict: cli.strict,
        watch: cli.no_watch.then_some(false),
        events: Default::default(),
        hold_tasks: inherited.is_some(),
        clients: Default::default(),
    };
    let (mut first_pool, mut link) = match inherited {
        Some(i) => (Some(i.pool), Some((i.link, i.nice))),
        None => (None, None),
    };
    // A warm restart (management `restart`) ends `serve` with `Exit::Restart`: the next
    // generation is started in this process from the handover (the checked root config and
    // every listening socket). If it cannot start, the previous configuration starts again
    // on the same sockets and the restart is reported as rejected.
    let result = rt.block_on(async {
        let mut pool = first_pool.take().unwrap_or_default();
        let mut root = deployments::RootConfig::load(&opts.conf_dir)
            .map_err(esb_core::server::StartError::Root)?;
        let mut previous: Option<deployments::RootConfig> = None;
        let mut ready: Option<tokio::sync::oneshot::Sender<Result<(), String>>> = None;
        loop {
            let server = match esb_core::server::Server::start(&opts, root.clone(), &mut pool).await {
                Ok(s) => s,
                Err(e) => match (ready.take(), previous.take()) {
                    (Some(tx), Some(prev)) => {
                        let _ = tx.send(Err(format!(
                            "the new configuration failed to start ({e}); the previous one runs again"
                        )));
                        tracing::error!("warm restart failed: {e}; starting the previous configuration again");
                        root = prev;
                        continue;
                    }
                    _ => return Err(e),
                },
            };
            pool.close_rest();
            // Only the first generation of an upgraded process waits for the old one.
            opts.hold_tasks = false;
            if let Some(tx) = ready.take() {
                server.when_ready(tx);
            }
            if let Some((link, nice)) = link.take() {
                // Upgrade: tell the old process once this one serves.
                let (tx, rx) = tokio::sync::oneshot::channel();
                server.when_ready(tx);
                let s = server.clone();
                tokio::spawn(async move {
                    if let Ok(Ok(())) = rx.await {
                        esb_core::upgrade::confirm(link, nice, s).await;
                    }
                });
            }
            match server.serve().await? {
                esb_core::server::Exit::Stopped => return Ok(()),
                esb_core::server::Exit::Restart(h) => {
                    let h = *h;
                    tracing::info!("warm restart: starting again with the re-read root config");
                    previous = Some(std::mem::replace(&mut root, h.root));
                    pool = h.pool;
                    ready = Some(h.ready);
                }
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("esb: {e}");
            ExitCode::FAILURE
        }
    }
}
