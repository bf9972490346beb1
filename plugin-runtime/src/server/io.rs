//! Accepted connections, after TLS, as one stream for tonic.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;

use super::listener::Listener;

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// One connection from the host, plaintext or TLS, over Unix or TCP.
pub(crate) struct Io(Box<dyn Stream>);

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Io")
    }
}

impl tonic::transport::server::Connected for Io {
    type ConnectInfo = ();

    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

/// The accepted connections, and the accept task (stopped when this is dropped).
pub(crate) struct Incoming {
    pub(crate) stream: ReceiverStream<io::Result<Io>>,
    pub(crate) guard: AbortOnDrop,
}

/// Aborts a task when dropped.
pub(crate) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Accepts connections until `stop` resolves; each TLS handshake runs in its own task so a
/// slow or hostile client cannot hold up the host's connection.
///
/// With `multiplexed` (go-plugin's `PLUGIN_MULTIPLEX_GRPC`, used by Vault's containerized
/// plugins) the listener accepts one connection, runs a yamux server session over it, and
/// every stream the host opens in that session is a connection of its own (TLS included).
pub(crate) fn incoming(
    listener: Listener,
    tls: Option<TlsAcceptor>,
    handshake_timeout: Duration,
    multiplexed: bool,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Incoming {
    let (tx, rx) = mpsc::channel(16);
    let task = tokio::spawn(async move {
        tokio::pin!(stop);
        if multiplexed {
            let first = tokio::select! {
                () = &mut stop => return,
                r = accept(&listener) => r,
            };
            match first {
                Ok(conn) => serve_yamux(conn, tls, handshake_timeout, tx, stop).await,
                Err(e) => {
                    tracing::error!(error = %e, "accepting the multiplexed connection failed")
                }
            }
            return;
        }
        loop {
            let accepted: io::Result<Box<dyn Stream>> = tokio::select! {
                () = &mut stop => break,
                r = accept(&listener) => r,
            };
            match accepted {
                Ok(stream) => secure(stream, tls.clone(), handshake_timeout, tx.clone()),
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        // Dropping the listener here closes it; the socket file is removed by its owner.
        drop(listener);
    });
    Incoming {
        stream: ReceiverStream::new(rx),
        guard: AbortOnDrop(task),
    }
}

/// Runs the TLS handshake (if any) in its own task and hands the connection to the server.
fn secure(
    stream: Box<dyn Stream>,
    tls: Option<TlsAcceptor>,
    handshake_timeout: Duration,
    tx: mpsc::Sender<io::Result<Io>>,
) {
    tokio::spawn(async move {
        let io = match tls {
            None => Io(stream),
            Some(acceptor) => {
                match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => Io(Box::new(tls)),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "refused a connection: TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::warn!("refused a connection: TLS handshake timed out");
                        return;
                    }
                }
            }
        };
        let _ = tx.send(Ok(io)).await;
    });
}

async fn serve_yamux(
    conn: Box<dyn Stream>,
    tls: Option<TlsAcceptor>,
    handshake_timeout: Duration,
    tx: mpsc::Sender<io::Result<Io>>,
    stop: Pin<&mut impl Future<Output = ()>>,
) {
    use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};
    let mut session =
        yamux::Connection::new(conn.compat(), yamux::Config::default(), yamux::Mode::Server);
    let mut inbound = futures_util::stream::poll_fn(move |cx| session.poll_next_inbound(cx));
    let mut stop = stop;
    loop {
        let next = tokio::select! {
            () = &mut stop => break,
            next = futures_util::StreamExt::next(&mut inbound) => next,
        };
        match next {
            Some(Ok(stream)) => {
                secure(
                    Box::new(stream.compat()),
                    tls.clone(),
                    handshake_timeout,
                    tx.clone(),
                );
            }
            Some(Err(e)) => {
                tracing::warn!(error = %e, "the multiplexed connection failed");
                break;
            }
            None => break,
        }
    }
}

async fn accept(listener: &Listener) -> io::Result<Box<dyn Stream>> {
    match listener {
        Listener::Unix { listener, .. } => {
            let (s, _) = listener.accept().await?;
            Ok(Box::new(s))
        }
        Listener::Tcp { listener, .. } => {
            let (s, _) = listener.accept().await?;
            s.set_nodelay(true)?;
            Ok(Box::new(s))
        }
    }
}
