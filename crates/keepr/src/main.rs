//! The `keepr` command: run a member, and tools around it.

mod bench;
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
    /// Run a local ensemble of separate server processes on 127.0.0.1.
    Up(up::UpArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => server::run(*args),
        Command::Up(args) => up::run(args),
        Command::Bench(args) => bench::run(args),
    }
}
