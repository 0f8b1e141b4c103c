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
    #[command(subcommand)]
    command: Option<Command>,
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
        None => {
            eprintln!("esb: the server is not built yet; only `esb validate` works");
            ExitCode::from(2)
        }
    }
}
