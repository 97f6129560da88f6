//! Tells to other hosts, batched: a sender's tells go into this host's queue, and one
//! task hands them to NATS — what waits there for the same address as one NATS message
//! (`\0awB`, then each frame after its length, four bytes big-endian), a lone tell as
//! its frame. Nothing waits to be batched: the task takes what is queued when it comes
//! round, so a quiet sender's tell goes at once and a fast one's go in bulk (NATS's cost
//! is mostly per message: the server, the clients' parsers, the syscalls — for small
//! tells the serving process and the server spent about half as much CPU per tell once
//! batched, BENCHMARKS.md). Batches keep each address's order; a request
//! first waits for the tells queued before it (`Flush`), so it never overtakes them.
//! A batch goes to one host of a queue group, as its tells would one by one.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::mpsc;

use crate::shared::{Outgoing, Shared};

const MAGIC: &[u8; 4] = b"\0awB";

/// Tells queued for the batcher, at most: a sender waits for room beyond (as it would
/// for async-nats's own queue).
pub(crate) const QUEUE: usize = 1024;

/// The most tells in one batch.
const MAX_TELLS: usize = 512;

/// The largest batch, in bytes (less where the server allows less).
const MAX_BYTES: usize = 256 << 10;

/// Frames waiting for one subject.
#[derive(Default)]
struct Pending {
    frames: Vec<Bytes>,
    bytes: usize,
}

/// Hands the queued tells to NATS until the queue closes.
pub(crate) async fn run(shared: Arc<Shared>, mut rx: mpsc::Receiver<Outgoing>) {
    // Room for the batch's own bytes within the server's limit.
    let max_payload = shared.client.server_info().max_payload;
    let limit = MAX_BYTES.min(max_payload.saturating_sub(64).max(1024));
    // By address.
    let mut pending: HashMap<String, Pending> = HashMap::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(item) = next.take() {
            match item {
                Outgoing::Tell(to, frame) => {
                    // A full batch goes first; this tell starts the next one.
                    let full = match pending.get_mut(&to) {
                        Some(p)
                            if p.frames.len() >= MAX_TELLS || p.bytes + 4 + frame.len() > limit =>
                        {
                            Some(std::mem::take(p))
                        }
                        _ => None,
                    };
                    if let Some(full) = full {
                        publish(&shared, &to, full).await;
                    }
                    let p = pending.entry(to).or_default();
                    p.bytes += 4 + frame.len();
                    p.frames.push(frame);
                }
                Outgoing::Flush(done) => {
                    publish_all(&shared, &mut pending).await;
                    let _ = done.send(());
                }
            }
            taken += 1;
            if taken < QUEUE {
                next = rx.try_recv().ok();
            }
        }
        publish_all(&shared, &mut pending).await;
    }
}

async fn publish_all(shared: &Shared, pending: &mut HashMap<String, Pending>) {
    for (to, p) in pending.drain() {
        publish(shared, &to, p).await;
    }
}

/// The frames to `to` as one NATS message (a lone frame as itself).
async fn publish(shared: &Shared, to: &str, mut p: Pending) {
    let n = p.frames.len() as u64;
    if n == 0 {
        return;
    }
    let body = if p.frames.len() == 1 {
        p.frames.pop().unwrap_or_default()
    } else {
        let mut body = BytesMut::with_capacity(MAGIC.len() + p.bytes);
        body.put_slice(MAGIC);
        for frame in &p.frames {
            // A frame is at most NATS's max_payload (a u32 holds it).
            body.put_u32(u32::try_from(frame.len()).unwrap_or(u32::MAX));
            body.put_slice(frame);
        }
        body.freeze()
    };
    if let Err(e) = shared.client.publish(shared.subjects.to(to), body).await {
        shared.dropped.fetch_add(n, Ordering::Relaxed);
        tracing::debug!(target: crate::TARGET, "{n} tell(s) were not sent: {e}");
    }
    shared.queued.fetch_sub(n, Ordering::AcqRel);
}

/// The frames of a batch, or `None` for a body that is not one. Each length is checked
/// against what is left: a lying length ends the batch with an error.
pub(crate) fn frames(body: &Bytes) -> Option<Frames> {
    body.starts_with(MAGIC).then(|| Frames {
        body: body.clone(),
        at: MAGIC.len(),
    })
}

/// The frames of one batch, in order.
pub(crate) struct Frames {
    body: Bytes,
    at: usize,
}

impl Iterator for Frames {
    type Item = Result<Bytes, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.body.len() {
            return None;
        }
        let rest = &self.body[self.at..];
        let Some(len) = rest
            .get(..4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        else {
            self.at = self.body.len();
            return Some(Err("a batch cut inside a length".into()));
        };
        let start = self.at + 4;
        if len > self.body.len() - start {
            self.at = self.body.len();
            return Some(Err("a batch's frame longer than the batch".into()));
        }
        self.at = start + len;
        Some(Ok(self.body.slice(start..start + len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(frames: &[&[u8]]) -> Bytes {
        let mut body = BytesMut::new();
        body.put_slice(MAGIC);
        for f in frames {
            body.put_u32(f.len() as u32);
            body.put_slice(f);
        }
        body.freeze()
    }

    #[test]
    fn a_batch_gives_back_its_frames_and_a_lying_length_ends_it() {
        let body = batch(&[b"one", b"", b"three"]);
        let got: Vec<Bytes> = frames(&body).unwrap().map(Result::unwrap).collect();
        assert_eq!(got, vec![&b"one"[..], b"", b"three"]);
        assert!(frames(&Bytes::from_static(b"\0aw1xx")).is_none());
        let mut lying = BytesMut::from(&batch(&[b"ok"])[..]);
        lying.put_u32(1000);
        lying.put_slice(b"short");
        let got: Vec<_> = frames(&lying.freeze()).unwrap().collect();
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok() && got[1].is_err());
        let cut = Bytes::from_static(b"\0awB\0\0");
        assert!(frames(&cut).unwrap().next().unwrap().is_err());
    }
}
