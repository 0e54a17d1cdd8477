//! The `keepr` command: run a member, and tools around it.

mod bench;
mod members;
mod server;
mod up;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "keepr",
    version,
    about = "A ZooKeeper-compatible coordination service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one ensemble member.
    Server(Box<server::ServerArgs>),
    /// Drive a ZooKeeper-protocol ensemble (keepr or Apache ZooKeeper) with load.
    Bench(bench::BenchArgs),
    /// Show or change an ensemble's membership (admin API).
    Members(members::MembersArgs),
    /// Run a local ensemble of separate server processes on 127.0.0.1.
    Up(up::UpArgs),
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keepr: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Server(args) => server::run(*args),
        Command::Up(args) => up::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Members(args) => members::run(args),
    }
}
