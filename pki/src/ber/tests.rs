//! Unit tests of the parent module.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use der::{Decode, Tagged};

fn der(input: &[u8]) -> Vec<u8> {
    to_der(input, Limits::default()).unwrap().into_owned()
}

/// A CMS-like BER sample as openssl -stream writes it: indefinite
/// lengths everywhere and the content as a constructed OCTET STRING.
fn ber_sample() -> Vec<u8> {
    vec![
        0x30, 0x80, // ContentInfo SEQUENCE, indefinite
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, // signedData
        0xa0, 0x80, // [0] EXPLICIT, indefinite
        0x30, 0x80, // SignedData, indefinite
        0x02, 0x01, 0x01, // version
        0x31, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, // digestAlgorithms
        0x30, 0x80, // EncapsulatedContentInfo, indefinite
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01, // data
        0xa0, 0x80, // [0] EXPLICIT, indefinite
        0x24, 0x80, // constructed OCTET STRING, indefinite
        0x04, 0x03, b'a', b'b', b'c', // segment
        0x04, 0x81, 0x02, b'd', b'e', // segment with a non-minimal length
        0x24, 0x06, 0x04, 0x01, b'f', 0x04, 0x01, b'g', // nested constructed segment
        0x00, 0x00, // end of OCTET STRING
        0x00, 0x00, // end of [0]
        0x00, 0x00, // end of EncapsulatedContentInfo
        0x31, 0x03, 0x02, 0x01, 0x05, // a SET kept as is
        0x00, 0x00, // end of SignedData
        0x00, 0x00, // end of [0]
        0x00, 0x00, // end of ContentInfo
    ]
}

fn der_sample() -> Vec<u8> {
    vec![
        0x30, 0x40, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0xa0, 0x33,
        0x30, 0x31, 0x02, 0x01, 0x01, 0x31, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
        0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x30, 0x16, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
        0xf7, 0x0d, 0x01, 0x07, 0x01, 0xa0, 0x09, 0x04, 0x07, b'a', b'b', b'c', b'd', b'e', b'f',
        b'g', 0x31, 0x03, 0x02, 0x01, 0x05,
    ]
}

#[test]
fn normalises_openssl_stream_style_ber() {
    let out = der(&ber_sample());
    assert_eq!(out, der_sample());
    // The result is DER that `der` accepts.
    let any = der::Any::from_der(&out).unwrap();
    assert_eq!(any.tag(), der::Tag::Sequence);
}

#[test]
fn der_input_is_borrowed() {
    let sample = der_sample();
    assert!(matches!(
        to_der(&sample, Limits::default()).unwrap(),
        Cow::Borrowed(_)
    ));
}

#[test]
fn set_order_is_kept() {
    // SET OF with elements out of DER order: must not be re-sorted.
    let input = [0x31, 0x80, 0x02, 0x01, 0x09, 0x02, 0x01, 0x01, 0x00, 0x00];
    assert_eq!(
        der(&input),
        [0x31, 0x06, 0x02, 0x01, 0x09, 0x02, 0x01, 0x01]
    );
}

#[test]
fn non_minimal_lengths_become_minimal() {
    assert_eq!(der(&[0x04, 0x81, 0x01, 0xaa]), [0x04, 0x01, 0xaa]);
    assert_eq!(
        der(&[0x30, 0x84, 0, 0, 0, 3, 0x04, 0x01, 0xaa]),
        [0x30, 0x03, 0x04, 0x01, 0xaa]
    );
    let mut long = vec![0x04, 0x82, 0x00, 0x90];
    long.extend(std::iter::repeat_n(7u8, 0x90));
    let out = der(&long);
    assert_eq!(&out[..3], &[0x04, 0x81, 0x90]);
    assert_eq!(out.len(), 3 + 0x90);
}

#[test]
fn long_lengths_grow_correctly() {
    // 300 bytes in indefinite-length segments: the definite form needs two length bytes.
    let mut input = vec![0x24, 0x80];
    for _ in 0..3 {
        input.extend([0x04, 0x64]);
        input.extend(std::iter::repeat_n(1u8, 100));
    }
    input.extend([0, 0]);
    let out = der(&input);
    assert_eq!(&out[..4], &[0x04, 0x82, 0x01, 0x2c]);
    assert_eq!(out.len(), 4 + 300);
}

#[test]
fn bit_strings_are_concatenated() {
    let input = [
        0x23, 0x80, 0x03, 0x02, 0x00, 0xaa, 0x03, 0x02, 0x04, 0xb0, 0x00, 0x00,
    ];
    assert_eq!(der(&input), [0x03, 0x03, 0x04, 0xaa, 0xb0]);
    // Unused bits in a segment that is not the last.
    let bad = [
        0x23, 0x80, 0x03, 0x02, 0x04, 0xa0, 0x03, 0x02, 0x00, 0xb0, 0x00, 0x00,
    ];
    assert!(to_der(&bad, Limits::default()).is_err());
    // Empty constructed BIT STRING.
    assert_eq!(der(&[0x23, 0x80, 0x00, 0x00]), [0x03, 0x01, 0x00]);
}

#[test]
fn context_tags_and_long_tags_are_kept() {
    let input = [0xbf, 0x81, 0x01, 0x80, 0x04, 0x01, 0x01, 0x00, 0x00];
    assert_eq!(der(&input), [0xbf, 0x81, 0x01, 0x03, 0x04, 0x01, 0x01]);
}

fn assert_malformed(input: &[u8]) {
    match to_der(input, Limits::default()) {
        Err(Error::Malformed { .. }) => {}
        other => panic!("expected Malformed for {input:02x?}, got {other:?}"),
    }
}

#[test]
fn hostile_inputs_are_rejected() {
    assert_malformed(&[]);
    assert_malformed(&[0x30]);
    assert_malformed(&[0x30, 0x05, 0x02, 0x01]);
    assert_malformed(&[0x30, 0x80, 0x02, 0x01, 0x01]); // no EOC
    assert_malformed(&[0x30, 0x80, 0x02, 0x01, 0x01, 0x00]); // half an EOC
    assert_malformed(&[0x30, 0x80, 0x00, 0x01, 0x00, 0x00, 0x00]); // EOC with length
    assert_malformed(&[0x00, 0x00]); // EOC at top level
    assert_malformed(&[0x30, 0x02, 0x00, 0x00]); // EOC in definite contents
    assert_malformed(&[0x04, 0x80, 0x00, 0x00]); // indefinite primitive
    assert_malformed(&[0x30, 0xff]); // reserved length octet
    assert_malformed(&[0x30, 0x89, 1, 1, 1, 1, 1, 1, 1, 1, 1]); // length of length > 8
    assert_malformed(&[0x1f, 0x81, 0x81, 0x81, 0x81, 0x01, 0x00]); // 5-byte tag number
    assert_malformed(&[0x1f, 0x81]); // truncated tag
    assert_malformed(&[0x24, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00]); // wrong segment tag
    assert_malformed(&[0x24, 0x80, 0xa4, 0x00, 0x00, 0x00]); // context segment
    assert_malformed(&[0x02, 0x01, 0x01, 0x00]); // trailing data
    assert_malformed(&[0x30, 0x03, 0x04, 0x05, 0x00]); // child past parent end
}

#[test]
fn huge_lengths_are_too_large() {
    for input in [
        &[0x04, 0x84, 0xff, 0xff, 0xff, 0xff][..],
        &[0x04, 0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
    ] {
        assert!(matches!(
            to_der(input, Limits::default()),
            Err(Error::TooLarge { .. })
        ));
    }
    let small = Limits {
        max_depth: 64,
        max_len: 4,
    };
    assert!(matches!(
        to_der(&[0x04, 0x05, 1, 2, 3, 4, 5], small),
        Err(Error::TooLarge { .. })
    ));
}

#[test]
fn depth_bombs_are_too_large() {
    let mut bomb = Vec::new();
    for _ in 0..100_000 {
        bomb.extend([0x30, 0x80]);
    }
    assert!(matches!(
        to_der(&bomb, Limits::default()),
        Err(Error::TooLarge {
            what: "BER nesting depth",
            ..
        })
    ));
    let mut bomb = Vec::new();
    for _ in 0..10_000 {
        bomb.extend([0x24, 0x80]);
    }
    assert!(matches!(
        to_der(&bomb, Limits::default()),
        Err(Error::TooLarge { .. })
    ));
    // Exactly at the limit is fine.
    let limits = Limits {
        max_depth: 3,
        max_len: 1024,
    };
    assert!(to_der(&[0x30, 0x80, 0x30, 0x80, 0x05, 0x00, 0, 0, 0, 0], limits).is_ok());
    assert!(
        to_der(
            &[
                0x30, 0x80, 0x30, 0x80, 0x30, 0x80, 0x05, 0x00, 0, 0, 0, 0, 0, 0
            ],
            limits
        )
        .is_err()
    );
}

#[test]
fn many_small_elements_are_linear() {
    // A million NULLs under one indefinite SEQUENCE: must finish quickly.
    let mut input = vec![0x30, 0x80];
    for _ in 0..1_000_000 {
        input.extend([0x05, 0x00]);
    }
    input.extend([0, 0]);
    let start = std::time::Instant::now();
    let out = der(&input);
    assert_eq!(out.len(), 2_000_000 + 5);
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn truncations_never_panic_and_fail() {
    let sample = ber_sample();
    for cut in 0..sample.len() {
        assert!(
            to_der(&sample[..cut], Limits::default()).is_err(),
            "cut {cut}"
        );
    }
    let sample = der_sample();
    for cut in 0..sample.len() {
        assert!(
            to_der(&sample[..cut], Limits::default()).is_err(),
            "cut {cut}"
        );
    }
}

#[test]
fn random_mutations_never_panic() {
    // Deterministic xorshift so failures are reproducible.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let sample = ber_sample();
    for _ in 0..20_000 {
        let mut m = sample.clone();
        let flips = 1 + (next() % 4) as usize;
        for _ in 0..flips {
            let i = (next() as usize) % m.len();
            m[i] = next() as u8;
        }
        let cut = (next() as usize) % (m.len() + 1);
        let m = &m[..cut];
        if let Ok(out) = to_der(m, Limits::default()) {
            // Whatever comes out is stable under a second pass.
            let again = to_der(&out, Limits::default()).unwrap();
            assert_eq!(again.as_ref(), out.as_ref());
        }
        let _ = element_len(m, Limits::default());
    }
}

#[test]
fn element_len_ignores_trailing_padding() {
    let mut sample = ber_sample();
    let len = sample.len();
    sample.extend([0u8; 100]);
    assert_eq!(element_len(&sample, Limits::default()).unwrap(), len);
}

#[test]
fn tlv_reader_and_children() {
    let sample = der_sample();
    let (ci, rest) = read_tlv(&sample).unwrap();
    assert!(rest.is_empty());
    assert_eq!(ci.tag, 0x30);
    let kids: Vec<_> = children(ci.content).collect::<Result<_>>().unwrap();
    assert_eq!(kids.len(), 2);
    assert_eq!(kids[0].tag, 0x06);
    assert_eq!(kids[1].tag, 0xa0);
    assert!(read_tlv(&[0x30, 0x80, 0, 0]).is_err());
    assert!(read_tlv(&[0x30, 0x05]).is_err());
    let bad: Vec<_> = children(&[0x02, 0x01, 0x01, 0x02, 0x05]).collect();
    assert_eq!(bad.len(), 2);
    assert!(bad[1].is_err());
}

#[test]
fn set_sizes_are_bounded() {
    let mut set = vec![0x31, 0x82, 0x02, 0x00];
    for _ in 0..256 {
        set.extend([0x02, 0x00]);
    }
    assert!(check_set_sizes(&set, 256, 64).is_ok());
    assert!(check_set_sizes(&set, 255, 64).is_err());
    // A SEQUENCE with many children is fine.
    set[0] = 0x30;
    assert!(check_set_sizes(&set, 10, 64).is_ok());
}

/// `to_der_set_limited` accepts and refuses what `to_der` then `check_set_sizes` do, on DER
/// and on BER (indefinite lengths, a constructed string), universal and context-tagged SETs.
#[test]
fn set_limited_conversion_agrees_with_the_two_walks() {
    let limits = Limits::default();
    let two_walks = |input: &[u8], max: usize| -> std::result::Result<Vec<u8>, String> {
        let der = to_der(input, limits).map_err(|e| e.to_string())?;
        check_set_sizes(&der, max, limits.max_depth).map_err(|e| e.to_string())?;
        Ok(der.into_owned())
    };
    let one_walk = |input: &[u8], max: usize| -> std::result::Result<Vec<u8>, String> {
        to_der_set_limited(input, limits, max)
            .map(|d| d.into_owned())
            .map_err(|e| e.to_string())
    };
    let mut cases: Vec<Vec<u8>> = Vec::new();
    for (tag, n) in [(0x31u8, 3usize), (0x31, 4), (0xa1, 4), (0x30, 9)] {
        // DER: SEQUENCE { SET/[1]/SEQUENCE of n INTEGERs }.
        let mut inner = vec![tag, (2 * n) as u8];
        for _ in 0..n {
            inner.extend([0x02, 0x00]);
        }
        let mut der = vec![0x30, inner.len() as u8];
        der.extend(&inner);
        cases.push(der);
        // BER: the same with indefinite lengths and a constructed OCTET STRING inside.
        let mut ber = vec![0x30, 0x80, tag, 0x80];
        for _ in 0..n {
            ber.extend([0x02, 0x00]);
        }
        ber.extend([0x24, 0x80, 0x04, 0x01, 0xaa, 0x04, 0x01, 0xbb, 0x00, 0x00]);
        ber.extend([0x00, 0x00, 0x00, 0x00]);
        cases.push(ber);
    }
    // Broken input fails either way.
    cases.push(vec![0x30, 0x80, 0x31, 0x02, 0x02]);
    cases.push(vec![0x30, 0x03, 0x02, 0x00]);
    for (i, case) in cases.iter().enumerate() {
        for max in [3, 4, 5, 256] {
            let (a, b) = (two_walks(case, max), one_walk(case, max));
            assert_eq!(a.is_ok(), b.is_ok(), "case {i}, max {max}: {a:?} / {b:?}");
            if let (Ok(a), Ok(b)) = (&a, &b) {
                assert_eq!(a, b, "case {i}, max {max}");
            }
        }
    }
    // The bound is the same: 4 elements pass at 4, fail at 3, in DER and in BER.
    assert!(one_walk(&cases[2], 4).is_ok());
    assert!(one_walk(&cases[2], 3).is_err());
    assert!(one_walk(&cases[3], 3).is_err());
    assert!(one_walk(&cases[5], 3).is_err());
}

/// A certificate, OCSP response or CRL whose name carries a huge SET in reverse order would
/// cost the decoder's insertion sort n²/2 comparisons; it is refused by the linear walk
/// first (issue 14), promptly.
#[test]
fn a_certificate_with_a_huge_reversed_set_is_refused_promptly() {
    // SEQUENCE { SEQUENCE { SET { 12,000 INTEGERs, descending } } }: under the 64 KiB a
    // certificate may have, 72 million comparisons unchecked.
    let n: u32 = 12_000;
    let mut items = Vec::new();
    for i in (0..n).rev() {
        items.extend([0x02, 0x03]);
        items.extend(&i.to_be_bytes()[1..]);
    }
    let wrap = |tag: u8, content: &[u8]| {
        let mut out = vec![tag, 0x83];
        out.extend(&(content.len() as u32).to_be_bytes()[1..]);
        out.extend(content);
        out
    };
    let cert = wrap(0x30, &wrap(0x30, &wrap(0x31, &items)));
    let started = std::time::Instant::now();
    let e = crate::cert::Cert::from_der(&cert).unwrap_err();
    assert!(e.to_string().contains("SET OF element count"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_millis(500));
}
