//! The reader: an envelope or a status message from the parsed tree (N6).
//!
//! It reads the *same* tree the signature is verified over and tells the verifier which
//! `Signature` element that is, so the header a clerk sees is the header that was signed.
//! What would let two readers see different documents is refused, not guessed: two
//! signatures, a signature anywhere but in `edXML:edXMLHeader`, a singleton written twice,
//! two attachments with one `ContentId`, a manifest entry without its attachment, text where
//! only elements belong, comments and processing instructions inside the root. Elements are
//! matched by expanded name (namespace and local name), never by prefix; order does not
//! matter where the meaning does not depend on it. Elements kyso does not read are reported
//! as warnings: the signature still covers them.

use roxmltree::{Document, ExpandedName, Node, NodeId};

use super::model::*;
use crate::attachment::{self, Attachment, declared_fits, sniff};
use crate::organ::OrganId;
use crate::status::{StatusCode, StatusMessage};
use crate::xml::parse::{Source, refuse_comments_and_pis_in_root};
use crate::xml::text::text_of;
use crate::{EdxmlError, EdxmlLimits, error::Result};

/// What the exchange carried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A document.
    Envelope(Box<Envelope>),
    /// A status message.
    Status(Box<StatusMessage>),
}

/// The message and where its signature is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    /// The envelope or the status message.
    pub message: Message,
    /// The only `{xmldsig}Signature` of the document, a child of `edXML:edXMLHeader`; `None`
    /// when the message is unsigned.
    pub signature: Option<NodeId>,
    /// A `Signature` written in the QCVN namespace instead of XML-DSig's (a known faulty
    /// builder). The envelope is read, but such a signature is never verified as XML-DSig:
    /// the verifier reports it INDETERMINATE/FORMAT_FAILURE, with the warning naming it.
    pub qcvn_signature: Option<NodeId>,
    /// What the reader noticed and did not refuse.
    pub warnings: Vec<String>,
}

impl Read {
    /// Whether there is a signature the verifier can check as XML-DSig.
    pub fn signature_verifiable(&self) -> bool {
        self.signature.is_some() && self.qcvn_signature.is_none()
    }
}

/// Normalises, parses and reads `bytes` in one go, for callers that do not verify the
/// signature (the fuzz targets, the round-trip tests): the node ids of [`Read`] then refer
/// to a tree that is gone, only whether they are `Some` still means something.
pub fn read_bytes(bytes: &[u8], limits: &EdxmlLimits) -> Result<Read> {
    let source = Source::new(bytes, limits)?;
    let doc = source.parse(limits)?;
    read(&doc, limits)
}

/// Reads an envelope or a status message from `doc` (see the module documentation).
pub fn read(doc: &Document<'_>, limits: &EdxmlLimits) -> Result<Read> {
    refuse_comments_and_pis_in_root(doc)?;
    let root = doc.root_element();
    if !is_qcvn(root, "edXML") {
        return Err(EdxmlError::Format(format!(
            "the root element is {}, not {{{QCVN_NS}}}edXML (N6)",
            describe(root.tag_name())
        )));
    }
    let mut ctx = Ctx {
        warnings: Vec::new(),
        skip: Vec::new(),
        limits,
    };
    let signature = only_one(root, DSIG_NS)?;
    let qcvn_signature = only_one(root, QCVN_NS)?;
    if signature.is_some() && qcvn_signature.is_some() {
        return Err(EdxmlError::Ambiguous(
            "both an XML-DSig Signature and a Signature in the QCVN namespace (N6)".into(),
        ));
    }

    let top = fields(
        &mut ctx,
        root,
        "edXML",
        &["edXMLEnvelope", "AttachmentEncoded"],
    )?;
    let envelope = top.one("edXMLEnvelope")?;
    let encoded = top.opt("AttachmentEncoded")?;
    let parts = fields(
        &mut ctx,
        envelope,
        "edXMLEnvelope",
        &["edXMLHeader", "edXMLBody"],
    )?;
    let header = parts.one("edXMLHeader")?;
    let body = parts.opt("edXMLBody")?;

    // Rule 3: the signature is a child of the header of the only envelope, ideally its last.
    for sig in [signature, qcvn_signature].into_iter().flatten() {
        if sig.parent() != Some(header) {
            let pos = doc.text_pos_at(sig.range().start);
            return Err(EdxmlError::Format(format!(
                "a Signature at line {}, column {} is not a child of edXML:edXMLHeader, where the exchange puts it (N6)",
                pos.row, pos.col
            )));
        }
        if header.last_element_child() != Some(sig) {
            ctx.warnings
                .push("the Signature is not the last element of edXML:edXMLHeader".into());
        }
        ctx.skip.push(sig.id());
    }
    if qcvn_signature.is_some() {
        ctx.warnings.push(format!(
            "the Signature is in the namespace {QCVN_NS}, not XML-DSig's: it cannot be verified (N6)"
        ));
    }

    let head = fields(
        &mut ctx,
        header,
        "edXMLHeader",
        &["MessageHeader", "TraceHeaderList"],
    )?;
    let message_header = head.one("MessageHeader")?;
    let is_status = message_header.children().any(|c| is_qcvn(c, "StatusCode"));
    let message = if is_status {
        if let Some(body) = body {
            return Err(format_at(
                doc,
                body,
                "a status message has no edXML:edXMLBody",
            ));
        }
        if let Some(encoded) = encoded {
            return Err(format_at(
                doc,
                encoded,
                "a status message has no attachments",
            ));
        }
        if head.opt("TraceHeaderList")?.is_some() {
            ctx.warnings
                .push("edXML:TraceHeaderList in a status message is not read".into());
        }
        Message::Status(Box::new(status_message(&mut ctx, message_header)?))
    } else {
        let header = message_header_of(&mut ctx, message_header)?;
        let trace = match head.opt("TraceHeaderList")? {
            Some(list) => trace_header_list(&mut ctx, list)?,
            None => TraceHeaderList::default(),
        };
        let manifest = match body {
            Some(body) => manifest(&mut ctx, body)?,
            None => Vec::new(),
        };
        let attachments = match encoded {
            Some(encoded) => attachments(&mut ctx, encoded)?,
            None => Vec::new(),
        };
        check_manifest(&mut ctx, &manifest, &attachments)?;
        Message::Envelope(Box::new(Envelope {
            header,
            trace,
            manifest,
            attachments,
        }))
    };
    Ok(Read {
        message,
        signature: signature.map(|s| s.id()),
        qcvn_signature: qcvn_signature.map(|s| s.id()),
        warnings: ctx.warnings,
    })
}

/// The one `Signature` in namespace `ns` in the whole document, if any; two or more are
/// refused (rule 2: which one would the verifier and the reader each take?).
fn only_one<'a, 'i>(root: Node<'a, 'i>, ns: &str) -> Result<Option<Node<'a, 'i>>> {
    let mut found = root.descendants().filter(|n| {
        n.is_element() && n.tag_name().namespace() == Some(ns) && n.tag_name().name() == "Signature"
    });
    let first = found.next();
    if found.next().is_some() {
        return Err(EdxmlError::Ambiguous(format!(
            "more than one Signature in the namespace {ns} (N6)"
        )));
    }
    Ok(first)
}

struct Ctx<'l> {
    warnings: Vec<String>,
    /// Elements read elsewhere (the signature), skipped by [`fields`].
    skip: Vec<NodeId>,
    limits: &'l EdxmlLimits,
}

/// The element children of one container, sorted by the QCVN local names it knows.
struct Fields<'a, 'i> {
    what: &'static str,
    node: Node<'a, 'i>,
    map: Vec<(&'static str, Vec<Node<'a, 'i>>)>,
}

/// Sorts `node`'s element children by `known` name; anything else is a warning, text other
/// than whitespace is refused (rule 11: a value lives in a leaf, not between elements).
fn fields<'a, 'i>(
    ctx: &mut Ctx<'_>,
    node: Node<'a, 'i>,
    what: &'static str,
    known: &[&'static str],
) -> Result<Fields<'a, 'i>> {
    let mut map: Vec<(&'static str, Vec<Node<'a, 'i>>)> =
        known.iter().map(|k| (*k, Vec::new())).collect();
    for child in node.children() {
        if child.is_text() {
            let text = child.text().unwrap_or_default();
            if !text.chars().all(|c| matches!(c, ' ' | '\t' | '\n' | '\r')) {
                return Err(format_at(
                    node.document(),
                    child,
                    &format!("text inside {what}, where only elements belong"),
                ));
            }
            continue;
        }
        if !child.is_element() || ctx.skip.contains(&child.id()) {
            continue;
        }
        let name = child.tag_name();
        if name.namespace() == Some(QCVN_NS)
            && let Some((_, slot)) = map.iter_mut().find(|(k, _)| *k == name.name())
        {
            slot.push(child);
            continue;
        }
        ctx.warnings.push(format!(
            "element {} in {what} is not read (the signature still covers it)",
            describe(name)
        ));
    }
    Ok(Fields { what, node, map })
}

impl<'a, 'i> Fields<'a, 'i> {
    fn all(&self, name: &str) -> &[Node<'a, 'i>] {
        self.map
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_slice())
            .unwrap_or_default()
    }

    /// At most once (rule 10).
    fn opt(&self, name: &str) -> Result<Option<Node<'a, 'i>>> {
        match self.all(name) {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            [_, second, ..] => {
                let pos = self.node.document().text_pos_at(second.range().start);
                Err(EdxmlError::Ambiguous(format!(
                    "{name} written twice in {} (again at line {}, column {}) (N6)",
                    self.what, pos.row, pos.col
                )))
            }
        }
    }

    /// Exactly once.
    fn one(&self, name: &str) -> Result<Node<'a, 'i>> {
        self.opt(name)?
            .ok_or_else(|| EdxmlError::Format(format!("{} has no {name} (N6)", self.what)))
    }

    fn text(&self, name: &str) -> Result<String> {
        text_of(self.one(name)?)
    }

    fn opt_text(&self, name: &str) -> Result<Option<String>> {
        self.opt(name)?.map(text_of).transpose()
    }

    fn organ_id(&self) -> Result<OrganId> {
        crate::organ::parse_organ_id(&self.text("OrganId")?)
    }
}

fn organization(ctx: &mut Ctx<'_>, node: Node<'_, '_>, what: &'static str) -> Result<Organization> {
    let f = fields(
        ctx,
        node,
        what,
        &[
            "OrganId",
            "OrganizationInCharge",
            "OrganName",
            "OrganAdd",
            "Email",
            "Telephone",
            "Fax",
            "Website",
        ],
    )?;
    Ok(Organization {
        organ_id: f.organ_id()?,
        organization_in_charge: f.opt_text("OrganizationInCharge")?,
        organ_name: f.opt_text("OrganName")?,
        organ_add: f.opt_text("OrganAdd")?,
        email: f.opt_text("Email")?,
        telephone: f.opt_text("Telephone")?,
        fax: f.opt_text("Fax")?,
        website: f.opt_text("Website")?,
    })
}

fn message_header_of(ctx: &mut Ctx<'_>, node: Node<'_, '_>) -> Result<MessageHeader> {
    let f = fields(
        ctx,
        node,
        "MessageHeader",
        &[
            "From",
            "To",
            "DocumentId",
            "Code",
            "PromulgationInfo",
            "DocumentType",
            "Subject",
            "Content",
            "SignerInfo",
            "DueDate",
            "OtherInfo",
            "ResponseFor",
            "SteeringType",
            "ToPlaces",
        ],
    )?;
    let from = organization(ctx, f.one("From")?, "From")?;
    let to = f
        .all("To")
        .iter()
        .map(|n| organization(ctx, *n, "To"))
        .collect::<Result<Vec<_>>>()?;
    if to.is_empty() {
        return Err(EdxmlError::Format("MessageHeader has no To (N6)".into()));
    }
    let code = fields(ctx, f.one("Code")?, "Code", &["CodeNumber", "CodeNotation"])?;
    let promulgation = fields(
        ctx,
        f.one("PromulgationInfo")?,
        "PromulgationInfo",
        &["Place", "PromulgationDate"],
    )?;
    let doc_type = fields(
        ctx,
        f.one("DocumentType")?,
        "DocumentType",
        &["Type", "TypeDetail", "TypeName"],
    )?;
    let signer_info = match f.opt("SignerInfo")? {
        Some(n) => {
            let s = fields(
                ctx,
                n,
                "SignerInfo",
                &["Competence", "Position", "FullName"],
            )?;
            Some(SignerInfo {
                competence: s.opt_text("Competence")?,
                position: s.opt_text("Position")?,
                full_name: s.opt_text("FullName")?,
            })
        }
        None => None,
    };
    let other_info = f
        .opt("OtherInfo")?
        .map(|n| other_info(ctx, n))
        .transpose()?;
    let response_for = f
        .all("ResponseFor")
        .iter()
        .map(|n| response_for(ctx, *n))
        .collect::<Result<Vec<_>>>()?;
    let to_places = match f.opt("ToPlaces")? {
        Some(n) => {
            let p = fields(ctx, n, "ToPlaces", &["Place"])?;
            p.all("Place")
                .iter()
                .map(|n| text_of(*n))
                .collect::<Result<_>>()?
        }
        None => Vec::new(),
    };
    Ok(MessageHeader {
        from,
        to,
        document_id: DocumentId::parse(&f.text("DocumentId")?)?,
        code: Code {
            code_number: code.text("CodeNumber")?,
            code_notation: code.text("CodeNotation")?,
        },
        promulgation_info: PromulgationInfo {
            place: promulgation.text("Place")?,
            promulgation_date: parse_date(&promulgation.text("PromulgationDate")?)?,
        },
        document_type: DocumentType {
            doc_type: doc_type.text("Type")?,
            type_detail: doc_type.opt_text("TypeDetail")?,
            type_name: doc_type.opt_text("TypeName")?,
        },
        subject: f.text("Subject")?,
        content: f.opt_text("Content")?,
        signer_info,
        due_date: f.opt_text("DueDate")?,
        other_info,
        response_for,
        steering_type: f.opt_text("SteeringType")?,
        to_places,
    })
}

fn other_info(ctx: &mut Ctx<'_>, node: Node<'_, '_>) -> Result<OtherInfo> {
    let f = fields(
        ctx,
        node,
        "OtherInfo",
        &[
            "Priority",
            "SphereOfPromulgation",
            "TyperNotation",
            "PromulgationAmount",
            "PageAmount",
            "Appendixes",
        ],
    )?;
    let appendixes = match f.opt("Appendixes")? {
        Some(n) => {
            let a = fields(ctx, n, "Appendixes", &["Appendix"])?;
            a.all("Appendix")
                .iter()
                .map(|n| text_of(*n))
                .collect::<Result<_>>()?
        }
        None => Vec::new(),
    };
    Ok(OtherInfo {
        priority: f.opt_text("Priority")?,
        sphere_of_promulgation: f.opt_text("SphereOfPromulgation")?,
        typer_notation: f.opt_text("TyperNotation")?,
        promulgation_amount: f.opt_text("PromulgationAmount")?,
        page_amount: f.opt_text("PageAmount")?,
        appendixes,
    })
}

fn response_for(ctx: &mut Ctx<'_>, node: Node<'_, '_>) -> Result<ResponseFor> {
    let f = fields(
        ctx,
        node,
        "ResponseFor",
        &["OrganId", "Code", "DocumentId", "PromulgationDate"],
    )?;
    Ok(ResponseFor {
        organ_id: f.organ_id()?,
        code: f.text("Code")?,
        document_id: f
            .opt_text("DocumentId")?
            .map(|t| DocumentId::parse(&t))
            .transpose()?,
        promulgation_date: f
            .opt_text("PromulgationDate")?
            .map(|t| parse_date(&t))
            .transpose()?,
    })
}

fn staff_info(ctx: &mut Ctx<'_>, node: Node<'_, '_>) -> Result<StaffInfo> {
    let f = fields(
        ctx,
        node,
        "StaffInfo",
        &["Department", "Staff", "Email", "Mobile"],
    )?;
    Ok(StaffInfo {
        department: f.opt_text("Department")?,
        staff: f.opt_text("Staff")?,
        email: f.opt_text("Email")?,
        mobile: f.opt_text("Mobile")?,
    })
}

fn trace_header_list(ctx: &mut Ctx<'_>, node: Node<'_, '_>) -> Result<TraceHeaderList> {
    let f = fields(ctx, node, "TraceHeaderList", &["TraceHeader", "Bussiness"])?;
    let trace_headers = f
        .all("TraceHeader")
        .iter()
        .map(|n| {
            let t = fields(ctx, *n, "TraceHeader", &["OrganId", "Timestamp"])?;
            Ok(TraceHeader {
                organ_id: t.organ_id()?,
                timestamp: parse_timestamp(&t.text("Timestamp")?)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let bussiness = match f.opt("Bussiness")? {
        Some(n) => {
            let b = fields(
                ctx,
                n,
                "Bussiness",
                &[
                    "BussinessDocType",
                    "BussinessDocReason",
                    "DocumentId",
                    "Paper",
                    "StaffInfo",
                ],
            )?;
            Some(Bussiness {
                doc_type: BussinessDocType::parse(&b.text("BussinessDocType")?)?,
                reason: b.opt_text("BussinessDocReason")?,
                document_id: b.opt_text("DocumentId")?,
                paper: b.opt_text("Paper")?,
                staff_info: b
                    .opt("StaffInfo")?
                    .map(|n| staff_info(ctx, n))
                    .transpose()?,
            })
        }
        None => None,
    };
    Ok(TraceHeaderList {
        trace_headers,
        bussiness,
    })
}

fn manifest(ctx: &mut Ctx<'_>, body: Node<'_, '_>) -> Result<Vec<ManifestReference>> {
    let f = fields(ctx, body, "edXMLBody", &["edXMLManifest"])?;
    let Some(manifest) = f.opt("edXMLManifest")? else {
        return Ok(Vec::new());
    };
    if let Some(version) = manifest.attribute("version")
        && version != "1.0"
    {
        ctx.warnings
            .push(format!("edXMLManifest version {version:?}, not 1.0"));
    }
    let m = fields(ctx, manifest, "edXMLManifest", &["Reference"])?;
    if m.all("Reference").len() > ctx.limits.max_attachments {
        return Err(EdxmlError::Limit {
            what: "manifest references",
            limit: ctx.limits.max_attachments,
        });
    }
    m.all("Reference")
        .iter()
        .map(|n| {
            let r = fields(
                ctx,
                *n,
                "Reference",
                &["ContentId", "ContentType", "Description", "AttachmentName"],
            )?;
            Ok(ManifestReference {
                content_id: r.text("ContentId")?,
                content_type: r.opt_text("ContentType")?,
                description: r.opt_text("Description")?,
                attachment_name: r.opt_text("AttachmentName")?,
            })
        })
        .collect()
}

fn attachments(ctx: &mut Ctx<'_>, encoded: Node<'_, '_>) -> Result<Vec<Attachment>> {
    let f = fields(ctx, encoded, "AttachmentEncoded", &["Attachment"])?;
    let nodes = f.all("Attachment");
    if nodes.len() > ctx.limits.max_attachments {
        return Err(EdxmlError::Limit {
            what: "attachments",
            limit: ctx.limits.max_attachments,
        });
    }
    let mut budget = ctx.limits.max_attachments_total_bytes;
    let mut out: Vec<Attachment> = Vec::with_capacity(nodes.len());
    for node in nodes {
        let a = fields(
            ctx,
            *node,
            "Attachment",
            &[
                "ContentId",
                "AttachmentName",
                "Description",
                "ContentType",
                "ContentTransferEncoded",
            ],
        )?;
        let attachment = Attachment {
            content_id: a.text("ContentId")?,
            attachment_name: a.text("AttachmentName")?,
            description: a.opt_text("Description")?,
            content_type: a.text("ContentType")?,
            data: attachment::decode(a.one("ContentTransferEncoded")?, ctx.limits, &mut budget)?,
        };
        if out.iter().any(|o| o.content_id == attachment.content_id) {
            return Err(EdxmlError::Ambiguous(format!(
                "two attachments with ContentId {:?} (N6)",
                attachment.content_id
            )));
        }
        if let Some(warning) = attachment.type_mismatch() {
            ctx.warnings.push(warning);
        }
        out.push(attachment);
    }
    Ok(out)
}

/// Every manifest entry names exactly one attachment (rule 10); unlisted attachments and
/// declarations that disagree with the bytes are warnings.
fn check_manifest(
    ctx: &mut Ctx<'_>,
    manifest: &[ManifestReference],
    attachments: &[Attachment],
) -> Result<()> {
    for (i, entry) in manifest.iter().enumerate() {
        if manifest[..i]
            .iter()
            .any(|e| e.content_id == entry.content_id)
        {
            return Err(EdxmlError::Ambiguous(format!(
                "two manifest entries for ContentId {:?} (N6)",
                entry.content_id
            )));
        }
        let Some(attachment) = attachments
            .iter()
            .find(|a| a.content_id == entry.content_id)
        else {
            return Err(EdxmlError::Format(format!(
                "the manifest names ContentId {:?} and no attachment has it (N6)",
                entry.content_id
            )));
        };
        if let Some(declared) = &entry.content_type {
            let sniffed = sniff(&attachment.data);
            if !declared_fits(declared, sniffed) {
                ctx.warnings.push(format!(
                    "the manifest declares {:?} as {declared:?} but its content is {}",
                    entry.content_id,
                    sniffed.describe()
                ));
            }
        }
    }
    for attachment in attachments {
        if !manifest
            .iter()
            .any(|e| e.content_id == attachment.content_id)
        {
            ctx.warnings.push(format!(
                "attachment {:?} is not in the manifest",
                attachment.content_id
            ));
        }
    }
    Ok(())
}

fn status_message(ctx: &mut Ctx<'_>, node: Node<'_, '_>) -> Result<StatusMessage> {
    let f = fields(
        ctx,
        node,
        "MessageHeader",
        &[
            "From",
            "ResponseFor",
            "StaffInfo",
            "StatusCode",
            "Description",
            "Timestamp",
        ],
    )?;
    Ok(StatusMessage {
        from: organization(ctx, f.one("From")?, "From")?,
        response_for: response_for(ctx, f.one("ResponseFor")?)?,
        staff_info: f
            .opt("StaffInfo")?
            .map(|n| staff_info(ctx, n))
            .transpose()?,
        status_code: StatusCode::parse(&f.text("StatusCode")?)?,
        description: f.opt_text("Description")?,
        timestamp: parse_timestamp(&f.text("Timestamp")?)?,
    })
}

fn is_qcvn(node: Node<'_, '_>, name: &str) -> bool {
    node.is_element()
        && node.tag_name().namespace() == Some(QCVN_NS)
        && node.tag_name().name() == name
}

/// `{namespace}local`, bounded: names come from the sender.
fn describe(name: ExpandedName<'_, '_>) -> String {
    let local: String = name.name().chars().take(60).collect();
    match name.namespace() {
        Some(ns) => format!("{{{}}}{local}", ns.chars().take(80).collect::<String>()),
        None => local,
    }
}

fn format_at(doc: &Document<'_>, node: Node<'_, '_>, what: &str) -> EdxmlError {
    let pos = doc.text_pos_at(node.range().start);
    EdxmlError::Format(format!(
        "{what} (line {}, column {}) (N6)",
        pos.row, pos.col
    ))
}
