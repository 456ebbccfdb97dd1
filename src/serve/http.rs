//! The scrape listener: hyper (HTTP/1.1) on a small tokio runtime of its own thread, TLS by
//! rustls, basic auth by bcrypt. The BPF side never runs here: a scrape is a message to the
//! thread that owns the [`super::Collector`], which reads the maps once for every scrape
//! waiting (one read at a time) and streams the text back as it renders it, in chunks of about
//! 64 KiB ([`Chunks::render`]: each rendered buffer becomes a body chunk as it is, no copy): the
//! listener sends the first chunk while the next is rendered,
//! and the whole text never sits in memory at once unless the client reads slower than it is
//! made. The collector never waits for a client.
//!
//! Limits, so that no request of any size or shape can crash the server or grow its memory
//! without bound: [`MAX_CONNECTIONS`] connections at once (more are closed at accept), request
//! head (line + headers) at most [`MAX_HEAD`] bytes and [`MAX_HEADERS`] headers (hyper answers
//! 431 beyond), bodies never read, [`HEAD_TIMEOUT`] to send a request head,
//! [`HANDSHAKE_TIMEOUT`] for TLS, [`CONNECTION_LIFETIME`] for a whole connection,
//! [`WRITE_STALL`] for a client that stops reading the answer (then the connection is closed
//! and the rest of its text dropped), [`MAX_WAITING`] scrapes queued (503 beyond),
//! [`MAX_BCRYPT`] password checks at once. An idle keep-alive connection is closed after
//! [`HEAD_TIMEOUT`] (hyper's head timer runs while it waits for the next request); a request
//! with a body is answered, then its connection closed without reading the body.
use std::convert::Infallible;
use std::future::Future;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::pin::Pin;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{HeaderValue, AUTHORIZATION, CONNECTION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::{oneshot, watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use super::webconfig::WebConfig;
use crate::error::usage_err;

pub const MAX_CONNECTIONS: usize = 64;
pub const MAX_HEAD: usize = 16 * 1024;
pub const MAX_HEADERS: usize = 64;
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// A connection whose answer cannot be written for this long (the client stopped reading) is
/// closed.
pub const WRITE_STALL: Duration = Duration::from_secs(10);
pub const MAX_WAITING: usize = 32;
pub const MAX_BCRYPT: usize = 2;
/// How long a stop waits for the requests in flight.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// The answer to one scrape: the chunks of the Prometheus text as they are rendered (the
/// stream ends with the text), or why there is none.
type ScrapeResult = Result<UnboundedReceiver<Bytes>, String>;

/// A scrape waiting for the collector.
pub struct Scrape(oneshot::Sender<ScrapeResult>);

impl Scrape {
    /// Answers 500 with `msg`.
    pub fn fail(self, msg: String) {
        let _ = self.0.send(Err(msg));
    }

    /// Answers 200: the text follows through the returned [`Chunks`] (shared by every scrape
    /// given to it) and ends when it is dropped.
    pub fn start(self, chunks: &mut Chunks) {
        let (tx, rx) = unbounded_channel();
        if self.0.send(Ok(rx)).is_ok() {
            chunks.to.push(tx);
        }
    }
}

/// Where the collector writes the text of the scrapes it answers: each write becomes one chunk,
/// sent to every scrape still connected (never waiting: a slow client's chunks queue on its
/// connection until it reads them or [`WRITE_STALL`] closes it).
#[derive(Default)]
pub struct Chunks {
    to: Vec<UnboundedSender<Bytes>>,
}

impl Chunks {
    /// Whether any scrape still wants the text.
    pub fn wanted(&self) -> bool {
        !self.to.is_empty()
    }

    /// Renders `snapshot` as Prometheus text straight into body chunks of about
    /// [`CHUNK_SIZE`] bytes, each sent as it is full (no copy: the rendered buffer becomes the
    /// chunk). Stops early once no scrape wants the text.
    pub fn render(&mut self, snapshot: &crate::model::Snapshot, opts: &crate::render::Options) {
        if self.wanted() {
            // It fails only once every client has gone: nothing to report then.
            let _ = crate::render::render_prom_pieces(snapshot, opts, CHUNK_SIZE, &mut |text| {
                self.send(Bytes::from(text.into_bytes()))
            });
        }
    }

    /// Sends `chunk` to every scrape still connected; fails once none is.
    fn send(&mut self, chunk: Bytes) -> std::io::Result<()> {
        if !chunk.is_empty() {
            self.to.retain(|tx| tx.send(chunk.clone()).is_ok());
        }
        if self.to.is_empty() {
            return Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "no scrape wants the text any more"));
        }
        Ok(())
    }
}

/// Bytes of text per body chunk. Measured with the 100,000-series bench (README): 256 KiB,
/// 1 MiB and 8 MiB chunks, and an 8 MiB socket send buffer, made no difference beyond the
/// machine's noise, so the smallest (first byte soonest, least memory per chunk) stays.
pub const CHUNK_SIZE: usize = 64 * 1024;

impl std::io::Write for Chunks {
    /// Fails once no scrape wants the text (every client gone): the rendering stops there.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.send(Bytes::copy_from_slice(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A response body: all at once, or the chunks of a scrape as they come.
pub enum Body {
    Full(Option<Bytes>),
    Chunks(UnboundedReceiver<Bytes>),
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Body::Chunks(rx) => rx.poll_recv(cx).map(|c| c.map(|c| Ok(Frame::data(c)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Chunks(_) => SizeHint::default(),
        }
    }
}

/// The connection's socket (under TLS, if any): a write that cannot proceed for
/// [`WRITE_STALL`] fails, which ends the connection (and drops what it had left to send).
struct Guarded<I> {
    io: I,
    stall: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<I> Guarded<I> {
    fn new(io: I) -> Self {
        Guarded { io, stall: None }
    }

    /// Called when a write is pending: arms the timer, or fails once it has run out.
    fn stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        let stall = self.stall.get_or_insert_with(|| Box::pin(tokio::time::sleep(WRITE_STALL)));
        match stall.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client stopped reading the answer",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn guard<T>(&mut self, cx: &mut Context<'_>, r: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        match r {
            Poll::Pending => self.stalled(cx),
            ready => {
                self.stall = None;
                ready
            }
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Guarded<I> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Guarded<I> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        this.guard(cx, r)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.guard(cx, r)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_flush(cx);
        this.guard(cx, r)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.io).poll_shutdown(cx);
        this.guard(cx, r)
    }
}

struct State {
    web: WebConfig,
    telemetry_path: String,
    landing: Bytes,
    scrapes: SyncSender<Scrape>,
    bcrypt: Arc<Semaphore>,
}

/// The running listener.
pub struct Server {
    stop: watch::Sender<bool>,
    thread: JoinHandle<()>,
    pub local_addr: SocketAddr,
}

impl Server {
    /// Stops accepting, lets the requests in flight finish (up to [`STOP_GRACE`]).
    pub fn begin_stop(&self) {
        let _ = self.stop.send(true);
    }

    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }

    pub fn join(self) {
        let _ = self.thread.join();
    }
}

/// Binds `--web.listen-address`: `HOST:PORT`, or `:PORT` for every address (IPv6 and IPv4).
pub fn bind(address: &str) -> anyhow::Result<StdListener> {
    let flag = "--web.listen-address";
    if let Some(port) = address.strip_prefix(':') {
        let port: u16 =
            port.parse().map_err(|_| usage_err(format!("{flag} {address:?}: expected HOST:PORT or :PORT")))?;
        return StdListener::bind(("::", port))
            .or_else(|_| StdListener::bind(("0.0.0.0", port)))
            .map_err(|e| anyhow::anyhow!("{flag} {address}: cannot listen: {e}"));
    }
    if !address.contains(':') {
        return Err(usage_err(format!("{flag} {address:?}: expected HOST:PORT or :PORT")));
    }
    StdListener::bind(address).map_err(|e| anyhow::anyhow!("{flag} {address}: cannot listen: {e}"))
}

/// Starts serving on `listener` (already bound) on a thread of its own.
pub fn start(
    listener: StdListener,
    web: WebConfig,
    telemetry_path: String,
    landing: String,
    scrapes: SyncSender<Scrape>,
) -> anyhow::Result<Server> {
    listener.set_nonblocking(true).map_err(|e| anyhow::anyhow!("listener: {e}"))?;
    let local_addr = listener.local_addr().map_err(|e| anyhow::anyhow!("listener: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(MAX_BCRYPT + 2)
        .build()
        .map_err(|e| anyhow::anyhow!("starting the HTTP runtime: {e}"))?;
    let (stop, stopped) = watch::channel(false);
    let state = Arc::new(State {
        web,
        telemetry_path,
        landing: Bytes::from(landing),
        scrapes,
        bcrypt: Arc::new(Semaphore::new(MAX_BCRYPT)),
    });
    let thread = std::thread::Builder::new()
        .name("ebpfx-http".into())
        .spawn(move || {
            runtime.block_on(accept_loop(listener, state, stopped));
            runtime.shutdown_timeout(Duration::from_millis(100));
        })
        .map_err(|e| anyhow::anyhow!("starting the HTTP thread: {e}"))?;
    Ok(Server { stop, thread, local_addr })
}

async fn accept_loop(listener: StdListener, state: Arc<State>, mut stopped: watch::Receiver<bool>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            crate::say!("ebpfx: listener: {e}");
            return;
        }
    };
    let tls = state.web.tls.clone().map(TlsAcceptor::from);
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            _ = stopped.changed() => break,
            a = listener.accept() => a,
        };
        let Ok((stream, _)) = accepted else {
            // EMFILE and the like: wait a little rather than spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        // Too many connections: this one is closed at once.
        let Ok(permit) = connections.clone().try_acquire_owned() else { continue };
        let _ = stream.set_nodelay(true);
        let stream = Guarded::new(stream);
        let state = state.clone();
        let tls = tls.clone();
        let stopped = stopped.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let serve = async {
                match tls {
                    Some(tls) => {
                        if let Ok(Ok(s)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                            connection(TokioIo::new(s), state, stopped).await;
                        }
                    }
                    None => connection(TokioIo::new(stream), state, stopped).await,
                }
            };
            let _ = tokio::time::timeout(CONNECTION_LIFETIME, serve).await;
        });
    }
    // Stop: wait for the connections (each finishing its request in flight) to end.
    let _ = tokio::time::timeout(STOP_GRACE, connections.acquire_many(MAX_CONNECTIONS as u32)).await;
}

async fn connection<I>(io: TokioIo<I>, state: Arc<State>, mut stopped: watch::Receiver<bool>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| handle(req, state.clone()));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .max_headers(MAX_HEADERS)
        .keep_alive(true);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    if *stopped.borrow() {
        conn.as_mut().graceful_shutdown();
    }
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stopped.changed() => conn.as_mut().graceful_shutdown(),
    }
    let _ = tokio::time::timeout(STOP_GRACE, conn).await;
}

fn response(state: &State, status: StatusCode, content_type: &'static str, body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (k, v) in &state.web.headers {
        if let (Ok(k), Ok(v)) = (hyper::header::HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

fn text(state: &State, status: StatusCode, body: &'static str) -> Response<Body> {
    response(state, status, "text/plain; charset=utf-8", Body::Full(Some(Bytes::from_static(body.as_bytes()))))
}

async fn handle(req: Request<Incoming>, state: Arc<State>) -> Result<Response<Body>, Infallible> {
    let mut r = answer(&req, &state).await;
    // A body is never read: the connection closes after the answer, so that a client sending
    // one slowly holds nothing (hyper then stops reading it).
    if !hyper::body::Body::is_end_stream(req.body()) {
        r.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    }
    Ok(r)
}

async fn answer(req: &Request<Incoming>, state: &Arc<State>) -> Response<Body> {
    if state.web.auth.is_some() {
        let header = req.headers().get(AUTHORIZATION).map(|v| v.as_bytes().to_vec());
        let ok = match state.bcrypt.clone().acquire_owned().await {
            Ok(permit) => {
                let st = state.clone();
                tokio::task::spawn_blocking(move || {
                    let _permit = permit;
                    st.web.auth.as_ref().is_some_and(|a| a.check(header.as_deref()))
                })
                .await
                .unwrap_or(false)
            }
            Err(_) => false,
        };
        if !ok {
            let mut r = text(state, StatusCode::UNAUTHORIZED, "Unauthorized\n");
            r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
            return r;
        }
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(state, StatusCode::METHOD_NOT_ALLOWED, "Method not allowed\n");
        r.headers_mut().insert(hyper::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let path = req.uri().path();
    if path == state.telemetry_path {
        return scrape(state).await;
    }
    match path {
        "/" => response(state, StatusCode::OK, "text/html; charset=utf-8", Body::Full(Some(state.landing.clone()))),
        "/healthz" | "/-/healthy" => text(state, StatusCode::OK, "OK\n"),
        _ => text(state, StatusCode::NOT_FOUND, "Not found\n"),
    }
}

async fn scrape(state: &State) -> Response<Body> {
    let (tx, rx) = oneshot::channel();
    match state.scrapes.try_send(Scrape(tx)) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            return text(state, StatusCode::SERVICE_UNAVAILABLE, "Too many scrapes waiting\n");
        }
        Err(TrySendError::Disconnected(_)) => return text(state, StatusCode::SERVICE_UNAVAILABLE, "Stopping\n"),
    }
    match rx.await {
        Ok(Ok(chunks)) => {
            response(state, StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", Body::Chunks(chunks))
        }
        Ok(Err(msg)) => response(
            state,
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            Body::Full(Some(Bytes::from(format!("reading the maps failed: {msg}\n")))),
        ),
        Err(_) => text(state, StatusCode::SERVICE_UNAVAILABLE, "Stopping\n"),
    }
}

/// The landing page: what runs and where the metrics are.
pub fn landing_page(configs: &[String], telemetry_path: &str) -> String {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let items: String = configs.iter().map(|c| format!("<li>{}</li>", esc(c))).collect();
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>ebpfx</title></head><body>\n<h1>ebpfx {}</h1>\n\
         <p><a href=\"{}\">Metrics</a> · <a href=\"/healthz\">Health</a></p>\n<p>Configs:</p><ul>{items}</ul>\n</body></html>\n",
        env!("CARGO_PKG_VERSION"),
        esc(telemetry_path)
    )
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::sync::mpsc;
    use std::time::Instant;

    use super::*;

    /// A listener on loopback whose scrapes are answered by `collector` on a thread.
    fn serve(collector: impl Fn(Scrape) + Send + 'static) -> (Server, SocketAddr) {
        serve_with(WebConfig::default(), collector)
    }

    fn serve_with(web: WebConfig, collector: impl Fn(Scrape) + Send + 'static) -> (Server, SocketAddr) {
        let listener = StdListener::bind("127.0.0.1:0").expect("bind");
        let (tx, rx) = mpsc::sync_channel::<Scrape>(MAX_WAITING);
        std::thread::spawn(move || {
            for s in rx {
                collector(s);
            }
        });
        let server = start(listener, web, "/metrics".into(), "landing".into(), tx).expect("start");
        let addr = server.local_addr;
        (server, addr)
    }

    /// Reads until EOF, an error, or `limit`: (bytes read, whether the server ended it).
    fn read_all(s: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
        let end = Instant::now() + limit;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        s.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        while Instant::now() < end {
            match s.read(&mut buf) {
                Ok(0) => return (out, true),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => return (out, true),
            }
        }
        (out, false)
    }

    const CHUNK: usize = 64 * 1024;

    #[test]
    fn a_client_that_stops_reading_is_dropped_and_frees_its_text() {
        // 16 MiB per scrape: more than the kernel's socket buffers hold for a client that does
        // not read. The collector keeps writing until no scrape wants the text any more.
        // The first scrape's text comes slowly (a chunk every 100 ms, 400 at most), more than
        // the kernel's socket buffers hold for a client that does not read; the collector
        // stops when no scrape wants it any more. Later scrapes get 256 chunks at once.
        let (gave_up_tx, gave_up_rx) = mpsc::channel::<usize>();
        let first = std::sync::atomic::AtomicBool::new(true);
        let (_server, addr) = serve(move |s| {
            let slow = first.swap(false, std::sync::atomic::Ordering::Relaxed);
            let mut chunks = Chunks::default();
            s.start(&mut chunks);
            let chunk = vec![b'x'; CHUNK];
            let mut n = 0;
            while chunks.wanted() && n < if slow { 400 } else { 256 } {
                if chunks.write_all(&chunk).is_err() {
                    break;
                }
                n += 1;
                if slow {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            if slow {
                let _ = gave_up_tx.send(if chunks.wanted() { usize::MAX } else { n });
            }
        });
        let mut stalled = TcpStream::connect(addr).expect("connect");
        stalled.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").expect("send");
        // The collector sees the scrape go away (its chunks dropped with the connection) well
        // before it has written the whole text, although this client never reads.
        let n = gave_up_rx.recv_timeout(Duration::from_secs(60)).expect("the collector finished");
        assert!(n < 400, "the stalled scrape kept its connection: all {n} chunks written");
        // What reached the client is a cut answer, then the end of the connection.
        let (got, ended) = read_all(&mut stalled, Duration::from_secs(30));
        assert!(ended, "the connection stayed open");
        assert!(got.len() < 400 * CHUNK, "the whole text arrived: {} bytes", got.len());
        // And a client that reads gets a whole answer.
        let mut ok = TcpStream::connect(addr).expect("connect");
        ok.write_all(b"GET /metrics HTTP/1.0\r\nHost: t\r\n\r\n").expect("send");
        let (got, ended) = read_all(&mut ok, Duration::from_secs(60));
        assert!(ended && got.starts_with(b"HTTP/1.0 200"), "{:?}", String::from_utf8_lossy(&got[..got.len().min(200)]));
        assert!(got.len() >= 256 * CHUNK, "cut answer: {} bytes", got.len());
    }

    #[test]
    fn a_scrape_gets_the_rendered_text_byte_for_byte() {
        use crate::model::{Metric, MetricValues, Sample, Snapshot, Window};
        let samples: Vec<Sample> = (0..30_000)
            .map(|i| Sample { labels: vec![format!("proc-{}", i % 500), i.to_string()], value: i as f64 })
            .collect();
        let now = std::time::SystemTime::now();
        let snapshot = Snapshot {
            window: Window { start: now, end: now, length: Duration::from_secs(7) },
            metrics: vec![Metric {
                config: "c".into(),
                name: "x_total".into(),
                help: "x".into(),
                label_names: vec!["comm".into(), "pid".into()],
                values: MetricValues::Counter(samples.into()),
            }],
            decoder_errors: vec![("c".into(), 0)],
            warnings: vec![],
            self_metrics: vec![],
        };
        let opts = crate::render::Options::default();
        let want = crate::render::render(crate::render::Format::Prom, &snapshot, &opts);
        assert!(want.len() > 10 * CHUNK_SIZE, "{} bytes only", want.len());
        let (_server, addr) = serve(move |s| {
            let mut chunks = Chunks::default();
            s.start(&mut chunks);
            chunks.render(&snapshot, &opts);
        });
        for _ in 0..2 {
            let mut c = TcpStream::connect(addr).expect("connect");
            c.write_all(b"GET /metrics HTTP/1.0\r\nHost: t\r\n\r\n").expect("send");
            let (got, ended) = read_all(&mut c, Duration::from_secs(60));
            assert!(
                ended && got.starts_with(b"HTTP/1.0 200"),
                "{:?}",
                String::from_utf8_lossy(&got[..got.len().min(200)])
            );
            let body = got.windows(4).position(|w| w == b"\r\n\r\n").map(|i| &got[i + 4..]).expect("a head");
            assert!(
                body == want.as_bytes(),
                "the body differs from the rendered text ({} vs {} bytes)",
                body.len(),
                want.len()
            );
        }
    }

    #[test]
    fn a_half_sent_head_or_an_idle_connection_is_closed() {
        let (scraped_tx, scraped_rx) = mpsc::channel::<()>();
        let (_server, addr) = serve(move |s| {
            let _ = scraped_tx.send(());
            let mut chunks = Chunks::default();
            s.start(&mut chunks);
            let _ = chunks.write_all(b"m 1\n");
        });
        let mut half = TcpStream::connect(addr).expect("connect");
        half.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n").expect("send");
        let mut idle = TcpStream::connect(addr).expect("connect");
        idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").expect("send");
        let limit = HEAD_TIMEOUT * 3;
        let (_, ended) = read_all(&mut half, limit);
        assert!(ended, "a half-sent head kept its connection");
        let (got, ended) = read_all(&mut idle, limit);
        assert!(got.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&got));
        assert!(ended, "an idle keep-alive connection stayed open");
        assert!(scraped_rx.try_recv().is_err(), "a half-sent head reached the collector");
    }

    #[test]
    fn a_request_body_is_not_waited_for() {
        let (_server, addr) = serve(move |s| {
            let mut chunks = Chunks::default();
            s.start(&mut chunks);
            let _ = chunks.write_all(b"m 1\n");
        });
        // A body announced, barely sent, then nothing: the answer comes and the connection ends.
        let mut slow = TcpStream::connect(addr).expect("connect");
        slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\nabc").expect("send");
        let (got, ended) = read_all(&mut slow, HEAD_TIMEOUT * 3);
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 200") && text.contains("m 1\n"), "{text}");
        assert!(text.to_ascii_lowercase().contains("connection: close"), "{text}");
        assert!(ended, "the connection waited for the body");
    }

    fn openssl(dir: &std::path::Path, args: &[&str]) {
        let out = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("openssl (needed by this test): {e}"));
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// `curl` over TLS to /healthz with `cert` (a client certificate and key), or none: the
    /// HTTP status, 0 when the TLS handshake (or the connection) failed.
    fn curl_status(addr: SocketAddr, dir: &std::path::Path, cert: Option<&str>) -> u16 {
        let mut cmd = std::process::Command::new("curl");
        cmd.current_dir(dir).args(["-sk", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20"]);
        if let Some(c) = cert {
            cmd.args(["--cert", &format!("{c}.crt"), "--key", &format!("{c}.key")]);
        }
        let out = cmd.arg(format!("https://{addr}/healthz")).output().unwrap_or_else(|e| panic!("curl: {e}"));
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
    }

    #[test]
    fn client_auth_types_as_the_exporter_toolkit_defines_them() {
        let dir = tempfile::tempdir().expect("dir");
        let d = dir.path();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"];
        let req = |out: &str, subj: &str, extra: &[&str]| {
            let (key, crt) = (format!("{out}.key"), format!("{out}.crt"));
            let mut a = vec!["req", "-x509"];
            a.extend_from_slice(&ec);
            a.extend_from_slice(&["-keyout", &key, "-out", &crt, "-subj", subj]);
            a.extend_from_slice(extra);
            openssl(d, &a);
        };
        req("ca", "/CN=ebpfx test CA", &[]);
        req("server", "/CN=localhost", &["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]);
        // A stranger: a self-signed client certificate the CA never signed.
        req("stranger", "/CN=stranger", &["-addext", "extendedKeyUsage=clientAuth"]);
        // A client certificate signed by the CA.
        let mut a = vec!["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        a.extend_from_slice(&["-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=client"]);
        openssl(d, &a);
        std::fs::write(d.join("client.ext"), "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n").expect("ext");
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "client.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "client.crt",
                "-days",
                "2",
                "-extfile",
                "client.ext",
            ],
        );
        // (no certificate, the CA's client, the stranger): served or not, per client_auth_type.
        let cases = [
            ("NoClientCert", [true, true, true]),
            ("RequestClientCert", [true, true, true]),
            ("RequireAnyClientCert", [false, true, true]),
            ("VerifyClientCertIfGiven", [true, true, false]),
            ("RequireAndVerifyClientCert", [false, true, false]),
        ];
        for (auth_type, want) in cases {
            let ca = if auth_type.contains("Verify") { "  client_ca_file: ca.crt\n" } else { "" };
            let web = d.join(format!("{auth_type}.yml"));
            std::fs::write(
                &web,
                format!(
                    "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: {auth_type}\n{ca}"
                ),
            )
            .expect("web config");
            let web = WebConfig::load(&web).unwrap_or_else(|e| panic!("{auth_type}: {e:#}"));
            let (_server, addr) = serve_with(web, |_| {});
            let got = [None, Some("client"), Some("stranger")].map(|c| curl_status(addr, d, c) == 200);
            assert_eq!(got, want, "{auth_type}: served (without a certificate, CA-signed, stranger)");
        }
        // The verifying types need the CA.
        let web = d.join("noca.yml");
        std::fs::write(
            &web,
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: VerifyClientCertIfGiven\n",
        )
        .expect("web config");
        let err = WebConfig::load(&web).err().expect("refused");
        assert!(format!("{err}").contains("client_ca_file"), "{err}");
    }
}
