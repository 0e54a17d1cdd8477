//! `keepr-e2e`: brings the test Kubernetes up and down, builds and loads images, and runs
//! the cluster add-ons.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "keepr-e2e", about = "A real Kubernetes for keepr's tests")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
        #[arg(long, default_value = "hostpath")]
        storage_class: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Addons {
            kubeconfig,
            dns_listen,
            cluster_domain,
            volumes_dir,
            storage_class,
        } => {
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
                let _ = tokio::signal::ctrl_c().await;
            };
            keepr_e2e::addons::run(client, addons, shutdown).await?;
        }
    }
    Ok(())
}
