//! The digests of every signature's byte range, each byte hashed once per algorithm.
//!
//! The signatures of an incrementally signed PDF cover nested prefixes of the file: the
//! second signature's first range starts with the whole first range of the first one. Hashed
//! one signature at a time, the shared prefix (nearly all of the file) is hashed once per
//! signature. Here the signed streams of all signatures are walked together: while they read
//! the same bytes they share one hasher; where they part, the hasher's state is cloned for
//! each branch. Ranges that share nothing (or only part) are equally correct: a branch
//! simply starts earlier. Nothing is copied; the work is one pass over the union of the
//! signed bytes per algorithm asked, plus one small state clone per branch.

use std::collections::HashMap;
use std::sync::Mutex;

use kyso_pki::crypto::{DigestAlgorithm, Digester};

use crate::EmbeddedSignature;

/// One signature's signed stream: its non-empty spans, checked to lie within the file.
type Stream = Vec<(usize, usize)>;

/// The range digests of a PDF's signatures, computed on first use per algorithm
/// (for all signatures at once) and kept for the later ones.
#[derive(Debug)]
pub struct RangeDigests<'a> {
    pdf: &'a [u8],
    /// `None` for a signature whose byte range failed its checks or leaves the file.
    streams: Vec<Option<Stream>>,
    done: Mutex<HashMap<DigestAlgorithm, Vec<Option<Vec<u8>>>>>,
}

impl<'a> RangeDigests<'a> {
    /// Nothing is hashed yet.
    pub fn new(pdf: &'a [u8], signatures: &[EmbeddedSignature]) -> Self {
        let streams = signatures
            .iter()
            .map(|sig| {
                let br = sig.coverage.as_ref().ok()?;
                let mut spans = Vec::with_capacity(2);
                for (s, e) in br.spans() {
                    // The same refusal as `EmbeddedSignature::digest`: a range outside the file.
                    pdf.get(s..e)?;
                    if s < e {
                        spans.push((s, e));
                    }
                }
                Some(spans)
            })
            .collect();
        Self {
            pdf,
            streams,
            done: Mutex::new(HashMap::new()),
        }
    }

    /// The digest of signature `index`'s signed bytes, as [`EmbeddedSignature::digest`]
    /// gives it. `None` when its byte range failed its checks.
    pub fn get(&self, index: usize, algorithm: DigestAlgorithm) -> Option<Vec<u8>> {
        // A poisoned lock only means another caller panicked mid-insert; the map holds
        // complete entries only, so its contents are still good.
        let mut done = self
            .done
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        done.entry(algorithm)
            .or_insert_with(|| digest_streams(self.pdf, &self.streams, algorithm))
            .get(index)
            .cloned()
            .flatten()
    }
}

/// Where one signature is in its stream: the span, and the file offset within it.
#[derive(Clone, Copy)]
struct Cursor {
    sig: usize,
    span: usize,
    pos: usize,
}

/// The digests of all `streams`, shared prefixes hashed once.
fn digest_streams(
    pdf: &[u8],
    streams: &[Option<Stream>],
    algorithm: DigestAlgorithm,
) -> Vec<Option<Vec<u8>>> {
    let mut out: Vec<Option<Vec<u8>>> = vec![None; streams.len()];
    let start: Vec<Cursor> = streams
        .iter()
        .enumerate()
        .filter_map(|(sig, s)| {
            let first = s.as_ref()?.first().map_or(0, |&(s, _)| s);
            Some(Cursor {
                sig,
                span: 0,
                pos: first,
            })
        })
        .collect();
    // Each step either hashes at least one byte for a whole group, finishes a signature or
    // splits a group: the work is bounded by the signed bytes plus the signature count.
    let mut pending = vec![(Digester::new(algorithm), start)];
    while let Some((mut hasher, mut group)) = pending.pop() {
        loop {
            group.retain(|c| {
                let spans = streams[c.sig].as_deref().unwrap_or_default();
                if c.span < spans.len() {
                    return true;
                }
                out[c.sig] = Some(hasher.clone().finish());
                false
            });
            let Some(first) = group.first().copied() else {
                break;
            };
            if group.iter().any(|c| c.pos != first.pos) {
                // The streams part here: one branch per position, each from this state.
                let mut rest = group;
                while let Some(lead) = rest.first().copied() {
                    let (same, other): (Vec<Cursor>, Vec<Cursor>) =
                        rest.into_iter().partition(|c| c.pos == lead.pos);
                    pending.push((hasher.clone(), same));
                    rest = other;
                }
                break;
            }
            // All read from the same offset: hash as far as the shortest span goes.
            let end = group
                .iter()
                .map(|c| streams[c.sig].as_deref().unwrap_or_default()[c.span].1)
                .min()
                .unwrap_or(first.pos);
            hasher.update(&pdf[first.pos..end]);
            for c in &mut group {
                let spans = streams[c.sig].as_deref().unwrap_or_default();
                c.pos = end;
                if end == spans[c.span].1 {
                    c.span += 1;
                    c.pos = spans.get(c.span).map_or(end, |&(s, _)| s);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_by_one(
        pdf: &[u8],
        streams: &[Option<Stream>],
        a: DigestAlgorithm,
    ) -> Vec<Option<Vec<u8>>> {
        streams
            .iter()
            .map(|s| {
                let mut d = Digester::new(a);
                for &(x, y) in s.as_ref()? {
                    d.update(&pdf[x..y]);
                }
                Some(d.finish())
            })
            .collect()
    }

    #[test]
    fn shared_prefixes_disjoint_and_interleaved_ranges_give_each_signature_its_own_digest() {
        let pdf: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let cases: Vec<Vec<Option<Stream>>> = vec![
            // Two incremental signatures: nested first ranges.
            vec![
                Some(vec![(0, 1000), (1200, 1500)]),
                Some(vec![(0, 2000), (2300, 2600)]),
            ],
            // Three, the middle one broken.
            vec![
                Some(vec![(0, 1000), (1200, 1500)]),
                None,
                Some(vec![(0, 3000), (3300, 5000)]),
            ],
            // No shared prefix at all, and the same range twice.
            vec![
                Some(vec![(10, 400), (800, 900)]),
                Some(vec![(0, 400)]),
                Some(vec![(0, 400)]),
                Some(vec![]),
            ],
            // Same first range, different second ranges; one stream a prefix of another.
            vec![
                Some(vec![(0, 1000), (1100, 1200)]),
                Some(vec![(0, 1000), (1150, 1300)]),
                Some(vec![(0, 1000)]),
                Some(vec![(0, 500), (500, 1000), (1100, 1200)]),
            ],
        ];
        for streams in cases {
            for a in [DigestAlgorithm::Sha256, DigestAlgorithm::Sha384] {
                assert_eq!(
                    digest_streams(&pdf, &streams, a),
                    one_by_one(&pdf, &streams, a)
                );
            }
        }
    }
}
