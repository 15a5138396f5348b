//! The two HTTP listeners on their sockets: the API (behind the balancer; HTTP or HTTPS) and the
//! admin listener (metrics and health, kept off the balancer). Handlers live in `api` and
//! `admin`; this module only binds, configures and runs actix-web servers for them.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{
    Extensions, Server, ServerHandle, Service, ServiceFactory, ServiceRequest, ServiceResponse,
};
use actix_web::http::ConnectionType;
use actix_web::{web, App, HttpServer};

use crate::admin::{self, AdminState};
use crate::api::{self, ApiState};
use crate::config::{Settings, TlsSettings};
use crate::shutdown::Shutdown;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot bind the {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot serve the {what}: {source}")]
    Listen {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// How long a stopping listener has, in all, for the requests its clients already sent: the
/// drain window, then the wait for the answers still being produced.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long a stopping listener keeps serving its open connections, every answer carrying
/// `Connection: close`, before it closes the ones that stayed idle. A client that is sending gets
/// its answer and the word to go within one round trip; the window ends early once every
/// connection is closed.
pub const DRAIN_WINDOW: Duration = Duration::from_secs(1);

/// How long a stopping listener first goes on serving its open connections as if nothing had
/// happened, before its answers say `Connection: close`: the requests a client had already sent
/// at the signal (pipelined or not) reach the server within it and are answered. Once a server
/// has answered with `close` it must not process what follows on that connection (RFC 9112,
/// 9.6), and actix drops it: so a `close` sent at once loses every request the client wrote
/// before it could read that answer, which for a pipelining client is all but the first.
pub const SETTLE: Duration = Duration::from_millis(250);

/// The drain state of one listener: whether it is stopping, and how many connections it has
/// open. Cheap to clone; the clones share the state.
///
/// Why not just `ServerHandle::stop(true)`: actix then marks every connection as draining at
/// once, and a connection that has no request in progress at that moment is closed without
/// reading what is already in its buffer. A keep-alive client that sent a request a moment
/// before (or pipelined several behind the one in progress) gets no answer at all. So the stop
/// is done in two steps, see [`drain_and_stop`].
#[derive(Debug, Clone, Default)]
pub struct Drain {
    state: Arc<DrainState>,
}

#[derive(Debug, Default)]
struct DrainState {
    draining: AtomicBool,
    open: AtomicUsize,
}

/// Lives in a connection's extensions, so it is dropped with the connection.
struct OpenConnection(Arc<DrainState>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drain {
    pub fn is_draining(&self) -> bool {
        self.state.draining.load(Ordering::SeqCst)
    }

    /// Connections accepted and not closed yet.
    pub fn open_connections(&self) -> usize {
        self.state.open.load(Ordering::SeqCst)
    }

    /// For `HttpServer::on_connect`: counts the connection until it is dropped.
    pub fn connected(&self, extensions: &mut Extensions) {
        self.state.open.fetch_add(1, Ordering::SeqCst);
        extensions.insert(OpenConnection(self.state.clone()));
    }
}

/// Stops a listener without leaving a request its clients already sent unanswered:
/// 1. no new connection is accepted (connections still in the kernel's backlog are reset when
///    the listener closes);
/// 2. for [`SETTLE`] open connections are served as usual: the requests already on their way
///    at the signal, pipelined ones included, are answered;
/// 3. from then on every answer carries `Connection: close`, and for the rest of
///    [`DRAIN_WINDOW`], or until every connection is closed, each request sent is answered and
///    its client told to go;
/// 4. then actix stops: connections still idle are closed, answers in progress get the rest of
///    [`SHUTDOWN_GRACE`].
pub async fn drain_and_stop(handle: ServerHandle, drain: &Drain, what: &'static str) {
    let deadline = tokio::time::Instant::now() + DRAIN_WINDOW;
    handle.pause().await;
    tracing::info!(
        listener = what,
        connections = drain.open_connections(),
        "draining"
    );
    if drain.open_connections() > 0 {
        tokio::time::sleep(SETTLE).await;
    }
    drain.state.draining.store(true, Ordering::SeqCst);
    while drain.open_connections() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let idle = drain.open_connections();
    if idle > 0 {
        tracing::info!(
            listener = what,
            connections = idle,
            "closing idle connections"
        );
    }
    handle.stop(true).await;
}

/// Both listeners, bound and built, not yet serving.
pub struct Listeners {
    api: Server,
    admin: Server,
    pub api_port: u16,
    pub admin_port: u16,
    drains: (Drain, Drain),
}

impl Listeners {
    /// Binds both addresses now (a caller asking for port 0 reads the ports back) and builds
    /// both servers.
    pub fn bind(
        settings: &Settings,
        api_state: ApiState,
        admin_state: AdminState,
    ) -> Result<Listeners, ServerError> {
        let api_listener = bind("API listener", &settings.listen)?;
        let admin_listener = bind("admin listener", &settings.admin_listen)?;
        let drains = (Drain::default(), Drain::default());
        Ok(Listeners {
            api_port: local_port(&api_listener),
            admin_port: local_port(&admin_listener),
            api: api(
                api_listener,
                api_state,
                settings.workers,
                settings.tls.as_ref(),
                &drains.0,
            )?,
            admin: admin(admin_listener, admin_state, &drains.1)?,
            drains,
        })
    }

    /// Serves until SIGTERM/SIGINT, `shutdown`, or a server ending; then triggers `shutdown`,
    /// drains and stops both listeners ([`drain_and_stop`]). Returns what ended it.
    pub async fn serve_until_stopped(self, shutdown: &Shutdown) -> &'static str {
        let (api_handle, admin_handle) = (self.api.handle(), self.admin.handle());
        let mut api_task = tokio::spawn(self.api);
        let mut admin_task = tokio::spawn(self.admin);
        let reason = tokio::select! {
            r = crate::shutdown::terminate_signal() => r,
            _ = shutdown.wait() => "shutdown requested",
            r = &mut api_task => server_ended(shutdown, "API server", r),
            r = &mut admin_task => server_ended(shutdown, "admin server", r),
        };
        tracing::info!(reason, "stopping");
        shutdown.trigger();
        let (api_drain, admin_drain) = &self.drains;
        tokio::join!(
            drain_and_stop(api_handle, api_drain, "API"),
            drain_and_stop(admin_handle, admin_drain, "admin"),
        );
        let _ = api_task.await;
        let _ = admin_task.await;
        reason
    }
}

/// A server that ends while nobody asked it to is a failure of the process: recorded with its
/// cause (the I/O error, the panic, or none), so the replica exits non-zero.
fn server_ended(
    shutdown: &Shutdown,
    part: &'static str,
    ended: Result<std::io::Result<()>, tokio::task::JoinError>,
) -> &'static str {
    match ended {
        Ok(Ok(())) => shutdown.fail(part, "ended on its own"),
        Ok(Err(e)) => shutdown.fail(part, e),
        Err(e) => shutdown.fail(part, e),
    }
    "server ended"
}

/// Binds `addr` now, so that a caller asking for port 0 can read the port back before serving.
pub fn bind(what: &'static str, addr: &str) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr).map_err(|source| ServerError::Bind {
        what,
        addr: addr.to_owned(),
        source,
    })
}

pub fn local_port(listener: &TcpListener) -> u16 {
    listener.local_addr().map(|a| a.port()).unwrap_or(0)
}

/// The realstatistic API on `listener`. Signals are ours to handle (see `startup`), not actix's;
/// stop it with [`drain_and_stop`] and the same `drain`.
pub fn api(
    listener: TcpListener,
    state: ApiState,
    workers: Option<usize>,
    tls: Option<&TlsSettings>,
    drain: &Drain,
) -> Result<Server, ServerError> {
    let limits = state.limits;
    let state = web::Data::new(state);
    let (app_drain, conn_drain) = (drain.clone(), drain.clone());
    let mut server = HttpServer::new(move || {
        app(state.clone(), app_drain.clone(), |cfg| {
            api::configure(cfg);
            crate::wallboard::configure(cfg);
        })
    })
    .on_connect(move |_, extensions| conn_drain.connected(extensions))
    .disable_signals()
    .shutdown_timeout(SHUTDOWN_GRACE.saturating_sub(DRAIN_WINDOW).as_secs())
    .client_request_timeout(limits.request_head_timeout)
    .client_disconnect_timeout(Duration::from_secs(1))
    // A client's end of input ends its connection at once (actix keeps a half-closed one open
    // by default): a live stream learns that its client left when the client does, not at the
    // second write after (the first write to a closed socket succeeds, and once its end of
    // input was seen the dispatcher no longer reads, so the reset goes unnoticed; up to two
    // heartbeats, 30 s). The cost: a client that half-closes after its request and then waits
    // loses the answer unless it was ready when the end was read (every route's answer is, on
    // the poll that reads its request, but for a body still on its way).
    .h1_allow_half_closed(false)
    .keep_alive(limits.keep_alive)
    .max_connections(limits.max_connections);
    if let Some(w) = workers {
        server = server.workers(w);
    }
    let listen = |source| ServerError::Listen {
        what: "API listener",
        source,
    };
    let server = match tls {
        Some(tls) => {
            let config = crate::tls::server_config(&tls.cert, &tls.key)?;
            server
                .listen_rustls_0_23(listener, config)
                .map_err(listen)?
        }
        None => server.listen(listener).map_err(listen)?,
    };
    Ok(server.run())
}

/// An app of `routes` with `state`, whose answers tell clients to close once `drain` is on.
pub(crate) fn app<T: 'static>(
    state: web::Data<T>,
    drain: Drain,
    routes: fn(&mut web::ServiceConfig),
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody + 'static>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(state)
        .wrap_fn(move |req, srv| {
            let answer = srv.call(req);
            let drain = drain.clone();
            async move { answer.await.map(|res| close_when_draining(res, &drain)) }
        })
        .configure(routes)
}

/// Tells the client to close the connection after this answer when the listener is stopping.
fn close_when_draining<B>(
    mut res: actix_web::dev::ServiceResponse<B>,
    drain: &Drain,
) -> actix_web::dev::ServiceResponse<B> {
    if drain.is_draining() {
        res.response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    res
}

/// `/metrics`, `/health/*` and `/openapi.yaml` on `listener`, one worker: scrapes and probes are
/// a few requests a second. Stopped like the API, with its own `drain`.
pub fn admin(
    listener: TcpListener,
    state: AdminState,
    drain: &Drain,
) -> Result<Server, ServerError> {
    let state = web::Data::new(state);
    let (app_drain, conn_drain) = (drain.clone(), drain.clone());
    let server = HttpServer::new(move || app(state.clone(), app_drain.clone(), admin::configure))
        .on_connect(move |_, extensions| conn_drain.connected(extensions))
        .disable_signals()
        .shutdown_timeout(2)
        .workers(1)
        .listen(listener)
        .map_err(|source| ServerError::Listen {
            what: "admin listener",
            source,
        })?;
    Ok(server.run())
}
