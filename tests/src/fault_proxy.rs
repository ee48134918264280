//! A TCP proxy on `127.0.0.1` that injects network faults between a client
//! and one upstream: the soak puts it between ext-authz and the IdP.
//!
//! * [`FaultMode::Pass`]: bytes flow both ways.
//! * [`FaultMode::Refuse`]: the listening socket is closed, so connections
//!   are refused, and open ones are closed: a crashed or unreachable host.
//! * [`FaultMode::Blackhole`]: connections are accepted and nothing flows,
//!   in either direction, on new or open ones: a hung host or a dropped
//!   route, the case where only timeouts help.
//!
//! Leaving `Blackhole` closes the connections it held. The port stays the
//! same across modes (it is bound again when leaving `Refuse`).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context as _, Result};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    Pass,
    Refuse,
    Blackhole,
}

impl std::fmt::Display for FaultMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FaultMode::Pass => "pass",
            FaultMode::Refuse => "refuse",
            FaultMode::Blackhole => "blackhole",
        })
    }
}

/// Connections seen, for the soak's report.
#[derive(Debug, Default)]
pub struct ProxyCounts {
    pub accepted: AtomicU64,
    pub relayed: AtomicU64,
    pub held: AtomicU64,
}

/// A running proxy. Stops (closing every connection) when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    mode: watch::Sender<FaultMode>,
    counts: Arc<ProxyCounts>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Listen on `127.0.0.1:0` and relay to `upstream`, in `Pass` mode.
    pub async fn start(upstream: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("binding the fault proxy")?;
        let addr = listener.local_addr()?;
        let (mode, mode_rx) = watch::channel(FaultMode::Pass);
        let counts = Arc::new(ProxyCounts::default());
        let task = tokio::spawn(run(listener, addr, upstream, mode_rx, counts.clone()));
        Ok(FaultProxy {
            addr,
            upstream,
            mode,
            counts,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    pub fn mode(&self) -> FaultMode {
        *self.mode.borrow()
    }

    /// Switch mode; takes effect on open connections too.
    pub fn set_mode(&self, mode: FaultMode) {
        self.mode.send_replace(mode);
    }

    pub fn counts(&self) -> &ProxyCounts {
        &self.counts
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    listener: TcpListener,
    addr: SocketAddr,
    upstream: SocketAddr,
    mut mode: watch::Receiver<FaultMode>,
    counts: Arc<ProxyCounts>,
) {
    let mut listener = Some(listener);
    let mut conns = JoinSet::new();
    loop {
        let current = *mode.borrow_and_update();
        match (current, &listener) {
            // Refuse: no listening socket at all.
            (FaultMode::Refuse, Some(_)) => listener = None,
            (FaultMode::Pass | FaultMode::Blackhole, None) => {
                match TcpListener::bind(addr).await {
                    Ok(l) => listener = Some(l),
                    Err(e) => {
                        eprintln!("fault proxy: cannot listen on {addr} again: {e}");
                        // Try again on the next mode change or after a pause.
                        tokio::select! {
                            r = mode.changed() => if r.is_err() { return },
                            () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                        }
                        continue;
                    }
                }
            }
            _ => {}
        }
        tokio::select! {
            r = mode.changed() => if r.is_err() { return },
            accepted = accept(listener.as_ref()) => {
                let Ok((stream, _)) = accepted else { continue };
                counts.accepted.fetch_add(1, Ordering::Relaxed);
                conns.spawn(connection(stream, upstream, mode.clone(), counts.clone()));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn accept(listener: Option<&TcpListener>) -> std::io::Result<(TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// One client connection, for as long as the mode allows.
async fn connection(
    mut client: TcpStream,
    upstream: SocketAddr,
    mut mode: watch::Receiver<FaultMode>,
    counts: Arc<ProxyCounts>,
) {
    let _ = client.set_nodelay(true);
    let now = *mode.borrow_and_update();
    match now {
        FaultMode::Pass => {}
        FaultMode::Refuse => return,
        FaultMode::Blackhole => {
            counts.held.fetch_add(1, Ordering::Relaxed);
            // Hold it, silent, until the mode changes; then close it.
            let _ = mode.changed().await;
            return;
        }
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = server.set_nodelay(true);
    counts.relayed.fetch_add(1, Ordering::Relaxed);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        () = until_not_pass(&mut mode) => {
            if *mode.borrow() == FaultMode::Blackhole {
                counts.held.fetch_add(1, Ordering::Relaxed);
                // Stop relaying but keep both sockets open: the client
                // waits for bytes that never come.
                let _ = mode.changed().await;
            }
        }
    }
}

async fn until_not_pass(mode: &mut watch::Receiver<FaultMode>) {
    loop {
        if mode.changed().await.is_err() {
            return std::future::pending().await;
        }
        if *mode.borrow_and_update() != FaultMode::Pass {
            return;
        }
    }
}

#[cfg(test)]
mod tests;
