//! The scrape listener: hyper (HTTP/1.1) on a small tokio runtime of its own thread, TLS by
//! rustls, basic auth by bcrypt. The BPF side never runs here: a scrape is a message to the
//! thread that owns the [`super::Collector`], which reads the maps once for every scrape
//! waiting (one read at a time) and sends the text back.
//!
//! Limits, so that no request of any size or shape can crash the server or grow its memory
//! without bound: [`MAX_CONNECTIONS`] connections at once (more are closed at accept), request
//! head (line + headers) at most [`MAX_HEAD`] bytes and [`MAX_HEADERS`] headers (hyper answers
//! 431 beyond), bodies never read, [`HEAD_TIMEOUT`] to send a request head,
//! [`HANDSHAKE_TIMEOUT`] for TLS, [`CONNECTION_LIFETIME`] for a whole connection,
//! [`MAX_WAITING`] scrapes queued (503 beyond), [`MAX_BCRYPT`] password checks at once.
use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
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
pub const MAX_WAITING: usize = 32;
pub const MAX_BCRYPT: usize = 2;
/// How long a stop waits for the requests in flight.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// The answer to one scrape: the Prometheus text, or why there is none.
pub type ScrapeResult = Result<Bytes, String>;

/// A scrape waiting for the collector.
pub struct Scrape(pub oneshot::Sender<ScrapeResult>);

impl Scrape {
    pub fn answer(self, result: ScrapeResult) {
        let _ = self.0.send(result);
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

fn response(state: &State, status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (k, v) in &state.web.headers {
        if let (Ok(k), Ok(v)) = (hyper::header::HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

fn text(state: &State, status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    response(state, status, "text/plain; charset=utf-8", Bytes::from_static(body.as_bytes()))
}

async fn handle(req: Request<Incoming>, state: Arc<State>) -> Result<Response<Full<Bytes>>, Infallible> {
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
            let mut r = text(&state, StatusCode::UNAUTHORIZED, "Unauthorized\n");
            r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
            return Ok(r);
        }
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(&state, StatusCode::METHOD_NOT_ALLOWED, "Method not allowed\n");
        r.headers_mut().insert(hyper::header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Ok(r);
    }
    let path = req.uri().path();
    if path == state.telemetry_path {
        return Ok(scrape(&state).await);
    }
    Ok(match path {
        "/" => response(&state, StatusCode::OK, "text/html; charset=utf-8", state.landing.clone()),
        "/healthz" | "/-/healthy" => text(&state, StatusCode::OK, "OK\n"),
        _ => text(&state, StatusCode::NOT_FOUND, "Not found\n"),
    })
}

async fn scrape(state: &State) -> Response<Full<Bytes>> {
    let (tx, rx) = oneshot::channel();
    match state.scrapes.try_send(Scrape(tx)) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            return text(state, StatusCode::SERVICE_UNAVAILABLE, "Too many scrapes waiting\n");
        }
        Err(TrySendError::Disconnected(_)) => return text(state, StatusCode::SERVICE_UNAVAILABLE, "Stopping\n"),
    }
    match rx.await {
        Ok(Ok(body)) => response(state, StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", body),
        Ok(Err(msg)) => response(
            state,
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            Bytes::from(format!("reading the maps failed: {msg}\n")),
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
