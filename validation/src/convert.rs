//! Conversions between the report and the wire messages, both ways: the
//! verifier service answers with proto, the signer puts the verdict on a
//! received document into its answers, and the CLI turns a server's answer
//! back into the same report it prints for in-process verification.

use kyso_pki::time::OffsetDateTime;
use kyso_proto::verifier::v1 as pb;

use crate::edxml::{AttachmentReport, EdxmlReport, EdxmlSummary};
use crate::pdf::{
    Modification, ModificationKind, PdfReport, PdfSignatureReport, Revision, SignatureKind,
};
use crate::report::{
    CertKind, CertSource, CertStatus, CertificateOrigin, DocumentReport, EvidenceOrigin,
    Indication, PathEntry, ReferenceTime, RevocationEvidence, RevocationPolicy, RevocationSource,
    SignatureLevel, SignatureReport, SignerIdentity, SubIndication, TimeSource, TimestampKind,
    TimestampReport,
};
use crate::verify::CertificateReport;

/// The ETSI name of a sub-indication.
pub fn sub_indication_name(s: SubIndication) -> &'static str {
    use SubIndication::*;
    match s {
        FormatFailure => "FORMAT_FAILURE",
        HashFailure => "HASH_FAILURE",
        SigCryptoFailure => "SIG_CRYPTO_FAILURE",
        Revoked => "REVOKED",
        Expired => "EXPIRED",
        NotYetValid => "NOT_YET_VALID",
        RevokedNoPoe => "REVOKED_NO_POE",
        RevokedCaNoPoe => "REVOKED_CA_NO_POE",
        OutOfBoundsNoPoe => "OUT_OF_BOUNDS_NO_POE",
        NoCertificateChainFound => "NO_CERTIFICATE_CHAIN_FOUND",
        NoSigningCertificateFound => "NO_SIGNING_CERTIFICATE_FOUND",
        ChainConstraintsFailure => "CHAIN_CONSTRAINTS_FAILURE",
        CertificateChainGeneralFailure => "CERTIFICATE_CHAIN_GENERAL_FAILURE",
        CryptoConstraintsFailure => "CRYPTO_CONSTRAINTS_FAILURE",
        SigConstraintsFailure => "SIG_CONSTRAINTS_FAILURE",
        TryLater => "TRY_LATER",
        SignedDataNotFound => "SIGNED_DATA_NOT_FOUND",
    }
}

// Both directions of each enum are written out as one table so they cannot drift.
const SUBS: &[(SubIndication, pb::SubIndication)] = &[
    (
        SubIndication::FormatFailure,
        pb::SubIndication::FormatFailure,
    ),
    (SubIndication::HashFailure, pb::SubIndication::HashFailure),
    (
        SubIndication::SigCryptoFailure,
        pb::SubIndication::SigCryptoFailure,
    ),
    (SubIndication::Revoked, pb::SubIndication::Revoked),
    (SubIndication::Expired, pb::SubIndication::Expired),
    (SubIndication::NotYetValid, pb::SubIndication::NotYetValid),
    (SubIndication::RevokedNoPoe, pb::SubIndication::RevokedNoPoe),
    (
        SubIndication::RevokedCaNoPoe,
        pb::SubIndication::RevokedCaNoPoe,
    ),
    (
        SubIndication::OutOfBoundsNoPoe,
        pb::SubIndication::OutOfBoundsNoPoe,
    ),
    (
        SubIndication::NoCertificateChainFound,
        pb::SubIndication::NoCertificateChainFound,
    ),
    (
        SubIndication::NoSigningCertificateFound,
        pb::SubIndication::NoSigningCertificateFound,
    ),
    (
        SubIndication::ChainConstraintsFailure,
        pb::SubIndication::ChainConstraintsFailure,
    ),
    (
        SubIndication::CertificateChainGeneralFailure,
        pb::SubIndication::CertificateChainGeneralFailure,
    ),
    (
        SubIndication::CryptoConstraintsFailure,
        pb::SubIndication::CryptoConstraintsFailure,
    ),
    (
        SubIndication::SigConstraintsFailure,
        pb::SubIndication::SigConstraintsFailure,
    ),
    (SubIndication::TryLater, pb::SubIndication::TryLater),
    (
        SubIndication::SignedDataNotFound,
        pb::SubIndication::SignedDataNotFound,
    ),
];

const INDICATIONS: &[(Indication, pb::Indication)] = &[
    (Indication::TotalPassed, pb::Indication::TotalPassed),
    (Indication::TotalFailed, pb::Indication::TotalFailed),
    (Indication::Indeterminate, pb::Indication::Indeterminate),
];

const POLICIES: &[(RevocationPolicy, pb::RevocationPolicy)] = &[
    (RevocationPolicy::Require, pb::RevocationPolicy::Require),
    (RevocationPolicy::SoftFail, pb::RevocationPolicy::SoftFail),
    (RevocationPolicy::Off, pb::RevocationPolicy::Off),
];

const ORIGINS: &[(CertificateOrigin, pb::SignerCertificateOrigin)] = &[
    (
        CertificateOrigin::Embedded,
        pb::SignerCertificateOrigin::Embedded,
    ),
    (
        CertificateOrigin::Supplied,
        pb::SignerCertificateOrigin::Supplied,
    ),
    (
        CertificateOrigin::Registry,
        pb::SignerCertificateOrigin::Registry,
    ),
];

const TIME_SOURCES: &[(TimeSource, pb::TimeSource)] = &[
    (TimeSource::Caller, pb::TimeSource::Caller),
    (
        TimeSource::SigningTimeAttribute,
        pb::TimeSource::SigningTimeAttribute,
    ),
    (TimeSource::ValidationTime, pb::TimeSource::ValidationTime),
    (
        TimeSource::PdfSignatureDictionary,
        pb::TimeSource::PdfSignatureDictionary,
    ),
    (
        TimeSource::SignatureTimestamp,
        pb::TimeSource::SignatureTimestamp,
    ),
    (
        TimeSource::DocumentTimestamp,
        pb::TimeSource::DocumentTimestamp,
    ),
];

const KINDS: &[(CertKind, pb::CertificateKind)] = &[
    (CertKind::Personal, pb::CertificateKind::Personal),
    (CertKind::Organisation, pb::CertificateKind::Organisation),
    (CertKind::Ca, pb::CertificateKind::Ca),
];

const REV_SOURCES: &[(RevocationSource, pb::RevocationSource)] = &[
    (RevocationSource::Ocsp, pb::RevocationSource::Ocsp),
    (RevocationSource::Crl, pb::RevocationSource::Crl),
    (RevocationSource::None, pb::RevocationSource::None),
];

const EVIDENCE_ORIGINS: &[(EvidenceOrigin, pb::EvidenceOrigin)] = &[
    (EvidenceOrigin::Fetched, pb::EvidenceOrigin::Fetched),
    (EvidenceOrigin::EmbeddedDss, pb::EvidenceOrigin::EmbeddedDss),
    (EvidenceOrigin::EmbeddedCms, pb::EvidenceOrigin::EmbeddedCms),
];

const STATUSES: &[(CertStatus, pb::CertStatus)] = &[
    (CertStatus::Good, pb::CertStatus::Good),
    (CertStatus::Revoked, pb::CertStatus::Revoked),
    (CertStatus::Unknown, pb::CertStatus::Unknown),
    (CertStatus::NotChecked, pb::CertStatus::NotChecked),
];

const MODIFICATIONS: &[(ModificationKind, pb::ModificationKind)] = &[
    (ModificationKind::Signature, pb::ModificationKind::Signature),
    (
        ModificationKind::SignatureField,
        pb::ModificationKind::SignatureField,
    ),
    (
        ModificationKind::SignatureAppearance,
        pb::ModificationKind::SignatureAppearance,
    ),
    (
        ModificationKind::FormFields,
        pb::ModificationKind::FormFields,
    ),
    (ModificationKind::Dss, pb::ModificationKind::Dss),
    (ModificationKind::Metadata, pb::ModificationKind::Metadata),
    (
        ModificationKind::UnusedObject,
        pb::ModificationKind::UnusedObject,
    ),
    (
        ModificationKind::ObjectAdded,
        pb::ModificationKind::ObjectAdded,
    ),
    (
        ModificationKind::PageContent,
        pb::ModificationKind::PageContent,
    ),
    (
        ModificationKind::PageResources,
        pb::ModificationKind::PageResources,
    ),
    (ModificationKind::Page, pb::ModificationKind::Page),
    (
        ModificationKind::Annotation,
        pb::ModificationKind::Annotation,
    ),
    (
        ModificationKind::FormFieldValue,
        pb::ModificationKind::FormFieldValue,
    ),
    (ModificationKind::Catalog, pb::ModificationKind::Catalog),
    (
        ModificationKind::SignatureChanged,
        pb::ModificationKind::SignatureChanged,
    ),
    (
        ModificationKind::ObjectReplaced,
        pb::ModificationKind::ObjectReplaced,
    ),
    (
        ModificationKind::ObjectDeleted,
        pb::ModificationKind::ObjectDeleted,
    ),
    (
        ModificationKind::XrefRedirect,
        pb::ModificationKind::XrefRedirect,
    ),
    (
        ModificationKind::TrailingData,
        pb::ModificationKind::TrailingData,
    ),
];

fn to_pb<A: PartialEq + Copy, B: Copy + Into<i32>>(table: &[(A, B)], a: A) -> i32 {
    table
        .iter()
        .find(|(x, _)| *x == a)
        .map(|(_, b)| (*b).into())
        .unwrap_or(0)
}

fn from_pb<A: Copy, B: Copy + Into<i32>>(table: &[(A, B)], v: i32) -> Option<A> {
    table
        .iter()
        .find(|(_, b)| (*b).into() == v)
        .map(|(a, _)| *a)
}

/// A proto revocation policy; UNSPECIFIED means "the server's default".
pub fn policy_from_pb(v: i32) -> Option<RevocationPolicy> {
    from_pb(POLICIES, v)
}

/// The proto value of a policy.
pub fn policy_to_pb(p: RevocationPolicy) -> i32 {
    to_pb(POLICIES, p)
}

/// An optional time as a protobuf timestamp.
pub fn ts(t: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: i32::try_from(t.nanosecond()).unwrap_or(0),
    }
}

/// A protobuf timestamp as a time, if representable.
pub fn from_ts(t: &prost_types::Timestamp) -> Option<OffsetDateTime> {
    let base = OffsetDateTime::from_unix_timestamp(t.seconds).ok()?;
    Some(base + time::Duration::nanoseconds(i64::from(t.nanos.clamp(0, 999_999_999))))
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

fn some(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Report → proto.
pub fn document_to_pb(r: &DocumentReport) -> pb::VerifyCmsResponse {
    pb::VerifyCmsResponse {
        indication: to_pb(INDICATIONS, r.indication),
        signatures: r.signatures.iter().map(signature_to_pb).collect(),
    }
}

/// The verdict of `r` without its evidence (`VerifyCmsRequest.verdict_only`): the same
/// indications, sub-indications, messages, reference times and levels as
/// [`document_to_pb`], without the signer, path, revocation evidence, timestamps and
/// warnings, whose strings are most of the cost of rendering a report.
pub fn document_verdict_to_pb(r: &DocumentReport) -> pb::VerifyCmsResponse {
    pb::VerifyCmsResponse {
        indication: to_pb(INDICATIONS, r.indication),
        signatures: r.signatures.iter().map(signature_verdict_to_pb).collect(),
    }
}

fn signature_verdict_to_pb(s: &SignatureReport) -> pb::SignatureReport {
    pb::SignatureReport {
        index: s.index,
        indication: to_pb(INDICATIONS, s.indication),
        sub_indication: s.sub_indication.map(|x| to_pb(SUBS, x)).unwrap_or(0),
        message: s.message.clone(),
        reference_time: Some(reference_to_pb(&s.reference_time)),
        revocation_policy: policy_to_pb(s.revocation_policy),
        detached: s.detached,
        poe_time: s.poe.map(|p| ts(p.time)),
        poe_source: s.poe.map(|p| to_pb(TIME_SOURCES, p.source)).unwrap_or(0),
        level: to_pb(LEVELS, s.level),
        ..Default::default()
    }
}

fn signature_to_pb(s: &SignatureReport) -> pb::SignatureReport {
    pb::SignatureReport {
        index: s.index,
        indication: to_pb(INDICATIONS, s.indication),
        sub_indication: s.sub_indication.map(|x| to_pb(SUBS, x)).unwrap_or(0),
        message: s.message.clone(),
        signer: s.signer.as_ref().map(identity_to_pb),
        reference_time: Some(reference_to_pb(&s.reference_time)),
        claimed_signing_time: s.claimed_signing_time.map(ts),
        path: s.path.iter().map(path_to_pb).collect(),
        revocation: s.revocation.iter().map(evidence_to_pb).collect(),
        warnings: s.warnings.clone(),
        digest_algorithm: opt(&s.digest_algorithm),
        signature_algorithm: opt(&s.signature_algorithm),
        revocation_policy: policy_to_pb(s.revocation_policy),
        signed_attributes: s.signed_attributes,
        ess_signing_certificate_v2: s.ess_signing_certificate_v2,
        detached: s.detached,
        commitment_type: opt(&s.commitment_type),
        signer_certificate_origin: s
            .signer_certificate_origin
            .map(|o| to_pb(ORIGINS, o))
            .unwrap_or(0),
        timestamps: s.timestamps.iter().map(timestamp_to_pb).collect(),
        poe_time: s.poe.map(|p| ts(p.time)),
        poe_source: s.poe.map(|p| to_pb(TIME_SOURCES, p.source)).unwrap_or(0),
        level: to_pb(LEVELS, s.level),
    }
}

const LEVELS: &[(SignatureLevel, pb::SignatureLevel)] = &[
    (SignatureLevel::BB, pb::SignatureLevel::BB),
    (SignatureLevel::BT, pb::SignatureLevel::BT),
    (SignatureLevel::BLt, pb::SignatureLevel::BLt),
    (SignatureLevel::BLta, pb::SignatureLevel::BLta),
];

const TIMESTAMP_KINDS: &[(TimestampKind, pb::TimestampKind)] = &[
    (TimestampKind::Signature, pb::TimestampKind::Signature),
    (TimestampKind::Document, pb::TimestampKind::Document),
];

fn timestamp_to_pb(t: &TimestampReport) -> pb::TimestampReport {
    pb::TimestampReport {
        kind: to_pb(TIMESTAMP_KINDS, t.kind),
        indication: to_pb(INDICATIONS, t.indication),
        sub_indication: t.sub_indication.map(|x| to_pb(SUBS, x)).unwrap_or(0),
        message: t.message.clone(),
        gen_time: t.gen_time.map(ts),
        tsa: t.tsa.as_ref().map(identity_to_pb),
        path: t.path.iter().map(path_to_pb).collect(),
        revocation: t.revocation.iter().map(evidence_to_pb).collect(),
        warnings: t.warnings.clone(),
    }
}

fn timestamp_from_pb(t: &pb::TimestampReport) -> Option<TimestampReport> {
    Some(TimestampReport {
        kind: from_pb(TIMESTAMP_KINDS, t.kind)?,
        indication: from_pb(INDICATIONS, t.indication).unwrap_or(Indication::Indeterminate),
        sub_indication: from_pb(SUBS, t.sub_indication),
        message: t.message.clone(),
        gen_time: t.gen_time.as_ref().and_then(from_ts),
        tsa: t.tsa.as_ref().map(identity_from_pb),
        path: t.path.iter().map(path_from_pb).collect(),
        revocation: t.revocation.iter().map(evidence_from_pb).collect(),
        warnings: t.warnings.clone(),
    })
}

/// PDF report → proto.
pub fn pdf_to_pb(r: &PdfReport) -> pb::VerifyPdfResponse {
    pb::VerifyPdfResponse {
        indication: to_pb(INDICATIONS, r.indication),
        revisions: r.revisions.iter().map(revision_to_pb).collect(),
        signatures: r.signatures.iter().map(pdf_signature_to_pb).collect(),
    }
}

fn u32_of(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn revision_to_pb(r: &Revision) -> pb::PdfRevision {
    pb::PdfRevision {
        index: u32_of(r.index),
        start: r.start as u64,
        end: r.end as u64,
        eof_end: r.eof_end as u64,
        xref_offset: r.xref_offset as u64,
        xref_stream: r.xref_stream,
        objects: u32_of(r.objects),
    }
}

fn pdf_signature_to_pb(s: &PdfSignatureReport) -> pb::PdfSignature {
    pb::PdfSignature {
        field_name: s.field_name.clone(),
        sub_filter: s.sub_filter.clone(),
        revision: u32_of(s.revision),
        covers_whole_document: s.covers_whole_document,
        byte_range: s.byte_range.map(|b| b.to_vec()).unwrap_or_default(),
        byte_range_error: opt(&s.byte_range_error),
        signing_time: s.signing_time.map(ts),
        reason: opt(&s.reason),
        location: opt(&s.location),
        name: opt(&s.name),
        modifications: s.modifications.iter().map(modification_to_pb).collect(),
        report: Some(signature_to_pb(&s.report)),
        document_timestamp: s.kind == SignatureKind::DocTimeStamp,
    }
}

fn modification_to_pb(m: &Modification) -> pb::Modification {
    pb::Modification {
        revision: u32_of(m.revision),
        kind: to_pb(MODIFICATIONS, m.kind),
        object_number: m.object.map_or(0, |o| o.0),
        object_generation: m.object.map_or(0, |o| u32::from(o.1)),
        allowed: m.allowed,
        description: m.description.clone(),
    }
}

/// Proto → PDF report (for clients that print what a server said).
pub fn pdf_from_pb(r: &pb::VerifyPdfResponse) -> PdfReport {
    let signatures: Vec<PdfSignatureReport> = r
        .signatures
        .iter()
        .map(|s| PdfSignatureReport {
            field_name: s.field_name.clone(),
            kind: if s.document_timestamp {
                SignatureKind::DocTimeStamp
            } else {
                SignatureKind::Signature
            },
            sub_filter: s.sub_filter.clone(),
            revision: s.revision as usize,
            covers_whole_document: s.covers_whole_document,
            byte_range: <[u64; 4]>::try_from(s.byte_range.as_slice()).ok(),
            byte_range_error: some(s.byte_range_error.clone()),
            signing_time: s.signing_time.as_ref().and_then(from_ts),
            reason: some(s.reason.clone()),
            location: some(s.location.clone()),
            name: some(s.name.clone()),
            modifications: s
                .modifications
                .iter()
                .map(|m| Modification {
                    revision: m.revision as usize,
                    kind: from_pb(MODIFICATIONS, m.kind)
                        .unwrap_or(ModificationKind::ObjectReplaced),
                    object: (m.object_number != 0).then(|| {
                        (
                            m.object_number,
                            u16::try_from(m.object_generation).unwrap_or(0),
                        )
                    }),
                    allowed: m.allowed,
                    description: m.description.clone(),
                })
                .collect(),
            report: s
                .report
                .as_ref()
                .map(signature_from_pb)
                .unwrap_or_else(|| signature_from_pb(&pb::SignatureReport::default())),
        })
        .collect();
    PdfReport {
        indication: from_pb(INDICATIONS, r.indication).unwrap_or(Indication::Indeterminate),
        revisions: r
            .revisions
            .iter()
            .map(|v| Revision {
                index: v.index as usize,
                start: usize::try_from(v.start).unwrap_or(usize::MAX),
                end: usize::try_from(v.end).unwrap_or(usize::MAX),
                eof_end: usize::try_from(v.eof_end).unwrap_or(usize::MAX),
                xref_offset: usize::try_from(v.xref_offset).unwrap_or(usize::MAX),
                xref_stream: v.xref_stream,
                objects: v.objects as usize,
            })
            .collect(),
        signatures,
    }
}

/// CheckCertificate report → proto.
pub fn certificate_to_pb(r: &CertificateReport) -> pb::CheckCertificateResponse {
    pb::CheckCertificateResponse {
        indication: to_pb(INDICATIONS, r.indication),
        sub_indication: r.sub_indication.map(|x| to_pb(SUBS, x)).unwrap_or(0),
        message: r.message.clone(),
        subject: Some(identity_to_pb(&r.subject)),
        path: r.path.iter().map(path_to_pb).collect(),
        revocation: r.revocation.iter().map(evidence_to_pb).collect(),
        warnings: r.warnings.clone(),
        reference_time: Some(reference_to_pb(&r.reference_time)),
    }
}

fn reference_to_pb(r: &ReferenceTime) -> pb::ReferenceTime {
    pb::ReferenceTime {
        time: Some(ts(r.time)),
        source: to_pb(TIME_SOURCES, r.source),
    }
}

fn identity_to_pb(i: &SignerIdentity) -> pb::SignerIdentity {
    pb::SignerIdentity {
        subject: i.subject.clone(),
        common_name: opt(&i.common_name),
        title: opt(&i.title),
        organisation: opt(&i.organisation),
        organisational_unit: opt(&i.organisational_unit),
        email: opt(&i.email),
        locality: opt(&i.locality),
        province: opt(&i.province),
        country: opt(&i.country),
        serial_number: i.serial_number.clone(),
        issuer: i.issuer.clone(),
        kind: i.kind.map(|k| to_pb(KINDS, k)).unwrap_or(0),
        fingerprint_sha256: i.fingerprint_sha256.clone(),
        uid: opt(&i.uid),
    }
}

fn path_to_pb(p: &PathEntry) -> pb::CertificateInfo {
    pb::CertificateInfo {
        subject: p.subject.clone(),
        issuer: p.issuer.clone(),
        serial_number: p.serial_number.clone(),
        not_before: Some(ts(p.not_before)),
        not_after: Some(ts(p.not_after)),
        fingerprint_sha256: p.fingerprint_sha256.clone(),
        signature_algorithm: p.signature_algorithm.clone(),
        trust_anchor: p.trust_anchor,
        source: match &p.source {
            CertSource::Signature => "signature".into(),
            CertSource::Configured => "configured".into(),
            CertSource::Aia(u) => format!("aia:{u}"),
            CertSource::Anchor => "anchor".into(),
        },
    }
}

fn evidence_to_pb(e: &RevocationEvidence) -> pb::RevocationEvidence {
    pb::RevocationEvidence {
        certificate_subject: e.certificate_subject.clone(),
        certificate_serial: e.certificate_serial.clone(),
        source: to_pb(REV_SOURCES, e.source),
        url: opt(&e.url),
        status: to_pb(STATUSES, e.status),
        this_update: e.this_update.map(ts),
        next_update: e.next_update.map(ts),
        produced_at: e.produced_at.map(ts),
        revocation_time: e.revocation_time.map(ts),
        revocation_reason: opt(&e.revocation_reason),
        from_cache: e.from_cache,
        stale: e.stale,
        detail: opt(&e.detail),
        origin: to_pb(EVIDENCE_ORIGINS, e.origin),
    }
}

/// Proto → report (for clients that print what a server said).
pub fn document_from_pb(r: &pb::VerifyCmsResponse) -> DocumentReport {
    DocumentReport::new(r.signatures.iter().map(signature_from_pb).collect())
}

fn signature_from_pb(s: &pb::SignatureReport) -> SignatureReport {
    SignatureReport {
        index: s.index,
        indication: from_pb(INDICATIONS, s.indication).unwrap_or(Indication::Indeterminate),
        sub_indication: from_pb(SUBS, s.sub_indication),
        message: s.message.clone(),
        signer: s.signer.as_ref().map(identity_from_pb),
        reference_time: s
            .reference_time
            .as_ref()
            .and_then(|r| {
                Some(ReferenceTime {
                    time: from_ts(r.time.as_ref()?)?,
                    source: from_pb(TIME_SOURCES, r.source)?,
                })
            })
            .unwrap_or(ReferenceTime {
                time: OffsetDateTime::UNIX_EPOCH,
                source: TimeSource::ValidationTime,
            }),
        claimed_signing_time: s.claimed_signing_time.as_ref().and_then(from_ts),
        path: s.path.iter().map(path_from_pb).collect(),
        revocation: s.revocation.iter().map(evidence_from_pb).collect(),
        warnings: s.warnings.clone(),
        digest_algorithm: some(s.digest_algorithm.clone()),
        signature_algorithm: some(s.signature_algorithm.clone()),
        revocation_policy: policy_from_pb(s.revocation_policy).unwrap_or_default(),
        signed_attributes: s.signed_attributes,
        ess_signing_certificate_v2: s.ess_signing_certificate_v2,
        detached: s.detached,
        commitment_type: some(s.commitment_type.clone()),
        signer_certificate_origin: from_pb(ORIGINS, s.signer_certificate_origin),
        timestamps: s.timestamps.iter().filter_map(timestamp_from_pb).collect(),
        poe: s.poe_time.as_ref().and_then(|t| {
            Some(ReferenceTime {
                time: from_ts(t)?,
                source: from_pb(TIME_SOURCES, s.poe_source)?,
            })
        }),
        level: from_pb(LEVELS, s.level).unwrap_or_default(),
    }
}

fn identity_from_pb(i: &pb::SignerIdentity) -> SignerIdentity {
    SignerIdentity {
        subject: i.subject.clone(),
        common_name: some(i.common_name.clone()),
        title: some(i.title.clone()),
        organisation: some(i.organisation.clone()),
        organisational_unit: some(i.organisational_unit.clone()),
        email: some(i.email.clone()),
        locality: some(i.locality.clone()),
        province: some(i.province.clone()),
        country: some(i.country.clone()),
        uid: some(i.uid.clone()),
        serial_number: i.serial_number.clone(),
        issuer: i.issuer.clone(),
        kind: from_pb(KINDS, i.kind),
        fingerprint_sha256: i.fingerprint_sha256.clone(),
    }
}

fn path_from_pb(p: &pb::CertificateInfo) -> PathEntry {
    let epoch = OffsetDateTime::UNIX_EPOCH;
    PathEntry {
        subject: p.subject.clone(),
        issuer: p.issuer.clone(),
        serial_number: p.serial_number.clone(),
        not_before: p.not_before.as_ref().and_then(from_ts).unwrap_or(epoch),
        not_after: p.not_after.as_ref().and_then(from_ts).unwrap_or(epoch),
        fingerprint_sha256: p.fingerprint_sha256.clone(),
        signature_algorithm: p.signature_algorithm.clone(),
        trust_anchor: p.trust_anchor,
        source: match p.source.as_str() {
            "anchor" => CertSource::Anchor,
            "configured" => CertSource::Configured,
            s => match s.strip_prefix("aia:") {
                Some(u) => CertSource::Aia(u.to_owned()),
                None => CertSource::Signature,
            },
        },
    }
}

fn evidence_from_pb(e: &pb::RevocationEvidence) -> RevocationEvidence {
    RevocationEvidence {
        certificate_subject: e.certificate_subject.clone(),
        certificate_serial: e.certificate_serial.clone(),
        source: from_pb(REV_SOURCES, e.source).unwrap_or(RevocationSource::None),
        url: some(e.url.clone()),
        status: from_pb(STATUSES, e.status).unwrap_or(CertStatus::Unknown),
        this_update: e.this_update.as_ref().and_then(from_ts),
        next_update: e.next_update.as_ref().and_then(from_ts),
        produced_at: e.produced_at.as_ref().and_then(from_ts),
        revocation_time: e.revocation_time.as_ref().and_then(from_ts),
        revocation_reason: some(e.revocation_reason.clone()),
        from_cache: e.from_cache,
        stale: e.stale,
        detail: some(e.detail.clone()),
        origin: from_pb(EVIDENCE_ORIGINS, e.origin).unwrap_or_default(),
    }
}

/// edXML report → proto.
pub fn edxml_to_pb(r: &EdxmlReport) -> pb::VerifyEdxmlResponse {
    let s = &r.summary;
    pb::VerifyEdxmlResponse {
        indication: to_pb(INDICATIONS, r.indication),
        summary: Some(pb::EdxmlSummary {
            kind: s.kind.clone(),
            from: s.from.clone(),
            from_name: opt(&s.from_name),
            to: s.to.clone(),
            document_id: s.document_id.clone(),
            code: opt(&s.code),
            subject: opt(&s.subject),
            status: opt(&s.status),
        }),
        signature: r.signature.as_ref().map(signature_to_pb),
        attachments: r
            .attachments
            .iter()
            .map(|a| pb::EdxmlAttachment {
                content_id: a.content_id.clone(),
                name: a.name.clone(),
                content_type: a.content_type.clone(),
                sniffed: a.sniffed.clone(),
                size: a.size as u64,
                sha256: a.sha256.clone(),
                pdf: a.pdf.as_ref().map(pdf_to_pb),
                cms: a.cms.as_ref().map(document_to_pb),
                error: opt(&a.error),
            })
            .collect(),
        warnings: r.warnings.clone(),
    }
}

/// Proto → edXML report (for clients that print what a server said).
pub fn edxml_from_pb(r: &pb::VerifyEdxmlResponse) -> EdxmlReport {
    let s = r.summary.clone().unwrap_or_default();
    EdxmlReport {
        indication: from_pb(INDICATIONS, r.indication).unwrap_or(Indication::Indeterminate),
        summary: EdxmlSummary {
            kind: s.kind,
            from: s.from,
            from_name: some(s.from_name),
            to: s.to,
            document_id: s.document_id,
            code: some(s.code),
            subject: some(s.subject),
            status: some(s.status),
        },
        signature: r.signature.as_ref().map(signature_from_pb),
        attachments: r
            .attachments
            .iter()
            .map(|a| AttachmentReport {
                content_id: a.content_id.clone(),
                name: a.name.clone(),
                content_type: a.content_type.clone(),
                sniffed: a.sniffed.clone(),
                size: usize::try_from(a.size).unwrap_or(usize::MAX),
                sha256: a.sha256.clone(),
                pdf: a.pdf.as_ref().map(pdf_from_pb),
                cms: a.cms.as_ref().map(document_from_pb),
                error: some(a.error.clone()),
            })
            .collect(),
        warnings: r.warnings.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_modification_kind_maps_both_ways() {
        for (a, b) in MODIFICATIONS {
            assert_eq!(from_pb(MODIFICATIONS, (*b).into()), Some(*a));
        }
    }

    #[test]
    fn every_sub_indication_maps_both_ways() {
        for (a, b) in SUBS {
            assert_eq!(from_pb(SUBS, (*b).into()), Some(*a));
            assert_eq!(to_pb(SUBS, *a), i32::from(*b));
        }
    }
}
