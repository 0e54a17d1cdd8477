//! A loopback TCP forwarder a test can cut, to take a client's connection away without
//! closing its session.
//!
//! Killing the client would not do: a client that goes away cleanly closes its session, and
//! one that is merely dropped keeps reconnecting. Between client and member, the proxy can
//! drop every forwarded connection and refuse new ones for as long as the test needs (for
//! instance until the member has expired the session), then let connections through again.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Proxy {
    addr: SocketAddr,
    open: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Starts forwarding a fresh loopback port to `target` (`HOST:PORT`).
    pub async fn start(target: &str) -> Proxy {
        let target: SocketAddr = target.parse().expect("proxy target is HOST:PORT");
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the proxy port");
        let addr = listener.local_addr().expect("proxy local address");
        let (open, open_rx) = watch::channel(true);
        let accept = tokio::spawn(accept_loop(listener, target, open_rx));
        Proxy { addr, open, accept }
    }

    /// `127.0.0.1:PORT` clients connect to.
    pub fn addr(&self) -> String {
        self.addr.to_string()
    }

    /// Drops every forwarded connection; new ones are accepted and closed at once.
    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.open.send_replace(true);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, open: watch::Receiver<bool>) {
    while let Ok((client, _)) = listener.accept().await {
        if !*open.borrow() {
            continue; // dropping the socket closes it
        }
        tokio::spawn(forward(client, target, open.clone()));
    }
}

async fn forward(mut client: TcpStream, target: SocketAddr, mut open: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(target).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = open.wait_for(|o| !*o) => {}
    }
}
