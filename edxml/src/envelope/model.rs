//! The typed edXML envelope: what the reader returns and the writer takes (N6).
//!
//! Every value is the element's text as written (joined text children), except the few the
//! exchange gives a meaning to, which are parsed here so a malformed one is refused at the
//! door: organisation codes, the document identifier, dates and timestamps.

use std::fmt;

use time::{Date, Month, PrimitiveDateTime, Time};

use crate::attachment::Attachment;
use crate::organ::OrganId;
use crate::{EdxmlError, error::Result};

/// The QCVN 102:2016 namespace: the root, the envelope and every header element.
pub const QCVN_NS: &str = "http://www.mic.gov.vn/TBT/QCVN_102_2016";

/// The XML signature namespace.
pub const DSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";

/// A document on the exchange: its header, trace, manifest and attachments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// `edXML:MessageHeader`.
    pub header: MessageHeader,
    /// `edXML:TraceHeaderList` (empty when absent).
    pub trace: TraceHeaderList,
    /// `edXML:edXMLManifest/Reference`, in document order.
    pub manifest: Vec<ManifestReference>,
    /// `AttachmentEncoded/Attachment`, in document order.
    pub attachments: Vec<Attachment>,
}

/// `edXML:MessageHeader` of an envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageHeader {
    /// The sender.
    pub from: Organization,
    /// The recipients (at least one).
    pub to: Vec<Organization>,
    /// `DocumentId`: `OrganId,yyyy/MM/dd,Number/Notation`.
    pub document_id: DocumentId,
    /// Number and symbol.
    pub code: Code,
    /// Place and date of promulgation.
    pub promulgation_info: PromulgationInfo,
    /// The kind of document.
    pub document_type: DocumentType,
    /// `Subject` (trích yếu).
    pub subject: String,
    /// `Content`.
    pub content: Option<String>,
    /// Who signed the document.
    pub signer_info: Option<SignerInfo>,
    /// `DueDate`, as written (builders disagree on its form).
    pub due_date: Option<String>,
    /// `OtherInfo`.
    pub other_info: Option<OtherInfo>,
    /// `ResponseFor`: the documents this one answers.
    pub response_for: Vec<ResponseFor>,
    /// `SteeringType`.
    pub steering_type: Option<String>,
    /// `ToPlaces/Place` (empty when absent).
    pub to_places: Vec<String>,
}

/// `From` / `To`: an organisation and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organization {
    /// `OrganId`, the organisation code.
    pub organ_id: OrganId,
    /// `OrganizationInCharge`.
    pub organization_in_charge: Option<String>,
    /// `OrganName`.
    pub organ_name: Option<String>,
    /// `OrganAdd` (address).
    pub organ_add: Option<String>,
    /// `Email`.
    pub email: Option<String>,
    /// `Telephone`.
    pub telephone: Option<String>,
    /// `Fax`.
    pub fax: Option<String>,
    /// `Website`.
    pub website: Option<String>,
}

impl Organization {
    /// An organisation known by its code only.
    pub fn new(organ_id: OrganId) -> Self {
        Self {
            organ_id,
            organization_in_charge: None,
            organ_name: None,
            organ_add: None,
            email: None,
            telephone: None,
            fax: None,
            website: None,
        }
    }
}

/// `DocumentId`: `OrganId,yyyy/MM/dd,Number/Notation` (`000.00.00.G22,2015/09/30,7816/VPCP-TTĐT`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentId {
    /// The issuing organisation.
    pub organ_id: OrganId,
    /// The date of issue.
    pub date: Date,
    /// The number (`7816`): never contains `/`.
    pub number: String,
    /// The notation (`VPCP-TTĐT`).
    pub notation: String,
}

impl DocumentId {
    /// Reads `OrganId,yyyy/MM/dd,Number/Notation`; the number ends at the first `/`.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| {
            let shown: String = text.chars().take(80).collect();
            EdxmlError::Format(format!("DocumentId {shown:?}: {why} (N6)"))
        };
        let mut parts = text.splitn(3, ',');
        let (Some(organ), Some(date), Some(rest)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("not OrganId,yyyy/MM/dd,Number/Notation"));
        };
        let (number, notation) = rest
            .split_once('/')
            .ok_or_else(|| bad("no '/' between the number and the notation"))?;
        if number.is_empty() || notation.is_empty() {
            return Err(bad("an empty number or notation"));
        }
        Ok(Self {
            organ_id: crate::organ::parse_organ_id(organ)?,
            date: parse_date(date)?,
            number: number.to_owned(),
            notation: notation.to_owned(),
        })
    }

    /// Whether [`DocumentId::parse`] would read back exactly this value.
    pub(crate) fn check_writable(&self) -> Result<()> {
        if self.number.is_empty() || self.notation.is_empty() || self.number.contains('/') {
            return Err(EdxmlError::Format(format!(
                "DocumentId number {:?} / notation {:?}: both non-empty, no '/' in the number",
                self.number, self.notation
            )));
        }
        Ok(())
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{},{},{}/{}",
            self.organ_id,
            DateText(self.date),
            self.number,
            self.notation
        )
    }
}

/// `Code`: the number and symbol (`1234`, `QĐ-UBND`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Code {
    /// `CodeNumber`.
    pub code_number: String,
    /// `CodeNotation`.
    pub code_notation: String,
}

/// `PromulgationInfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromulgationInfo {
    /// `Place`.
    pub place: String,
    /// `PromulgationDate` (`yyyy/MM/dd`).
    pub promulgation_date: Date,
}

/// `DocumentType`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentType {
    /// `Type`.
    pub doc_type: String,
    /// `TypeDetail`.
    pub type_detail: Option<String>,
    /// `TypeName`.
    pub type_name: Option<String>,
}

/// `SignerInfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignerInfo {
    /// `Competence` (`TM. Ủy ban nhân dân`).
    pub competence: Option<String>,
    /// `Position`.
    pub position: Option<String>,
    /// `FullName`.
    pub full_name: Option<String>,
}

/// `OtherInfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OtherInfo {
    /// `Priority`.
    pub priority: Option<String>,
    /// `SphereOfPromulgation`.
    pub sphere_of_promulgation: Option<String>,
    /// `TyperNotation`.
    pub typer_notation: Option<String>,
    /// `PromulgationAmount`.
    pub promulgation_amount: Option<String>,
    /// `PageAmount`.
    pub page_amount: Option<String>,
    /// `Appendixes/Appendix` (empty when absent).
    pub appendixes: Vec<String>,
}

/// `ResponseFor`: the document a message answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseFor {
    /// `OrganId` of the answered document's sender.
    pub organ_id: OrganId,
    /// `Code` of the answered document, as written (`7816/VPCP-TTĐT`).
    pub code: String,
    /// `DocumentId` of the answered document.
    pub document_id: Option<DocumentId>,
    /// `PromulgationDate` of the answered document.
    pub promulgation_date: Option<Date>,
}

/// `StaffInfo`: the clerk behind a message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaffInfo {
    /// `Department`.
    pub department: Option<String>,
    /// `Staff`.
    pub staff: Option<String>,
    /// `Email`.
    pub email: Option<String>,
    /// `Mobile`.
    pub mobile: Option<String>,
}

/// `edXML:TraceHeaderList`: where the document has been, and why it travels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceHeaderList {
    /// `TraceHeader`, in document order.
    pub trace_headers: Vec<TraceHeader>,
    /// `Bussiness` (spelled so by the standard).
    pub bussiness: Option<Bussiness>,
}

/// `TraceHeader`: one system the document passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceHeader {
    /// `OrganId`.
    pub organ_id: OrganId,
    /// `Timestamp` (`yyyy/MM/dd HH:mm:ss`).
    pub timestamp: PrimitiveDateTime,
}

/// `Bussiness`: why the document travels (new, revocation, update, replacement).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bussiness {
    /// `BussinessDocType`.
    pub doc_type: BussinessDocType,
    /// `BussinessDocReason`.
    pub reason: Option<String>,
    /// `DocumentId`, as written (builders put other forms than the header's here).
    pub document_id: Option<String>,
    /// `Paper`.
    pub paper: Option<String>,
    /// `StaffInfo`.
    pub staff_info: Option<StaffInfo>,
}

/// `BussinessDocType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BussinessDocType {
    /// 0: a new document.
    New,
    /// 1: revocation of a document sent before.
    Revocation,
    /// 2: an update of a document sent before.
    Update,
    /// 3: a replacement of a document sent before.
    Replacement,
}

impl BussinessDocType {
    /// Reads `0`–`3`; anything else is refused (N6).
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "0" => Ok(Self::New),
            "1" => Ok(Self::Revocation),
            "2" => Ok(Self::Update),
            "3" => Ok(Self::Replacement),
            _ => Err(EdxmlError::Format(format!(
                "BussinessDocType {:?}: not 0, 1, 2 or 3 (N6)",
                text.chars().take(20).collect::<String>()
            ))),
        }
    }

    /// The digit written.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "0",
            Self::Revocation => "1",
            Self::Update => "2",
            Self::Replacement => "3",
        }
    }
}

/// `edXML:edXMLManifest/Reference`: one attachment as the body announces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestReference {
    /// `ContentId` (`cid:1`): must name exactly one attachment.
    pub content_id: String,
    /// `ContentType`, as declared (may differ from the attachment's).
    pub content_type: Option<String>,
    /// `Description`.
    pub description: Option<String>,
    /// `AttachmentName`.
    pub attachment_name: Option<String>,
}

/// `yyyy/MM/dd`, digits exactly.
pub fn parse_date(text: &str) -> Result<Date> {
    let bad = || {
        EdxmlError::Format(format!(
            "date {:?}: not yyyy/MM/dd (N6)",
            text.chars().take(30).collect::<String>()
        ))
    };
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'/' || b[7] != b'/' {
        return Err(bad());
    }
    let year = number(&text[0..4]).ok_or_else(bad)?;
    let month = number(&text[5..7]).ok_or_else(bad)?;
    let day = number(&text[8..10]).ok_or_else(bad)?;
    let month = Month::try_from(month as u8).map_err(|_| bad())?;
    Date::from_calendar_date(year as i32, month, day as u8).map_err(|_| bad())
}

/// `yyyy/MM/dd HH:mm:ss`, digits exactly.
pub fn parse_timestamp(text: &str) -> Result<PrimitiveDateTime> {
    let bad = || {
        EdxmlError::Format(format!(
            "timestamp {:?}: not yyyy/MM/dd HH:mm:ss (N6)",
            text.chars().take(30).collect::<String>()
        ))
    };
    let (date, time) = text.split_once(' ').ok_or_else(bad)?;
    let date = parse_date(date)?;
    let b = time.as_bytes();
    if b.len() != 8 || b[2] != b':' || b[5] != b':' {
        return Err(bad());
    }
    let h = number(&time[0..2]).ok_or_else(bad)?;
    let m = number(&time[3..5]).ok_or_else(bad)?;
    let s = number(&time[6..8]).ok_or_else(bad)?;
    let time = Time::from_hms(h as u8, m as u8, s as u8).map_err(|_| bad())?;
    Ok(PrimitiveDateTime::new(date, time))
}

/// ASCII digits only (no sign, no space), as a number.
fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A date written `yyyy/MM/dd`.
#[derive(Clone, Copy, Debug)]
pub struct DateText(pub Date);

impl fmt::Display for DateText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}/{:02}/{:02}",
            self.0.year(),
            u8::from(self.0.month()),
            self.0.day()
        )
    }
}

/// A timestamp written `yyyy/MM/dd HH:mm:ss`.
#[derive(Clone, Copy, Debug)]
pub struct TimestampText(pub PrimitiveDateTime);

impl fmt::Display for TimestampText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:02}:{:02}:{:02}",
            DateText(self.0.date()),
            self.0.hour(),
            self.0.minute(),
            self.0.second()
        )
    }
}

/// Refuses a year the four-digit form cannot hold (the writer's check).
pub(crate) fn check_date(date: Date) -> Result<()> {
    if (0..=9999).contains(&date.year()) {
        Ok(())
    } else {
        Err(EdxmlError::Format(format!(
            "year {} does not fit yyyy",
            date.year()
        )))
    }
}
