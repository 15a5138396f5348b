//! The callback's own listener: iSales reaches it on a port of its own (its own Service port and
//! network policy), so the API's balancer and clients never see the route, and the callback can
//! be opened to the iSales network only.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, HttpServer};

use super::{route, CallbackState};
use crate::config::{Settings, TlsSettings};
use crate::server::{self, Drain, ServerError};
use crate::shutdown::Shutdown;

/// The listener, bound and built, not yet serving.
pub struct CallbackListener {
    server: Server,
    drain: Drain,
    pub port: u16,
}

impl CallbackListener {
    /// Binds `addr` now (port 0: read [`port`](Self::port) back) and builds the server: two
    /// workers (a push waits on Kafka, not on the CPU), the API's limits and TLS.
    pub fn bind(
        addr: &str,
        state: CallbackState,
        settings: &Settings,
    ) -> Result<CallbackListener, ServerError> {
        let listener = server::bind("callback listener", addr)?;
        let port = server::local_port(&listener);
        let drain = Drain::default();
        let server = build(
            listener,
            Arc::new(state),
            settings,
            settings.tls.as_ref(),
            &drain,
        )?;
        Ok(CallbackListener {
            server,
            drain,
            port,
        })
    }

    /// Serves until `shutdown`, then drains like the other listeners.
    pub fn spawn(self, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
        let handle = self.server.handle();
        let mut task = tokio::spawn(self.server);
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown.wait() => {}
                _ = &mut task => {
                    tracing::error!("the callback listener ended");
                    return;
                }
            }
            server::drain_and_stop(handle, &self.drain, "callback").await;
            let _ = task.await;
        })
    }
}

fn build(
    listener: TcpListener,
    state: Arc<CallbackState>,
    settings: &Settings,
    tls: Option<&TlsSettings>,
    drain: &Drain,
) -> Result<Server, ServerError> {
    let limits = settings.http_limits();
    let state = web::Data::from(state);
    let (app_drain, conn_drain) = (drain.clone(), drain.clone());
    let server =
        HttpServer::new(move || server::app(state.clone(), app_drain.clone(), route::configure))
            .on_connect(move |_, extensions| conn_drain.connected(extensions))
            .disable_signals()
            .workers(2)
            .shutdown_timeout(server::SHUTDOWN_GRACE.as_secs())
            .client_request_timeout(limits.request_head_timeout)
            .keep_alive(limits.keep_alive)
            .max_connections(limits.max_connections);
    // The certificate is read before binding, so a bad one fails the start, not a handshake.
    let rustls = tls
        .map(|t| crate::tls::server_config(&t.cert, &t.key))
        .transpose()?;
    let bound = match rustls {
        Some(config) => server.listen_rustls_0_23(listener, config),
        None => server.listen(listener),
    };
    let server = bound.map_err(|source| ServerError::Listen {
        what: "callback listener",
        source,
    })?;
    Ok(server.run())
}
