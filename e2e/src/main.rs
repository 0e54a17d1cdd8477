//! `keepr-e2e`: brings the test Kubernetes up and down, builds and loads keepr's images, and
//! runs the cluster add-ons.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use keepr_e2e::layout::Paths;
use keepr_e2e::{cluster, images, nodes};

#[derive(Parser)]
#[command(name = "keepr-e2e", about = "A real Kubernetes for keepr's tests")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Installs what is missing, builds Kubernetes once (cached), starts the cluster and
    /// waits until every node is Ready. Does nothing to a cluster that is already up.
    Up {
        #[arg(long, default_value_t = 3)]
        nodes: u32,
    },
    /// Stops everything the cluster started and removes every trace of it on the host.
    Down,
    /// What is running and where its logs are. Exits 1 unless the cluster is fully up.
    Status,
    /// Builds the keepr and keepr-operator images (tags `dev` and the workspace version)
    /// from the workspace's release binaries and loads them into every node.
    Images,
    /// Runs the cluster add-ons (DNS, volume provisioner) in the foreground; `up` starts this.
    Addons {
        #[arg(long)]
        kubeconfig: PathBuf,
        #[arg(long)]
        dns_listen: SocketAddr,
        #[arg(long, default_value = "cluster.local")]
        cluster_domain: String,
        #[arg(long)]
        volumes_dir: PathBuf,
        #[arg(long, default_value = keepr_e2e::layout::STORAGE_CLASS)]
        storage_class: String,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let paths = Paths::default();
    match Cli::parse().command {
        Command::Up { nodes } => {
            let options = cluster::UpOptions {
                nodes,
                addons_program: std::env::current_exe().context("locating keepr-e2e")?,
            };
            cluster::up(&paths, &options)?;
            println!("export KUBECONFIG={}", paths.kubeconfig().display());
        }
        Command::Down => {
            cluster::down(&paths);
        }
        Command::Status => {
            let (up, text) = cluster::status(&paths);
            print!("{text}");
            if !up {
                std::process::exit(1);
            }
        }
        Command::Images => {
            let n = nodes::configured(&paths);
            anyhow::ensure!(n > 0, "no cluster: run `keepr-e2e up` first");
            for a in images::build_and_load(&paths, n)? {
                println!("{}", a.display());
            }
        }
        Command::Addons {
            kubeconfig,
            dns_listen,
            cluster_domain,
            volumes_dir,
            storage_class,
        } => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async {
                let kc = kube::config::Kubeconfig::read_from(&kubeconfig)?;
                let config = kube::Config::from_custom_kubeconfig(
                    kc,
                    &kube::config::KubeConfigOptions::default(),
                )
                .await?;
                let client = kube::Client::try_from(config)?;
                let addons = keepr_e2e::addons::AddonConfig {
                    dns_listen,
                    cluster_domain,
                    volumes_dir,
                    storage_class,
                };
                let shutdown = async {
                    let mut term =
                        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                            .expect("installing the SIGTERM handler");
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = tokio::signal::ctrl_c() => {}
                    }
                };
                keepr_e2e::addons::run(client, addons, shutdown).await?;
                anyhow::Ok(())
            })?;
        }
    }
    Ok(())
}
