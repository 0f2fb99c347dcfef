//! Admission: what a service holds at once must fit the pod.
//!
//! Two budgets, checked before the work starts:
//! - **requests**: the global concurrency limit (a semaphore shared by every connection);
//!   the items of a streaming call take a permit each, so a stream cannot carry more work
//!   past the limit than a client opening that many calls could;
//! - **bytes in flight**: a weighted semaphore over the sizes of the request messages held
//!   (512 requests of 32 MiB would otherwise want 16 GiB from a 1 GiB pod). A message's size
//!   is read from its gRPC frame header, before its bytes are taken from the connection
//!   (HTTP/2 flow control then holds the rest at the client); when the budget is full the
//!   request is answered RESOURCE_EXHAUSTED at once, like the concurrency limit's shed.
//!   Messages up to [`SMALL_MESSAGE`] are not counted: the concurrency limit bounds them,
//!   and so an attack with large messages cannot starve ordinary small requests.
//!
//! A unary call keeps its message's permits until its response is complete; a streaming
//! call keeps those of the message being received, and its handler counts the items it is
//! working on through [`Admission::item`].

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body::{Body, Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;

/// Messages this small are not counted against the bytes budget.
pub const SMALL_MESSAGE: usize = 64 * 1024;

/// The admission budgets of one limited server. Cheap to clone; clones share the budgets.
#[derive(Clone, Debug)]
pub struct Admission {
    requests: Arc<Semaphore>,
    max_requests: usize,
    bytes: Option<Arc<Semaphore>>,
    max_bytes: usize,
}

/// What a caller holds for one admitted item; dropping it gives the budget back.
#[derive(Debug)]
pub struct ItemPermit {
    _request: OwnedSemaphorePermit,
    _bytes: Option<OwnedSemaphorePermit>,
}

impl Admission {
    /// At most `max_requests` requests at once; with `max_bytes_in_flight`, at most that
    /// many bytes of request messages held (`None`: no byte budget).
    pub fn new(max_requests: usize, max_bytes_in_flight: Option<usize>) -> Self {
        let max_bytes = max_bytes_in_flight.unwrap_or(0).min(Semaphore::MAX_PERMITS);
        Self {
            requests: Arc::new(Semaphore::new(max_requests.min(Semaphore::MAX_PERMITS))),
            max_requests,
            bytes: max_bytes_in_flight.map(|_| Arc::new(Semaphore::new(max_bytes))),
            max_bytes,
        }
    }

    /// The concurrency semaphore (the tower limit of [`Limited`](crate::Limited) uses it).
    pub(crate) fn requests(&self) -> Arc<Semaphore> {
        Arc::clone(&self.requests)
    }

    /// Requests in flight now (calls and stream items).
    pub fn requests_in_flight(&self) -> usize {
        self.max_requests
            .saturating_sub(self.requests.available_permits())
    }

    /// Bytes of request messages held now.
    pub fn bytes_in_flight(&self) -> usize {
        self.bytes
            .as_ref()
            .map_or(0, |b| self.max_bytes.saturating_sub(b.available_permits()))
    }

    /// Admits one item of `size` bytes inside an admitted streaming call: a request permit
    /// (waiting at most `wait`: the stream is already admitted, its items queue briefly)
    /// and, for a large item, its bytes (refused at once when the budget is full).
    pub async fn item(&self, size: usize, wait: Duration) -> Result<ItemPermit, Status> {
        let request =
            match tokio::time::timeout(wait, Arc::clone(&self.requests).acquire_owned()).await {
                Ok(Ok(p)) => p,
                Ok(Err(_)) | Err(_) => {
                    return Err(Status::resource_exhausted(format!(
                        "the service is at its concurrency limit ({} requests); retry with backoff",
                        self.max_requests
                    )));
                }
            };
        let bytes = self.take_bytes(size)?;
        Ok(ItemPermit {
            _request: request,
            _bytes: bytes,
        })
    }

    /// The bytes permit of a message of `size` bytes: none for a small one, an error when
    /// the budget cannot hold it now.
    fn take_bytes(&self, size: usize) -> Result<Option<OwnedSemaphorePermit>, Status> {
        let Some(sem) = &self.bytes else {
            return Ok(None);
        };
        if size <= SMALL_MESSAGE {
            return Ok(None);
        }
        let n = u32::try_from(size).unwrap_or(u32::MAX);
        if size > self.max_bytes {
            return Err(Status::resource_exhausted(format!(
                "a message of {size} bytes is larger than the service's {} bytes in flight",
                self.max_bytes
            )));
        }
        Arc::clone(sem)
            .try_acquire_many_owned(n)
            .map(Some)
            .map_err(|_| {
                Status::resource_exhausted(format!(
                    "the service holds its limit of {} bytes of requests; retry with backoff",
                    self.max_bytes
                ))
            })
    }

    /// Wraps a request body so that its messages are counted; `held` keeps the permits
    /// (the caller drops it when the call is over).
    pub(crate) fn count<B>(&self, body: B, held: Held) -> CountedBody<B> {
        CountedBody {
            inner: body,
            admission: self.clone(),
            held,
            header: Vec::with_capacity(5),
            remaining: 0,
        }
    }
}

/// The bytes permits a call holds: the latest message's (a streaming call's earlier
/// messages are in its handler's hands, counted as items).
#[derive(Clone, Debug, Default)]
pub(crate) struct Held(Arc<Mutex<VecDeque<OwnedSemaphorePermit>>>);

impl Held {
    fn push(&self, permit: OwnedSemaphorePermit) {
        let mut q = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        q.clear();
        q.push_back(permit);
    }
}

/// A request body whose gRPC messages take bytes permits as their headers arrive.
#[derive(Debug)]
pub(crate) struct CountedBody<B> {
    inner: B,
    admission: Admission,
    held: Held,
    /// The bytes of a frame header read so far (gRPC: 1 flag byte, 4 length bytes).
    header: Vec<u8>,
    /// Bytes of the current message still to come.
    remaining: usize,
}

impl<B> CountedBody<B> {
    /// Walks the data chunk through the gRPC framing; the refusal if a message it starts
    /// cannot be admitted.
    fn account(&mut self, mut chunk: &[u8]) -> Result<(), Status> {
        while !chunk.is_empty() {
            if self.remaining > 0 {
                let n = self.remaining.min(chunk.len());
                self.remaining -= n;
                chunk = &chunk[n..];
                continue;
            }
            let need = 5 - self.header.len();
            let n = need.min(chunk.len());
            self.header.extend_from_slice(&chunk[..n]);
            chunk = &chunk[n..];
            if self.header.len() == 5 {
                let len = u32::from_be_bytes([
                    self.header[1],
                    self.header[2],
                    self.header[3],
                    self.header[4],
                ]) as usize;
                self.header.clear();
                self.remaining = len;
                if let Some(p) = self.admission.take_bytes(len)? {
                    self.held.push(p);
                }
            }
        }
        Ok(())
    }
}

impl<B> Body for CountedBody<B>
where
    B: Body<Data = Bytes, Error = Status> + Unpin,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.account(data.chunk())?;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn frame_headers_split_across_chunks_take_their_bytes() {
        let a = Admission::new(4, Some(1 << 20));
        let held = Held::default();
        let mut body = a.count((), held.clone());
        let len: u32 = 300 * 1024;
        let mut framed = vec![0u8];
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend(std::iter::repeat_n(7u8, len as usize));
        // The header in two pieces, the message in odd chunks.
        body.account(&framed[..3]).unwrap();
        assert_eq!(a.bytes_in_flight(), 0);
        body.account(&framed[3..10]).unwrap();
        assert_eq!(a.bytes_in_flight(), len as usize);
        for c in framed[10..].chunks(4099) {
            body.account(c).unwrap();
        }
        assert_eq!(body.remaining, 0);
        // A second message of a stream replaces the first's permits.
        body.account(&framed[..5]).unwrap();
        assert_eq!(a.bytes_in_flight(), len as usize);
        // A third call cannot fit: 4 x 300 KiB > 1 MiB.
        let other = Held::default();
        let mut b2 = a.count((), other.clone());
        b2.account(&framed[..5]).unwrap();
        let mut b3 = a.count((), Held::default());
        b3.account(&framed[..5]).unwrap();
        let mut b4 = a.count((), Held::default());
        let e = b4.account(&framed[..5]).unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted);
        drop(other);
        drop(b2);
        let mut b5 = a.count((), Held::default());
        b5.account(&framed[..5]).unwrap();
        drop(held);
        drop(body);
    }

    #[test]
    fn small_messages_are_not_counted_and_huge_ones_are_refused() {
        let a = Admission::new(4, Some(1 << 20));
        let mut body = a.count((), Held::default());
        let mut small = vec![0u8];
        small.extend_from_slice(&(SMALL_MESSAGE as u32).to_be_bytes());
        body.account(&small).unwrap();
        assert_eq!(a.bytes_in_flight(), 0);
        let mut huge = vec![0u8];
        huge.extend_from_slice(&(2u32 << 20).to_be_bytes());
        let mut body = a.count((), Held::default());
        let e = body.account(&huge).unwrap_err();
        assert!(e.message().contains("larger than"), "{}", e.message());
    }
}
