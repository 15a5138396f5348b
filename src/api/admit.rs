//! The checks every route shares, as actix's own extractor: a handler that takes an
//! [`Admitted<P>`] runs only for a request that passed all of them, in the order of api.md:
//! method (405), header size (431), lockout of the client address and the key it names (403),
//! the `Host` among the allowed hosts (401, not counted towards the lockout), body size and read
//! (413, 408, 0100002), authentication (401, counted towards the lockout), the route's
//! parameters `P` (0100002; a JSON body's Content-Type first), the key's scope and the tenant
//! (0101003), readiness (503).
//!
//! The extractor's future is a plain state machine, not a boxed `async` block: what happens
//! synchronously (every check before the body) happens in `from_request`, and the body, which
//! almost always came with the head, is taken as the chunk it arrived in, without a copy.

use std::future::Future;
use std::marker::PhantomData;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use actix_web::dev::Payload;
use actix_web::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{FromRequest, HttpRequest};
use futures_core::Stream;

use super::error::{ApiError, Verb};
use super::request::{check_content_type, InvalidRequest};
use super::{ApiState, MAX_BODY_BYTES};
use crate::auth::c2::HeaderLookup;
use crate::auth::{self, AuthError, Clock, KeyEntry, SignedParts};
use crate::metrics::AuthRefusal;

/// What a route reads from its request, and how.
pub(crate) trait Params: Sized {
    /// The route's one method. A POST route's parameters are its JSON body (whose Content-Type
    /// is checked first); the GET route's are its query string.
    const VERB: Verb;

    /// The parameters, from the body (signed and read) or the request line.
    fn parse(req: &HttpRequest, body: &[u8], default_cc_id: u16) -> Result<Self, InvalidRequest>;

    /// The call center and VDN the request reads: the key's scope and the tenants must cover it.
    fn scope(&self) -> Scope;
}

/// A call center and VDN a request reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Scope {
    pub cc_id: u16,
    pub vdn: u16,
}

/// A request that passed every shared check: who signed it, and what it asks for.
pub(crate) struct Admitted<P> {
    pub key: Arc<KeyEntry>,
    pub params: P,
    state: web::Data<ApiState>,
}

impl<P> Admitted<P> {
    /// The listener's state, as the checks found it.
    pub fn state(&self) -> &ApiState {
        &self.state
    }
}

impl<P: Params> FromRequest for Admitted<P> {
    type Error = ApiError;
    type Future = Admission<P>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let step = match before_body(req, P::VERB) {
            Ok((state, client)) => Step::Reading(Reading {
                req: req.clone(),
                state,
                client,
                body: BodyRead::new(payload.take()),
            }),
            Err(e) => Step::Refused(e),
        };
        Admission {
            step,
            _params: PhantomData,
        }
    }
}

/// The checks before the body: method, header size, lockout, host, declared body size. Gives the
/// listener's state and the client address the lockout counts for.
fn before_body(
    req: &HttpRequest,
    verb: Verb,
) -> Result<(web::Data<ApiState>, Option<IpAddr>), ApiError> {
    let state = req
        .app_data::<web::Data<ApiState>>()
        .cloned()
        .ok_or(ApiError::Internal)?;
    let method_ok = match verb {
        Verb::Get => req.method() == actix_web::http::Method::GET,
        Verb::Post => req.method() == actix_web::http::Method::POST,
    };
    if !method_ok {
        return Err(ApiError::MethodNotAllowed(verb));
    }
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_bytes > state.limits.max_header_bytes {
        return Err(ApiError::HeadersTooLarge);
    }
    let client = client_address(req, &state);
    if client.is_some_and(|ip| state.lockout.is_locked(ip, || named_key(req))) {
        state.metrics.auth_refused(AuthRefusal::Locked);
        return Err(ApiError::Locked);
    }
    // Needs no key and no body, so before either; not counted towards the lockout: it guesses
    // nothing, and a stranger could otherwise spend another client's key on it.
    if !state.allowed_hosts.is_empty() && !state.allowed_hosts.allows(host(req)) {
        state.metrics.auth_refused(AuthRefusal::WrongHost);
        return Err(ApiError::Unauthorized(AuthError::WrongHost));
    }
    // A declared length over the limit is refused without reading a byte.
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(ApiError::TooLarge);
    }
    Ok((state, client))
}

/// The checks after the body: authentication, parameters, scope and tenant, readiness.
fn after_body<P: Params>(reading: &Reading, body: &[u8]) -> Result<(Arc<KeyEntry>, P), ApiError> {
    let (req, state) = (&reading.req, &reading.state);
    let key = authenticate(req, body, state).map_err(|e| {
        state.metrics.auth_refused(e.category());
        if let Some(ip) = reading.client {
            if state.lockout.record_failure(ip, named_key(req)) {
                tracing::warn!(client = %ip, "client locked after repeated authentication failures");
            }
        }
        ApiError::Unauthorized(e)
    })?;
    if P::VERB == Verb::Post {
        check_content_type(req.headers().get(CONTENT_TYPE).map(|v| v.as_bytes()))?;
    }
    let params = P::parse(req, body, state.default_cc_id)?;
    let Scope { cc_id, vdn } = params.scope();
    if !(key.may_read(cc_id, vdn) && state.tenants.keeps(cc_id, vdn)) {
        state.metrics.auth_refused(AuthRefusal::Forbidden);
        return Err(ApiError::Forbidden);
    }
    if !state.readiness.is_ready() {
        return Err(ApiError::NotReady);
    }
    Ok((key, params))
}

/// The future of [`Admitted`]: refused before the body, or reading it.
pub(crate) struct Admission<P> {
    step: Step,
    _params: PhantomData<fn() -> P>,
}

// Not boxed: the future lives inline in the one allocation actix makes per request.
#[allow(clippy::large_enum_variant)]
enum Step {
    Refused(ApiError),
    Reading(Reading),
    Done,
}

struct Reading {
    req: HttpRequest,
    state: web::Data<ApiState>,
    client: Option<IpAddr>,
    body: BodyRead,
}

impl<P: Params> Future for Admission<P> {
    type Output = Result<Admitted<P>, ApiError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match std::mem::replace(&mut this.step, Step::Done) {
            Step::Refused(e) => Poll::Ready(Err(e)),
            Step::Reading(mut reading) => {
                let timeout = reading.state.limits.body_timeout;
                match reading.body.poll_body(cx, timeout) {
                    Poll::Pending => {
                        this.step = Step::Reading(reading);
                        Poll::Pending
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Ready(Ok(body)) => {
                        let checked = after_body::<P>(&reading, &body);
                        Poll::Ready(checked.map(|(key, params)| Admitted {
                            key,
                            params,
                            state: reading.state,
                        }))
                    }
                }
            }
            // Polled again after it completed: nothing more will come.
            Step::Done => Poll::Pending,
        }
    }
}

/// A body of at most [`MAX_BODY_BYTES`], as its chunks arrive.
struct BodyRead {
    payload: Payload,
    collected: Collected,
    /// The wait for the rest of a body that did not come with the head: a client that sends its
    /// body slowly holds a worker's attention. Armed only once a read has to wait, so the usual
    /// request (body in the head's buffer) pays for no timer.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

enum Collected {
    /// Nothing yet, or the one chunk so far, as it came (most bodies: no copy).
    One(Bytes),
    /// Several chunks, copied together.
    Many(BytesMut),
}

impl BodyRead {
    fn new(payload: Payload) -> Self {
        BodyRead {
            payload,
            collected: Collected::One(Bytes::new()),
            timer: None,
        }
    }

    fn poll_body(
        &mut self,
        cx: &mut Context<'_>,
        timeout: std::time::Duration,
    ) -> Poll<Result<Bytes, ApiError>> {
        loop {
            match Pin::new(&mut self.payload).poll_next(cx) {
                Poll::Ready(Some(Ok(chunk))) => {
                    if let Err(e) = self.push(chunk) {
                        return Poll::Ready(Err(e));
                    }
                }
                Poll::Ready(Some(Err(_))) => return Poll::Ready(Err(ApiError::BodyUnreadable)),
                Poll::Ready(None) => return Poll::Ready(Ok(self.take())),
                Poll::Pending => break,
            }
        }
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(ApiError::BodyTimeout)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn push(&mut self, chunk: Bytes) -> Result<(), ApiError> {
        let held = match &self.collected {
            Collected::One(b) => b.len(),
            Collected::Many(b) => b.len(),
        };
        if held + chunk.len() > MAX_BODY_BYTES {
            return Err(ApiError::TooLarge);
        }
        match &mut self.collected {
            Collected::One(first) if first.is_empty() => *first = chunk,
            Collected::One(first) => {
                let mut all = BytesMut::with_capacity(held + chunk.len());
                all.extend_from_slice(first);
                all.extend_from_slice(&chunk);
                self.collected = Collected::Many(all);
            }
            Collected::Many(all) => all.extend_from_slice(&chunk),
        }
        Ok(())
    }

    fn take(&mut self) -> Bytes {
        match std::mem::replace(&mut self.collected, Collected::One(Bytes::new())) {
            Collected::One(b) => b,
            Collected::Many(b) => b.freeze(),
        }
    }
}

/// The access key the request names, for the lockout (whether the rest of the value is well
/// formed or not; `None` for no, a repeated or an unreadable `Authorization`).
fn named_key(req: &HttpRequest) -> Option<&str> {
    let mut values = req.headers().get_all(AUTHORIZATION);
    match (values.next(), values.next()) {
        (Some(one), None) => auth::lockout::access_key_named(one.to_str().ok()?),
        _ => None,
    }
}

/// The request's `Host`: its one header (the signed one), or on HTTP/2 the `:authority`.
/// `None` when absent or repeated.
fn host(req: &HttpRequest) -> Option<&[u8]> {
    let mut values = req.headers().get_all(HOST);
    match (values.next(), values.next()) {
        (Some(one), None) => Some(one.as_bytes()),
        (None, _) => req.uri().authority().map(|a| a.as_str().as_bytes()),
        (Some(_), Some(_)) => None,
    }
}

/// The address the lockout counts for: the peer, or what a trusted proxy says it is.
fn client_address(req: &HttpRequest, state: &ApiState) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip());
    if state.trusted_proxies.is_empty() {
        if let Some(ip) = peer.filter(|&ip| state.lockout.first_private_peer(ip)) {
            tracing::warn!(
                peer = %ip,
                "a request came from a private address and no trusted proxies are set: if a \
                 balancer is in front, every client behind it is this one address to the lockout; \
                 set auth.trusted_proxies to the balancer's addresses (logged once)"
            );
        }
    }
    // Every line, in order: together they are one list (see `client_ip`).
    let lines = req.headers().get_all("x-forwarded-for");
    auth::client_ip_of(
        peer,
        lines.map(|v| v.to_str().unwrap_or("")),
        &state.trusted_proxies,
    )
}

/// Adapts the request to the C2 verifier: header values as received, path and query as sent.
fn authenticate(
    req: &HttpRequest,
    body: &[u8],
    state: &ApiState,
) -> Result<Arc<KeyEntry>, AuthError> {
    let headers = req.headers();
    let mut values = headers.get_all(AUTHORIZATION);
    let value = match (values.next(), values.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => return Err(AuthError::Malformed),
        (Some(v), None) => Some(v.to_str().map_err(|_| AuthError::Malformed)?),
    };
    let lookup = |name: &str| -> HeaderLookup<'_> {
        let mut all = headers.get_all(name);
        match (all.next(), all.next()) {
            (None, _) => HeaderLookup::Missing,
            (Some(v), None) => HeaderLookup::One(v.as_bytes()),
            (Some(_), Some(_)) => HeaderLookup::Many,
        }
    };
    auth::authenticate(
        &state.keys,
        value,
        &SignedParts {
            method: req.method().as_str(),
            path: req.uri().path(),
            raw_query: req.uri().query(),
            header: &lookup,
            body,
        },
        Clock {
            now_unix: crate::clock::now_unix(),
            allowed_skew_secs: state.allowed_skew_secs,
        },
    )
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::time::Duration;

    use actix_web::error::PayloadError;

    use super::*;

    /// A body that arrives as these chunks; `None` is a wait that never ends.
    struct Chunks(VecDeque<Option<Result<Bytes, PayloadError>>>);

    impl Stream for Chunks {
        type Item = Result<Bytes, PayloadError>;

        fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
            match self.0.pop_front() {
                Some(Some(chunk)) => Poll::Ready(Some(chunk)),
                Some(None) => {
                    self.0.push_front(None);
                    Poll::Pending
                }
                None => Poll::Ready(None),
            }
        }
    }

    async fn read(chunks: Vec<Option<Result<Bytes, PayloadError>>>) -> Result<Bytes, ApiError> {
        let payload: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> =
            Box::pin(Chunks(chunks.into()));
        let mut body = BodyRead::new(Payload::Stream { payload });
        std::future::poll_fn(|cx| body.poll_body(cx, Duration::from_millis(50))).await
    }

    fn chunk(text: &'static str) -> Option<Result<Bytes, PayloadError>> {
        Some(Ok(Bytes::from_static(text.as_bytes())))
    }

    #[actix_web::test]
    async fn bodies_are_read_whole_and_within_bounds() {
        // One chunk is the body itself, not a copy.
        let one = Bytes::from_static(b"{\"vdn\":92}");
        let read_one = read(vec![Some(Ok(one.clone()))]).await.expect("read");
        assert_eq!(read_one.as_ptr(), one.as_ptr());
        assert_eq!(read(vec![]).await, Ok(Bytes::new()));
        let several = vec![chunk("{\"vdn\""), chunk(""), chunk(":92"), chunk("}")];
        assert_eq!(read(several).await, Ok(Bytes::from_static(b"{\"vdn\":92}")));

        let half = "x".repeat(MAX_BODY_BYTES / 2);
        let half: &'static str = Box::leak(half.into_boxed_str());
        assert_eq!(
            read(vec![chunk(half), chunk(half)]).await.map(|b| b.len()),
            Ok(MAX_BODY_BYTES)
        );
        assert_eq!(
            read(vec![chunk(half), chunk(half), chunk("x")]).await,
            Err(ApiError::TooLarge)
        );
        let broken = Some(Err(PayloadError::Incomplete(None)));
        assert_eq!(
            read(vec![chunk("{"), broken]).await,
            Err(ApiError::BodyUnreadable)
        );
        assert_eq!(
            read(vec![chunk("{"), None]).await,
            Err(ApiError::BodyTimeout)
        );
    }
}
