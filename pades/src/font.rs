//! Embedded text for the appearances (P3, P4): Liberation Serif (metric
//! compatible with Times New Roman, full Vietnamese coverage, OFL) as a
//! Type0 / CIDFontType2 font, Identity-H, subset to the glyphs used, with
//! `/W` widths and a `/ToUnicode` CMap so that text extraction gives the
//! Vietnamese back.

use std::collections::BTreeMap;

use subsetter::GlyphRemapper;

use super::PadesError;
use super::serialize::{flate_stream, real};
use super::writer::Objects;

pub(crate) const REGULAR: &[u8] = include_bytes!("../../assets/fonts/LiberationSerif-Regular.ttf");
pub(crate) const BOLD: &[u8] = include_bytes!("../../assets/fonts/LiberationSerif-Bold.ttf");

/// A font being used by one appearance: the glyphs it needs so far.
pub(crate) struct EmbeddedFont {
    data: &'static [u8],
    ps_name: &'static str,
    face: ttf_parser::Face<'static>,
    remapper: GlyphRemapper,
    /// New glyph ID -> (old glyph ID, the text it stands for).
    used: BTreeMap<u16, (u16, char)>,
}

impl std::fmt::Debug for EmbeddedFont {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedFont")
            .field("ps_name", &self.ps_name)
            .field("glyphs", &self.used.len())
            .finish_non_exhaustive()
    }
}

/// A line of text encoded for `Tj`: the 2-byte CIDs and its width in points.
#[derive(Debug, Clone)]
pub(crate) struct Shaped {
    pub cids: Vec<u8>,
    pub width: f64,
}

impl EmbeddedFont {
    pub(crate) fn regular() -> Result<Self, PadesError> {
        Self::new(REGULAR, "LiberationSerif")
    }

    pub(crate) fn bold() -> Result<Self, PadesError> {
        Self::new(BOLD, "LiberationSerif-Bold")
    }

    fn new(data: &'static [u8], ps_name: &'static str) -> Result<Self, PadesError> {
        let face = ttf_parser::Face::parse(data, 0)
            .map_err(|e| PadesError::Font(format!("{ps_name}: {e}")))?;
        let mut remapper = GlyphRemapper::new();
        // Glyph 0 (.notdef) stays glyph 0, as PDF readers expect.
        remapper.remap(0);
        Ok(Self {
            data,
            ps_name,
            face,
            remapper,
            used: BTreeMap::new(),
        })
    }

    /// Encodes `text` at `size` points. Characters the font lacks are an
    /// error, not a silent box: the legal text must read as written.
    pub(crate) fn shape(&mut self, text: &str, size: f64) -> Result<Shaped, PadesError> {
        let upem = f64::from(self.face.units_per_em());
        let mut cids = Vec::with_capacity(text.len() * 2);
        let mut width = 0.0;
        for ch in text.chars() {
            let gid = self.face.glyph_index(ch).ok_or_else(|| {
                PadesError::Text(format!(
                    "{} has no glyph for {ch:?} (U+{:04X}); write the text in NFC",
                    self.ps_name, ch as u32
                ))
            })?;
            let new = self.remapper.remap(gid.0);
            self.used.entry(new).or_insert((gid.0, ch));
            cids.extend_from_slice(&new.to_be_bytes());
            width += f64::from(self.face.glyph_hor_advance(gid).unwrap_or(0)) * size / upem;
        }
        Ok(Shaped { cids, width })
    }

    /// The font's ascent in points at `size`.
    pub(crate) fn ascent(&self, size: f64) -> f64 {
        f64::from(self.face.ascender()) * size / f64::from(self.face.units_per_em())
    }

    /// Writes the subset font and its dictionaries; returns the Type0 font's object number.
    pub(crate) fn write(&self, objs: &mut Objects) -> Result<u32, PadesError> {
        let subset = subsetter::subset(self.data, 0, &self.remapper)
            .map_err(|e| PadesError::Font(format!("subsetting {}: {e:?}", self.ps_name)))?;
        // The subset tag (PDF 32000 §9.6.4): six capitals, here from the
        // glyph set, so the same text gives the same font name.
        let mut seed = 0u64;
        for (new, (old, _)) in &self.used {
            seed = seed
                .wrapping_mul(0x100000001B3)
                .wrapping_add(u64::from(*new) << 16 | u64::from(*old));
        }
        let tag: String = (0..6)
            .map(|i| char::from(b'A' + ((seed >> (i * 5)) % 26) as u8))
            .collect();
        let base = format!("{tag}+{}", self.ps_name);

        let upem = f64::from(self.face.units_per_em());
        let scale = |v: f64| v * 1000.0 / upem;
        let bbox = self.face.global_bounding_box();
        let file = objs.add(flate_stream(
            &format!(" /Length1 {}", subset.len()),
            &subset,
        )?);
        let descriptor = objs.add(
            format!(
                "<</Type /FontDescriptor /FontName /{base} /Flags 6 /FontBBox [{} {} {} {}] \
                 /ItalicAngle 0 /Ascent {} /Descent {} /CapHeight {} /StemV 80 /FontFile2 {file} 0 R>>",
                real(scale(f64::from(bbox.x_min))),
                real(scale(f64::from(bbox.y_min))),
                real(scale(f64::from(bbox.x_max))),
                real(scale(f64::from(bbox.y_max))),
                real(scale(f64::from(self.face.ascender()))),
                real(scale(f64::from(self.face.descender()))),
                real(scale(f64::from(
                    self.face.capital_height().unwrap_or(self.face.ascender())
                ))),
            )
            .into_bytes(),
        );
        let mut widths = String::new();
        for (new, (old, _)) in &self.used {
            let adv = self
                .face
                .glyph_hor_advance(ttf_parser::GlyphId(*old))
                .unwrap_or(0);
            widths.push_str(&format!("{new} [{}] ", real(scale(f64::from(adv)))));
        }
        let cid_font = objs.add(
            format!(
                "<</Type /Font /Subtype /CIDFontType2 /BaseFont /{base} \
                 /CIDSystemInfo <</Registry (Adobe) /Ordering (Identity) /Supplement 0>> \
                 /FontDescriptor {descriptor} 0 R /DW 1000 /W [{widths}] /CIDToGIDMap /Identity>>"
            )
            .into_bytes(),
        );
        let to_unicode = objs.add(flate_stream("", self.to_unicode().as_bytes())?);
        Ok(objs.add(
            format!(
                "<</Type /Font /Subtype /Type0 /BaseFont /{base} /Encoding /Identity-H \
                 /DescendantFonts [{cid_font} 0 R] /ToUnicode {to_unicode} 0 R>>"
            )
            .into_bytes(),
        ))
    }

    fn to_unicode(&self) -> String {
        let mut s = String::from(
            "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n\
             /CIDSystemInfo <</Registry (Adobe) /Ordering (UCS) /Supplement 0>> def\n\
             /CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n\
             1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
        );
        let entries: Vec<(u16, char)> = self
            .used
            .iter()
            .filter(|(new, _)| **new != 0)
            .map(|(new, (_, ch))| (*new, *ch))
            .collect();
        // At most 100 entries per block (PDF 32000 §9.10.3, CMap syntax).
        for block in entries.chunks(100) {
            s.push_str(&format!("{} beginbfchar\n", block.len()));
            for (new, ch) in block {
                let mut units = [0u16; 2];
                let utf16: String = ch
                    .encode_utf16(&mut units)
                    .iter()
                    .map(|u| format!("{u:04X}"))
                    .collect();
                s.push_str(&format!("<{new:04X}> <{utf16}>\n"));
            }
            s.push_str("endbfchar\n");
        }
        s.push_str("endcmap\nCMapName currentdict /CMapDefineResource pop\nend\nend\n");
        s
    }
}
