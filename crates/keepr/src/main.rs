//! The `keepr` command: run a member, and tools around it.

mod server;

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
    Server(server::ServerArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Server(args) => server::run(args),
    }
}
