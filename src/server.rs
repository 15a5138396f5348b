//! The two HTTP listeners on their sockets: the API (behind the balancer; HTTP or HTTPS) and the
//! admin listener (metrics and health, kept off the balancer). Handlers live in `api` and
//! `admin`; this module only binds, configures and runs actix-web servers for them.

use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};

use crate::admin::{self, AdminState};
use crate::api::{self, ApiState};
use crate::config::TlsSettings;

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

/// How long requests already received get to finish when the servers stop.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

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

/// The realstatistic API on `listener`. Signals are ours to handle (see `startup`), not actix's.
pub fn api(
    listener: TcpListener,
    state: ApiState,
    workers: Option<usize>,
    tls: Option<&TlsSettings>,
) -> Result<Server, ServerError> {
    let limits = state.limits;
    let state = web::Data::new(state);
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(api::configure)
            .configure(crate::wallboard::configure)
    })
    .disable_signals()
    .shutdown_timeout(SHUTDOWN_GRACE.as_secs())
    .client_request_timeout(limits.request_head_timeout)
    .client_disconnect_timeout(Duration::from_secs(1))
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

/// `/metrics`, `/health/*` and `/openapi.yaml` on `listener`, one worker: scrapes and probes are
/// a few requests a second.
pub fn admin(listener: TcpListener, state: AdminState) -> Result<Server, ServerError> {
    let state = web::Data::new(state);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(admin::configure)
    })
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
