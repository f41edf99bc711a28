//! A TCP proxy in front of the S3 server (or a private PostgreSQL) that a
//! test can take down, point elsewhere or make misbehave, as a store that
//! crashed, throttles or crawls:
//! - down: open connections are cut and new ones refused (closed at once);
//! - unavailable: open connections are cut and every new request is answered
//!   `503 Slow Down`, as S3 answers when it sheds load;
//! - slow: every chunk of every response waits before it is passed on.
//!
//! The S3 server itself, shared by every test, is never touched.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const FORWARD: u8 = 0;
const DOWN: u8 = 1;
const UNAVAILABLE: u8 = 2;
const SLOW: u8 = 3;

/// What S3 answers when it sheds load.
const SLOW_DOWN: &str = "HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n\
    Connection: close\r\nContent-Length: 107\r\n\r\n\
    <?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";

/// The state every connection task reads.
#[derive(Default)]
struct Shared {
    /// Where connections go (`host:port`).
    target: std::sync::Mutex<String>,
    mode: AtomicU8,
    delay_ms: AtomicU64,
    counters: Counters,
}

#[derive(Default)]
struct Counters {
    refused: AtomicU64,
    unavailable: AtomicU64,
    slowed: AtomicU64,
}

/// A running proxy; dropping it stops accepting.
pub struct Proxy {
    /// `http://127.0.0.1:<port>`, to use as a connector's endpoint.
    pub endpoint: String,
    shared: Arc<Shared>,
    /// Bumped to end every open connection.
    cuts: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

/// Answers every request on `client` with a 503 until it hangs up.
async fn answer_unavailable(mut client: TcpStream, counters: &Counters) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut seen = Vec::new();
    loop {
        let Ok(n) = client.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        seen.extend_from_slice(&buf[..n]);
        if seen.windows(4).any(|w| w == b"\r\n\r\n") {
            counters.unavailable.fetch_add(1, Ordering::SeqCst);
            let _ = client.write_all(SLOW_DOWN.as_bytes()).await;
            let _ = client.shutdown().await;
            return;
        }
    }
}

/// Forwards `client` to `server`; while the mode is slow, each response
/// chunk is held back first.
async fn forward(client: TcpStream, server: TcpStream, shared: &Shared) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = tokio::io::copy(&mut client_read, &mut server_write);
    let downstream = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if shared.mode.load(Ordering::SeqCst) == SLOW {
                shared.counters.slowed.fetch_add(1, Ordering::SeqCst);
                let delay = shared.delay_ms.load(Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(delay)).await;
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = upstream => {}
        () = downstream => {}
    }
}

impl Proxy {
    /// Forwards a free loopback port to `target` (`host:port`).
    pub async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let shared = Arc::new(Shared {
            target: std::sync::Mutex::new(target),
            ..Shared::default()
        });
        let (cuts, _) = watch::channel(0u64);
        let task = {
            let shared = Arc::clone(&shared);
            let cuts = cuts.clone();
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let now = shared.mode.load(Ordering::SeqCst);
                    if now == DOWN {
                        shared.counters.refused.fetch_add(1, Ordering::SeqCst);
                        drop(client);
                        continue;
                    }
                    let target = shared.target.lock().map(|t| t.clone()).unwrap_or_default();
                    let shared = Arc::clone(&shared);
                    let mut cut = cuts.subscribe();
                    tokio::spawn(async move {
                        if now == UNAVAILABLE {
                            tokio::select! {
                                () = answer_unavailable(client, &shared.counters) => {}
                                _ = cut.changed() => {}
                            }
                            return;
                        }
                        let Ok(server) = TcpStream::connect(&target).await else {
                            return;
                        };
                        tokio::select! {
                            () = forward(client, server, &shared) => {}
                            _ = cut.changed() => {}
                        }
                    });
                }
            })
        };
        Self {
            endpoint,
            shared,
            cuts,
            task,
        }
    }

    /// Switches to `mode`, cutting every open connection.
    fn switch(&self, mode: u8) {
        self.shared.mode.store(mode, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Cuts every open connection and refuses new ones until [`Proxy::up`].
    pub fn down(&self) {
        self.switch(DOWN);
    }

    /// Cuts every open connection and answers every new request with a 503
    /// until [`Proxy::up`].
    pub fn unavailable(&self) {
        self.switch(UNAVAILABLE);
    }

    /// Holds every response chunk, on open and new connections, `delay`
    /// before passing it on, until [`Proxy::up`].
    pub fn slow(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.shared.delay_ms.store(ms, Ordering::SeqCst);
        self.shared.mode.store(SLOW, Ordering::SeqCst);
    }

    /// Sends new connections to `target` (`host:port`) from now on: a server
    /// that came back elsewhere.
    pub fn retarget(&self, target: String) {
        if let Ok(mut t) = self.shared.target.lock() {
            *t = target;
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.endpoint
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    /// Forwards again, at full speed.
    pub fn up(&self) {
        self.shared.mode.store(FORWARD, Ordering::SeqCst);
    }

    /// Connections refused while down.
    pub fn refused(&self) -> u64 {
        self.shared.counters.refused.load(Ordering::SeqCst)
    }

    /// Requests answered 503.
    pub fn answered_unavailable(&self) -> u64 {
        self.shared.counters.unavailable.load(Ordering::SeqCst)
    }

    /// Response chunks held back while slow.
    pub fn slowed_chunks(&self) -> u64 {
        self.shared.counters.slowed.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
