//! Native TLS for deployments without a reverse proxy: `INCUBASE_TLS_CERT` / `INCUBASE_TLS_KEY`
//! (PEM), served with rustls through poem, HTTP/1.1 and HTTP/2 (ALPN), WebSockets included.
//! SIGHUP reads both files again, so a renewed certificate needs no restart: connections
//! accepted afterwards get it, open ones keep theirs. Files that do not load (a renewal half
//! written, a key that does not match) are logged and the certificate in use stays.
use std::io::Result as IoResult;
use std::path::PathBuf;

use futures::StreamExt;
use futures::stream::BoxStream;
use poem::http::uri::Scheme;
use poem::listener::{Acceptor, IntoTlsConfigStream, RustlsCertificate, RustlsConfig};
use poem::web::{LocalAddr, RemoteAddr};
use tokio::sync::watch;

/// Where the certificate chain and its private key are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// Reads and checks both files: a chain, a private key, and that rustls accepts them.
    pub fn load(&self) -> Result<RustlsConfig, String> {
        let read = |path: &PathBuf| std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()));
        let (cert, key) = (read(&self.cert)?, read(&self.key)?);
        let config = |cert: &[u8], key: &[u8]| {
            RustlsConfig::new().fallback(RustlsCertificate::new().cert(cert.to_vec()).key(key.to_vec()))
        };
        // Building the server config is poem's own check (certificates parse, the key is usable).
        let _checked = IntoTlsConfigStream::into_stream(config(&cert, &key)).map_err(|e| {
            format!("{} / {} are not a usable certificate and key: {e}", self.cert.display(), self.key.display())
        })?;
        Ok(config(&cert, &key))
    }
}

/// The configurations to serve: `first` at once, then the files again on every SIGHUP. The
/// returned receiver turns true once the first has been taken by the TLS acceptor.
pub fn configs(
    files: TlsFiles,
    first: RustlsConfig,
) -> IoResult<(BoxStream<'static, RustlsConfig>, watch::Receiver<bool>)> {
    let (taken, taken_rx) = watch::channel(false);
    #[cfg(unix)]
    let hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let first = futures::stream::once(async move {
        // Once true, the gate never waits again; the closed channel does not matter then.
        taken.send_replace(true);
        first
    });
    #[cfg(unix)]
    let reloads = futures::stream::unfold((files, hangups), |(files, mut hangups)| async move {
        loop {
            hangups.recv().await?;
            match files.load() {
                Ok(config) => {
                    tracing::info!(cert = %files.cert.display(), "SIGHUP: TLS certificate reloaded");
                    return Some((config, (files, hangups)));
                }
                Err(e) => tracing::error!(error = %e, "SIGHUP: TLS certificate not reloaded; the current one stays"),
            }
        }
    });
    #[cfg(not(unix))]
    let reloads = {
        drop(files);
        futures::stream::empty()
    };
    Ok((first.chain(reloads).boxed(), taken_rx))
}

/// Accepts connections only once the TLS acceptor above holds its first configuration: poem's
/// acceptor waits for a connection and for a configuration at the same time, and a connection
/// that came first would be refused ("no valid tls config").
pub struct AfterFirstConfig<A> {
    pub inner: A,
    pub ready: watch::Receiver<bool>,
}

impl<A: Acceptor> Acceptor for AfterFirstConfig<A> {
    type Io = A::Io;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> IoResult<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        if !*self.ready.borrow() {
            self.ready.wait_for(|ready| *ready).await.map_err(std::io::Error::other)?;
        }
        self.inner.accept().await
    }
}
