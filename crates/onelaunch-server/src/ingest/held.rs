//! What a request holds while it is served ([`hold_body_shares`], a layer of
//! both the API's and the web UI's routes):
//!
//! * the shares of memory its body took (`api::extract::RawJson`; what the
//!   body decoded into lives as long as that), given back once its answer is
//!   made;
//! * its place among its sender's requests in flight
//!   ([`super::limits::Requests`], taken by [`take_place`] once the caller is
//!   known), given back once its answer has been **sent**: a download read
//!   slowly and a live page's event stream hold their place for as long as
//!   they last, so one project cannot hold every connection with them.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use hyper::body::{Frame, SizeHint};

use super::limits::Requests;
use super::{Sender, Share};
use crate::error::ServerResult;

/// What a request holds until it is answered (see the module).
#[derive(Clone, Default)]
pub(crate) struct BodyShares(Arc<Mutex<Held>>);

#[derive(Default)]
struct Held {
    /// Shares of memory, given back with the answer's head.
    shares: Vec<Share>,
    /// The place among the sender's requests in flight, given back with the
    /// answer's last byte.
    place: Option<Share>,
}

impl BodyShares {
    /// Keeps `share` until the request is answered.
    pub(crate) fn hold(&self, share: Share) {
        self.lock().shares.push(share);
    }

    fn lock(&self) -> MutexGuard<'_, Held> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Records `sender` as the request's sender (whose share of memory its body
/// takes) and takes its place among `sender`'s requests in flight, once per
/// request (an extractor run twice finds the sender already set); past the
/// sender's part, 503 `busy`.
pub(crate) fn take_place(
    parts: &mut Parts,
    requests: &Requests,
    sender: Sender,
) -> ServerResult<()> {
    if parts.extensions.insert(sender).is_some() {
        return Ok(());
    }
    if let Some(held) = parts.extensions.get::<BodyShares>() {
        let place = requests.enter(sender)?;
        held.lock().place = Some(place);
    }
    Ok(())
}

/// Gives every request a [`BodyShares`]: its shares of memory are dropped
/// once the answer is made, its place once the answer's body is sent (or its
/// connection gone).
pub(crate) async fn hold_body_shares(mut req: Request, next: Next) -> Response {
    let held = BodyShares::default();
    req.extensions_mut().insert(held.clone());
    let answer = next.run(req).await;
    let place = held.lock().place.take();
    drop(held);
    match place {
        Some(place) => answer.map(|body| {
            Body::new(Placed {
                body,
                _place: place,
            })
        }),
        None => answer,
    }
}

/// An answer's body holding its request's place until it ends or is dropped.
struct Placed {
    body: Body,
    _place: Share,
}

impl hyper::body::Body for Placed {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
