//! The legal appearances (DOMAIN.md P1-P4, D3, D6): where the widget goes
//! and what its normal appearance (`/AP /N`) draws.

use lopdf::ObjectId;
use time::OffsetDateTime;

use super::font::{EmbeddedFont, Shaped};
use super::serialize::{flate_stream, real, rect as rect_str};
use super::writer::Objects;
use super::{
    FieldInfo, PadesError, PadesRequest, Placement, Profile, Source, VN_OFFSET, marker, png,
};

/// The text the appearances show.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StampText {
    /// COPY: the form of copy ("SAO Y", "SAO LỤC", "TRÍCH SAO"); default "SAO Y" (P3).
    pub copy_form: Option<String>,
    /// COPY, SCANNED_ISSUE, RECEIVED: the organisation's name; default the
    /// certificate's O, else its CN.
    pub organisation: Option<String>,
    /// APPENDIX (required, P4), ISSUE: the document's number and symbol.
    pub number_and_symbol: Option<String>,
    /// ISSUE: the issue date (W2), for `/Reason`.
    pub issue_date: Option<time::Date>,
    /// RECEIVED: the incoming number (D6, W3; required).
    pub incoming_number: Option<String>,
}

/// P3, P4: 10 pt, black, upright.
const TEXT_SIZE: f64 = 10.0;
const LEADING: f64 = 12.0;
const PADDING: f64 = 3.0;
/// Distance of the P3/P4 text from the page's right edge (left edge for D6).
const EDGE: f64 = 15.0;
/// Distance of the P3/P4 text and the D6 stamp from the page's top edge. Smaller than
/// [`EDGE`] so that three lines stay inside the page's top margin: with 15 pt the last line
/// came down to 51 pt from the top and, rendered, overprinted the national motto and the
/// issuing body's name of a decision whose header starts 50 pt down (the top margin is
/// 20-25 mm by Decree 30/2020, and headers often sit higher), so the copy text and the
/// header were both unreadable. 6 pt (2 mm) puts the third baseline 42 pt (15 mm) down.
const TOP_EDGE: f64 = 6.0;
/// D6: space between the stamp's frame and its text; 3 pt (not 6) keeps the frame above a
/// header that starts 50 pt down, as [`TOP_EDGE`] does for the text.
const STAMP_PADDING: f64 = 3.0;
/// P2 "real size": a common diameter of an office seal.
const DEFAULT_SEAL_MM: f64 = 36.0;
/// APPROVAL at a marker: the box the signature image is fitted into.
const MARKER_BOX: (f64, f64) = (150.0, 60.0);

/// Where the widget goes.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub page_id: ObjectId,
    pub anchor: Anchor,
    /// An empty signature field of the document to fill.
    pub existing: Option<FieldInfo>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Anchor {
    /// This rectangle.
    Fixed([f64; 4]),
    /// A text box at the top right of this page box (P3, P4).
    TopRight([f64; 4]),
    /// A stamp box at the top left of this page box (D6).
    TopLeft([f64; 4]),
    /// No appearance (a comment).
    Invisible,
}

fn mm(v: f64) -> f64 {
    v * 72.0 / 25.4
}

fn on_page(src: &Source<'_>, n: u32, rect: [f64; 4]) -> Result<Target, PadesError> {
    let page_id = src.page(n)?;
    let [x0, y0, x1, y1] = rect;
    if !(x0.is_finite() && y0.is_finite() && x1.is_finite() && y1.is_finite())
        || x1 <= x0
        || y1 <= y0
    {
        return Err(PadesError::Placement(format!(
            "the rectangle {rect:?} must be [x0 y0 x1 y1] with x0 < x1 and y0 < y1"
        )));
    }
    Ok(Target {
        page_id,
        anchor: Anchor::Fixed(rect),
        existing: None,
    })
}

fn first_page_box(src: &Source<'_>) -> Result<(ObjectId, [f64; 4]), PadesError> {
    let page_id = src.page(1)?;
    if src.rotation(page_id)? != 0 {
        return Err(PadesError::Placement(
            "page 1 is turned by /Rotate: give the rectangle explicitly".into(),
        ));
    }
    Ok((page_id, src.page_box(page_id)?))
}

/// Decides where the widget goes (P1-P4, D6).
pub(crate) fn place(
    src: &Source<'_>,
    fields: &[FieldInfo],
    req: &PadesRequest<'_>,
) -> Result<Target, PadesError> {
    match (req.profile, &req.placement) {
        (Profile::Copy | Profile::Appendix, Placement::Auto) => {
            let (page_id, b) = first_page_box(src)?;
            Ok(Target {
                page_id,
                anchor: Anchor::TopRight(b),
                existing: None,
            })
        }
        (Profile::Copy | Profile::Appendix, _) => Err(PadesError::Placement(
            "COPY and APPENDIX signatures go at the top right of page 1 (P3, P4): \
             leave the placement automatic"
                .into(),
        )),
        (Profile::ScannedIssue, Placement::Auto) => {
            let (page_id, b) = first_page_box(src)?;
            Ok(Target {
                page_id,
                anchor: Anchor::TopRight(b),
                existing: None,
            })
        }
        (Profile::Received, Placement::Auto) => {
            let (page_id, b) = first_page_box(src)?;
            Ok(Target {
                page_id,
                anchor: Anchor::TopLeft(b),
                existing: None,
            })
        }
        (Profile::Comment, Placement::Auto) => Ok(Target {
            page_id: src.page(1)?,
            anchor: Anchor::Invisible,
            existing: None,
        }),
        (Profile::Issue, Placement::Auto | Placement::Field(_)) => {
            let wanted = match &req.placement {
                Placement::Field(n) => Some(n.as_str()),
                _ => None,
            };
            let approval = find_approval(fields, wanted)?;
            let (Some(a), Some(page_id)) = (approval.rect, approval.page) else {
                return Err(PadesError::NoApproval(format!(
                    "the field {:?} has no visible widget on a page",
                    approval.name
                )));
            };
            // P2: the seal, at its real size, covers about the left third
            // of the personal signature, vertically centred on it.
            let d = mm(req.seal_diameter_mm.unwrap_or(DEFAULT_SEAL_MM));
            if !(mm(10.0)..=mm(80.0)).contains(&d) {
                return Err(PadesError::Placement(format!(
                    "a seal of {} mm is not a real seal size (10 to 80 mm)",
                    real(d * 25.4 / 72.0)
                )));
            }
            let right = a[0] + (a[2] - a[0]) / 3.0;
            let cy = (a[1] + a[3]) / 2.0;
            Ok(Target {
                page_id,
                anchor: Anchor::Fixed([right - d, cy - d / 2.0, right, cy + d / 2.0]),
                existing: None,
            })
        }
        (Profile::Approval, Placement::Auto) => {
            let empty: Vec<&FieldInfo> = fields.iter().filter(|f| f.is_sig && !f.signed).collect();
            match empty.as_slice() {
                [f] => fill(src, f),
                [] => Err(PadesError::Placement(
                    "APPROVAL needs a place between the title and the name (P1): \
                     give a rectangle, an empty signature field or a marker"
                        .into(),
                )),
                _ => Err(PadesError::Placement(
                    "the document has several empty signature fields: name one".into(),
                )),
            }
        }
        (Profile::Approval, Placement::Field(name)) => {
            let f = fields
                .iter()
                .find(|f| &f.name == name)
                .ok_or_else(|| PadesError::Field(format!("no field named {name:?}")))?;
            if !f.is_sig {
                return Err(PadesError::Field(format!(
                    "{name:?} is not a signature field"
                )));
            }
            if f.signed {
                return Err(PadesError::Field(format!("{name:?} is already signed")));
            }
            fill(src, f)
        }
        (_, Placement::Field(name)) => Err(PadesError::Placement(format!(
            "only APPROVAL fills an existing field ({name:?}); ISSUE names the APPROVAL field"
        ))),
        (
            Profile::Approval | Profile::Received | Profile::ScannedIssue,
            Placement::Marker { text, page },
        ) => {
            let found = marker::find(src, text, *page)?;
            let (w, h) = MARKER_BOX;
            let rect = [
                found.x - w / 2.0,
                found.y - h / 2.0,
                found.x + w / 2.0,
                found.y + h / 2.0,
            ];
            let mut t = on_page(src, found.page, rect)?;
            t.page_id = src.page(found.page)?;
            Ok(t)
        }
        (_, Placement::Marker { .. }) => Err(PadesError::Placement(
            "a marker places APPROVAL, SCANNED_ISSUE or RECEIVED signatures only".into(),
        )),
        (_, Placement::Rect { page, rect }) => on_page(src, *page, *rect),
    }
}

fn fill(src: &Source<'_>, f: &FieldInfo) -> Result<Target, PadesError> {
    let rect = f
        .rect
        .filter(|r| r[2] > r[0] && r[3] > r[1])
        .ok_or_else(|| PadesError::Field(format!("{:?} has no visible rectangle", f.name)))?;
    let page_id = match f.page {
        Some(p) => p,
        None => {
            return Err(PadesError::Field(format!(
                "{:?} is on no page (no /P, not in any /Annots)",
                f.name
            )));
        }
    };
    let _ = src;
    Ok(Target {
        page_id,
        anchor: Anchor::Fixed(rect),
        existing: Some(f.clone()),
    })
}

/// The signed APPROVAL field an ISSUE seals over (naming convention in the
/// module documentation).
fn find_approval<'f>(
    fields: &'f [FieldInfo],
    wanted: Option<&str>,
) -> Result<&'f FieldInfo, PadesError> {
    let signed = |f: &&FieldInfo| f.is_sig && f.signed;
    if let Some(name) = wanted {
        return fields
            .iter()
            .filter(signed)
            .find(|f| f.name == name)
            .ok_or_else(|| PadesError::NoApproval(format!("no signed field named {name:?}")));
    }
    if let Some(f) = fields
        .iter()
        .filter(signed)
        .rfind(|f| f.name.starts_with("kyso_approval"))
    {
        return Ok(f);
    }
    fields
        .iter()
        .filter(signed)
        .rfind(|f| f.rect.is_some_and(|r| r[2] > r[0] && r[3] > r[1]))
        .ok_or_else(|| {
            PadesError::NoApproval("the PDF has no signed, visible signature field".into())
        })
}

/// P3's time: `2025-03-14T09:30:00+07:00`.
pub(crate) fn iso_local(t: OffsetDateTime) -> Result<String, PadesError> {
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
    );
    t.to_offset(VN_OFFSET)
        .format(&fmt)
        .map_err(|e| PadesError::Encoding(format!("time: {e}")))
}

struct Line {
    text: String,
    bold: bool,
}

fn line(text: impl Into<String>) -> Line {
    Line {
        text: text.into(),
        bold: false,
    }
}

/// Draws the appearance; returns the form XObject and the widget rectangle.
pub(crate) fn draw(
    objs: &mut Objects,
    req: &PadesRequest<'_>,
    target: &Target,
    cert_org: Option<&str>,
) -> Result<(u32, [f64; 4]), PadesError> {
    let org = || {
        req.text
            .organisation
            .clone()
            .or_else(|| cert_org.map(str::to_owned))
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| PadesError::Text("the organisation's name is needed".into()))
    };
    match req.profile {
        Profile::Approval => {
            let png = req.image.unwrap_or(super::samples::SIGNATURE_PNG);
            image_appearance(objs, png, fixed(target)?)
        }
        Profile::Issue => {
            let png = req.image.unwrap_or(super::samples::SEAL_PNG);
            image_appearance(objs, png, fixed(target)?)
        }
        Profile::Copy => {
            let lines = vec![
                line(req.text.copy_form.clone().unwrap_or_else(|| "SAO Y".into())),
                line(org()?),
                line(iso_local(req.signing_time)?),
            ];
            text_appearance(objs, &lines, target, Style::Plain)
        }
        Profile::Appendix => {
            let number = req
                .text
                .number_and_symbol
                .clone()
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| {
                    PadesError::Text("APPENDIX shows the document's number and symbol (P4)".into())
                })?;
            let lines = vec![line(number), line(iso_local(req.signing_time)?)];
            text_appearance(objs, &lines, target, Style::Plain)
        }
        Profile::ScannedIssue => {
            let lines = vec![line(org()?), line(iso_local(req.signing_time)?)];
            text_appearance(objs, &lines, target, Style::Plain)
        }
        Profile::Received => {
            let incoming = req
                .text
                .incoming_number
                .clone()
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| {
                    PadesError::Text("RECEIVED shows the incoming number (D6)".into())
                })?;
            let t = req.signing_time.to_offset(VN_OFFSET);
            let date = t
                .format(time::macros::format_description!("[day]/[month]/[year]"))
                .map_err(|e| PadesError::Encoding(e.to_string()))?;
            let hour = t
                .format(time::macros::format_description!("[hour]:[minute]"))
                .map_err(|e| PadesError::Encoding(e.to_string()))?;
            let lines = vec![
                Line {
                    text: org()?,
                    bold: true,
                },
                Line {
                    text: format!("ĐẾN  Số: {incoming}"),
                    bold: true,
                },
                line(format!("Ngày: {date}  Giờ: {hour}")),
            ];
            text_appearance(objs, &lines, target, Style::Stamp)
        }
        Profile::Comment => {
            let form = objs.add(flate_stream(
                " /Type /XObject /Subtype /Form /BBox [0 0 0 0]",
                b"",
            )?);
            Ok((form, [0.0; 4]))
        }
    }
}

fn fixed(target: &Target) -> Result<[f64; 4], PadesError> {
    match target.anchor {
        Anchor::Fixed(r) => Ok(r),
        _ => Err(PadesError::Placement("an image needs a rectangle".into())),
    }
}

/// The image fitted into the rectangle, aspect kept, centred (P1, P2).
fn image_appearance(
    objs: &mut Objects,
    png_bytes: &[u8],
    rect: [f64; 4],
) -> Result<(u32, [f64; 4]), PadesError> {
    let img = png::decode(png_bytes)?;
    let smask = match &img.alpha {
        Some(a) => Some(objs.add(flate_stream(
            &format!(
                " /Type /XObject /Subtype /Image /Width {} /Height {} /ColorSpace /DeviceGray /BitsPerComponent 8",
                img.width, img.height
            ),
            a,
        )?)),
        None => None,
    };
    let image = objs.add(flate_stream(
        &format!(
            " /Type /XObject /Subtype /Image /Width {} /Height {} /ColorSpace /DeviceRGB /BitsPerComponent 8{}",
            img.width,
            img.height,
            smask.map(|s| format!(" /SMask {s} 0 R")).unwrap_or_default()
        ),
        &img.rgb,
    )?);
    let (w, h) = (rect[2] - rect[0], rect[3] - rect[1]);
    let scale = (w / f64::from(img.width)).min(h / f64::from(img.height));
    let (iw, ih) = (f64::from(img.width) * scale, f64::from(img.height) * scale);
    let (dx, dy) = ((w - iw) / 2.0, (h - ih) / 2.0);
    let content = format!(
        "q {} 0 0 {} {} {} cm /Im0 Do Q",
        real(iw),
        real(ih),
        real(dx),
        real(dy)
    );
    let form = objs.add(flate_stream(
        &format!(
            " /Type /XObject /Subtype /Form /BBox [0 0 {} {}] /Resources <</XObject <</Im0 {image} 0 R>>>>",
            real(w),
            real(h)
        ),
        content.as_bytes(),
    )?);
    Ok((form, rect))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    /// P3, P4: black text, left aligned, no frame.
    Plain,
    /// D6: a red framed stamp, lines centred.
    Stamp,
}

fn text_appearance(
    objs: &mut Objects,
    lines: &[Line],
    target: &Target,
    style: Style,
) -> Result<(u32, [f64; 4]), PadesError> {
    let mut regular = EmbeddedFont::regular()?;
    let mut bold = EmbeddedFont::bold()?;
    let mut shaped: Vec<(Shaped, bool)> = Vec::with_capacity(lines.len());
    for l in lines {
        let s = if l.bold {
            bold.shape(&l.text, TEXT_SIZE)?
        } else {
            regular.shape(&l.text, TEXT_SIZE)?
        };
        shaped.push((s, l.bold));
    }
    let text_w = shaped.iter().map(|(s, _)| s.width).fold(0.0, f64::max);
    let pad = if style == Style::Stamp {
        STAMP_PADDING
    } else {
        PADDING
    };
    let w = text_w + 2.0 * pad;
    let h = LEADING * lines.len() as f64 + 2.0 * pad;
    let rect = match target.anchor {
        Anchor::TopRight(b) => [
            b[2] - EDGE - w,
            b[3] - TOP_EDGE - h,
            b[2] - EDGE,
            b[3] - TOP_EDGE,
        ],
        Anchor::TopLeft(b) => [
            b[0] + EDGE,
            b[3] - TOP_EDGE - h,
            b[0] + EDGE + w,
            b[3] - TOP_EDGE,
        ],
        Anchor::Fixed(r) => r,
        Anchor::Invisible => [0.0; 4],
    };
    let (bw, bh) = (rect[2] - rect[0], rect[3] - rect[1]);
    let ascent = regular.ascent(TEXT_SIZE);
    let mut c = String::from("q\n");
    let colour = match style {
        Style::Plain => "0 0 0",
        Style::Stamp => "0.8 0 0",
    };
    if style == Style::Stamp {
        c.push_str(&format!(
            "{colour} RG 1 w 0.5 0.5 {} {} re S\n",
            real(bw - 1.0),
            real(bh - 1.0)
        ));
    }
    c.push_str(&format!("BT\n{colour} rg\n"));
    // Lines from the top of the box, whatever its height.
    let top = bh - pad;
    for (i, (s, is_bold)) in shaped.iter().enumerate() {
        let y = top - ascent - LEADING * i as f64 + (LEADING - TEXT_SIZE) / 2.0 - 1.0;
        let x = match style {
            Style::Plain => pad,
            Style::Stamp => (bw - s.width) / 2.0,
        };
        c.push_str(&format!(
            "/{} {} Tf 1 0 0 1 {} {} Tm <{}> Tj\n",
            if *is_bold { "F2" } else { "F1" },
            real(TEXT_SIZE),
            real(x),
            real(y),
            hex::encode_upper(&s.cids)
        ));
    }
    c.push_str("ET\nQ\n");
    let mut fonts = String::new();
    if shaped.iter().any(|(_, b)| !*b) {
        fonts.push_str(&format!(" /F1 {} 0 R", regular.write(objs)?));
    }
    if shaped.iter().any(|(_, b)| *b) {
        fonts.push_str(&format!(" /F2 {} 0 R", bold.write(objs)?));
    }
    let form = objs.add(flate_stream(
        &format!(
            " /Type /XObject /Subtype /Form /BBox [0 0 {} {}] /Resources <</Font <<{fonts}>>>>",
            real(bw),
            real(bh)
        ),
        c.as_bytes(),
    )?);
    let _ = rect_str;
    Ok((form, rect))
}
