//! The original document as read for signing (lopdf), with the refusals that keep
//! an incremental update safe: encryption, DocMDP "no changes", broken xref
//! offsets, nesting deeper than the limits.

use super::*;

/// A field of the AcroForm.
#[derive(Debug, Clone)]
pub(crate) struct FieldInfo {
    pub id: ObjectId,
    pub name: String,
    pub is_sig: bool,
    pub signed: bool,
    pub widget: ObjectId,
    pub rect: Option<[f64; 4]>,
    pub page: Option<ObjectId>,
}

/// The original document, as read.
pub(crate) struct Source<'a> {
    _bytes: std::marker::PhantomData<&'a [u8]>,
    pub doc: Document,
    pub trailer: Trailer,
    pub size: u32,
    pub root: ObjectId,
    pub pages: BTreeMap<u32, ObjectId>,
}

impl<'a> Source<'a> {
    pub(crate) fn load(bytes: &'a [u8], limits: &PadesLimits) -> Result<Self, PadesError> {
        if bytes.len() > limits.max_bytes {
            return Err(PadesError::TooLarge {
                size: bytes.len(),
                limit: limits.max_bytes,
            });
        }
        if !bytes.starts_with(b"%PDF-") {
            return Err(PadesError::NotPdf("it does not start with %PDF-".into()));
        }
        let tail = &bytes[bytes.len().saturating_sub(1024)..];
        if !tail.windows(5).any(|w| w == b"%%EOF") {
            return Err(PadesError::NotPdf(
                "no %%EOF at the end: truncated or not a PDF".into(),
            ));
        }
        check_depth(bytes, limits.max_depth)?;
        let doc = match Document::load_mem(bytes) {
            Ok(d) => d,
            Err(e) => {
                if has_encrypt_key(bytes) {
                    return Err(PadesError::Encrypted);
                }
                return Err(PadesError::Malformed(format!("lopdf cannot read it: {e}")));
            }
        };
        if doc.trailer.has(b"Encrypt") || doc.is_encrypted() {
            return Err(PadesError::Encrypted);
        }
        let entries = doc.reference_table.entries.len();
        if entries > limits.max_objects {
            return Err(PadesError::TooMany {
                what: "objects",
                count: entries,
                limit: limits.max_objects,
            });
        }
        check_xref_offsets(bytes, &doc)?;
        let root = doc
            .trailer
            .get(b"Root")
            .and_then(Object::as_reference)
            .map_err(|_| PadesError::Malformed("the trailer has no /Root reference".into()))?;
        let catalog = doc
            .get_dictionary(root)
            .map_err(|e| PadesError::Malformed(format!("the catalog {root:?}: {e}")))?;
        if catalog.has(b"Perms") {
            check_docmdp(&doc, catalog)?;
        }
        let pages = doc.get_pages();
        if pages.is_empty() {
            return Err(PadesError::Malformed("the page tree has no page".into()));
        }
        if pages.len() > limits.max_pages {
            return Err(PadesError::TooMany {
                what: "pages",
                count: pages.len(),
                limit: limits.max_pages,
            });
        }
        let mut entries = String::new();
        entries.push_str(&format!("/Root {} {} R", root.0, root.1));
        for key in ["Info", "ID"] {
            if let Ok(v) = doc.trailer.get(key.as_bytes()) {
                let mut b = Vec::new();
                write_object(&mut b, v)?;
                entries.push_str(&format!(" /{key} "));
                entries.push_str(&String::from_utf8_lossy(&b));
            }
        }
        let xref_stream = matches!(
            doc.reference_table.cross_reference_type,
            lopdf::xref::XrefType::CrossReferenceStream
        );
        let size = doc.reference_table.size.max(doc.max_id.saturating_add(1));
        let trailer = Trailer {
            entries,
            prev: doc.xref_start,
            size,
            xref_stream,
        };
        Ok(Self {
            _bytes: std::marker::PhantomData,
            doc,
            trailer,
            size,
            root,
            pages,
        })
    }

    pub(crate) fn dict(&self, id: ObjectId) -> Result<&Dictionary, PadesError> {
        self.doc
            .get_dictionary(id)
            .map_err(|e| PadesError::Malformed(format!("object {} {}: {e}", id.0, id.1)))
    }

    /// Follows references (a bounded chain).
    pub(crate) fn deref<'o>(&'o self, o: &'o Object) -> Result<&'o Object, PadesError> {
        let mut cur = o;
        for _ in 0..32 {
            match cur {
                Object::Reference(id) => {
                    cur = self.doc.get_object(*id).map_err(|e| {
                        PadesError::Malformed(format!("object {} {}: {e}", id.0, id.1))
                    })?;
                }
                other => return Ok(other),
            }
        }
        Err(PadesError::Malformed(
            "a chain of references too long".into(),
        ))
    }

    fn catalog(&self) -> Result<&Dictionary, PadesError> {
        self.dict(self.root)
    }

    /// Page number (1-based) and object of every page.
    pub(crate) fn page(&self, n: u32) -> Result<ObjectId, PadesError> {
        self.pages.get(&n).copied().ok_or(PadesError::Page {
            page: n,
            pages: self.pages.len(),
        })
    }

    /// An inheritable page attribute (PDF 32000 §7.7.3.4).
    pub(crate) fn inherited(
        &self,
        page: ObjectId,
        key: &[u8],
    ) -> Result<Option<&Object>, PadesError> {
        let mut cur = self.dict(page)?;
        for _ in 0..64 {
            if let Ok(v) = cur.get(key) {
                return Ok(Some(self.deref(v)?));
            }
            match cur.get(b"Parent").and_then(Object::as_reference) {
                Ok(p) => cur = self.dict(p)?,
                Err(_) => return Ok(None),
            }
        }
        Err(PadesError::Malformed("the page tree is too deep".into()))
    }

    /// The visible box of a page (CropBox, else MediaBox), normalised.
    pub(crate) fn page_box(&self, page: ObjectId) -> Result<[f64; 4], PadesError> {
        let b = match self.inherited(page, b"CropBox")? {
            Some(b) => b,
            None => self
                .inherited(page, b"MediaBox")?
                .ok_or_else(|| PadesError::Malformed("a page without /MediaBox".into()))?,
        };
        let r = self
            .rect(b)
            .ok_or_else(|| PadesError::Malformed("a page box that is not 4 numbers".into()))?;
        Ok(r)
    }

    pub(crate) fn rect(&self, o: &Object) -> Option<[f64; 4]> {
        let a = self.deref(o).ok()?.as_array().ok()?;
        if a.len() != 4 {
            return None;
        }
        let mut v = [0f64; 4];
        for (slot, o) in v.iter_mut().zip(a) {
            *slot = f64::from(self.deref(o).ok()?.as_float().ok()?);
        }
        Some([
            v[0].min(v[2]),
            v[1].min(v[3]),
            v[0].max(v[2]),
            v[1].max(v[3]),
        ])
    }

    /// The page's rotation in degrees.
    pub(crate) fn rotation(&self, page: ObjectId) -> Result<i64, PadesError> {
        Ok(self
            .inherited(page, b"Rotate")?
            .and_then(|o| o.as_i64().ok())
            .unwrap_or(0)
            .rem_euclid(360))
    }

    fn acroform(&self) -> Result<Option<(Option<ObjectId>, &Dictionary)>, PadesError> {
        match self.catalog()?.get(b"AcroForm") {
            Ok(Object::Reference(id)) => Ok(Some((Some(*id), self.dict(*id)?))),
            Ok(Object::Dictionary(d)) => Ok(Some((None, d))),
            Ok(_) => Err(PadesError::Malformed(
                "/AcroForm is not a dictionary".into(),
            )),
            Err(_) => Ok(None),
        }
    }

    /// The top-level fields of the AcroForm (signature fields with their
    /// first widget).
    pub(crate) fn fields(&self) -> Result<Vec<FieldInfo>, PadesError> {
        let Some((_, form)) = self.acroform()? else {
            return Ok(Vec::new());
        };
        let Ok(list) = form.get(b"Fields") else {
            return Ok(Vec::new());
        };
        let list = self
            .deref(list)?
            .as_array()
            .map_err(|_| PadesError::Malformed("/Fields is not an array".into()))?;
        let mut out = Vec::new();
        for f in list {
            let Ok(id) = f.as_reference() else { continue };
            let Ok(d) = self.dict(id) else { continue };
            let name = d
                .get(b"T")
                .ok()
                .and_then(|t| self.deref(t).ok())
                .and_then(|t| t.as_str().ok())
                .map(decode_text)
                .unwrap_or_default();
            let is_sig = d
                .get(b"FT")
                .and_then(Object::as_name)
                .is_ok_and(|n| n == b"Sig");
            let signed = d.get(b"V").is_ok_and(|v| !matches!(v, Object::Null));
            let widget = match d.get(b"Kids").ok().map(|k| self.deref(k)) {
                Some(Ok(Object::Array(kids))) => kids
                    .first()
                    .and_then(|k| k.as_reference().ok())
                    .unwrap_or(id),
                _ => id,
            };
            let wd = self.dict(widget).ok();
            let rect = wd
                .and_then(|w| w.get(b"Rect").ok())
                .and_then(|r| self.rect(r));
            let page = match wd.and_then(|w| w.get(b"P").ok()).map(Object::as_reference) {
                Some(Ok(p)) => Some(p),
                _ => self.page_of(widget),
            };
            out.push(FieldInfo {
                id,
                name,
                is_sig,
                signed,
                widget,
                rect,
                page,
            });
        }
        Ok(out)
    }

    /// The page whose /Annots holds `annot`.
    fn page_of(&self, annot: ObjectId) -> Option<ObjectId> {
        self.pages.values().copied().find(|p| {
            self.dict(*p)
                .ok()
                .and_then(|d| d.get(b"Annots").ok())
                .and_then(|a| self.deref(a).ok())
                .and_then(|a| a.as_array().ok())
                .is_some_and(|a| a.iter().any(|o| o.as_reference().ok() == Some(annot)))
        })
    }

    /// Adds the widget to the page's /Annots (rewriting the page, or the
    /// array when it is an object of its own).
    pub(crate) fn add_annot(
        &self,
        objs: &mut Objects,
        page: ObjectId,
        widget: u32,
    ) -> Result<(), PadesError> {
        let pd = self.dict(page)?;
        let wref = Object::Reference((widget, 0));
        match pd.get(b"Annots") {
            Ok(Object::Reference(id)) => {
                let mut a = self
                    .deref(&Object::Reference(*id))?
                    .as_array()
                    .map_err(|_| PadesError::Malformed("/Annots is not an array".into()))?
                    .clone();
                a.push(wref);
                let mut b = Vec::new();
                write_object(&mut b, &Object::Array(a))?;
                objs.set(id.0, id.1, b);
            }
            Ok(Object::Array(a)) => {
                let mut a = a.clone();
                a.push(wref);
                let mut d = pd.clone();
                d.set("Annots", Object::Array(a));
                objs.set(page.0, page.1, dict_bytes(&d)?);
            }
            Ok(_) => return Err(PadesError::Malformed("/Annots is not an array".into())),
            Err(_) => {
                let mut d = pd.clone();
                d.set("Annots", Object::Array(vec![wref]));
                objs.set(page.0, page.1, dict_bytes(&d)?);
            }
        }
        Ok(())
    }

    /// The AcroForm with `/SigFlags 3` and the new field in `/Fields`.
    pub(crate) fn update_acroform(
        &self,
        objs: &mut Objects,
        field: Option<u32>,
    ) -> Result<(), PadesError> {
        let existing = self.acroform()?;
        let mut form = existing.map(|(_, d)| d.clone()).unwrap_or_default();
        form.set("SigFlags", Object::Integer(3));
        if let Some(field) = field {
            let fref = Object::Reference((field, 0));
            match form.get(b"Fields") {
                Ok(Object::Reference(id)) => {
                    let id = *id;
                    let mut a = self
                        .deref(&Object::Reference(id))?
                        .as_array()
                        .map_err(|_| PadesError::Malformed("/Fields is not an array".into()))?
                        .clone();
                    a.push(fref);
                    let mut b = Vec::new();
                    write_object(&mut b, &Object::Array(a))?;
                    objs.set(id.0, id.1, b);
                }
                Ok(Object::Array(a)) => {
                    let mut a = a.clone();
                    a.push(fref);
                    form.set("Fields", Object::Array(a));
                }
                _ => form.set("Fields", Object::Array(vec![fref])),
            }
        }
        match existing {
            Some((Some(id), _)) => objs.set(id.0, id.1, dict_bytes(&form)?),
            _ => {
                let id = objs.add(dict_bytes(&form)?);
                let mut cat = self.catalog()?.clone();
                cat.set("AcroForm", Object::Reference((id, 0)));
                objs.set(self.root.0, self.root.1, dict_bytes(&cat)?);
            }
        }
        Ok(())
    }
}

/// A PDF text string: UTF-16BE with a BOM, else PDFDocEncoding (read as Latin-1).
pub(crate) fn decode_text(b: &[u8]) -> String {
    if let Some(rest) = b.strip_prefix(&[0xFE, 0xFF]) {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        b.iter().map(|&c| char::from(c)).collect()
    }
}

fn has_encrypt_key(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(64 * 1024)..];
    tail.windows(8).any(|w| w == b"/Encrypt")
}

/// Refuses a document certified with "no changes allowed" (DocMDP P=1):
/// a signature added to it would invalidate the certification.
fn check_docmdp(doc: &Document, catalog: &Dictionary) -> Result<(), PadesError> {
    let p = (|| -> Option<i64> {
        let perms = catalog.get_deref(b"Perms", doc).ok()?.as_dict().ok()?;
        let sig = perms.get_deref(b"DocMDP", doc).ok()?.as_dict().ok()?;
        let refs = sig.get_deref(b"Reference", doc).ok()?.as_array().ok()?;
        refs.iter().find_map(|r| {
            let r = doc.dereference(r).ok()?.1.as_dict().ok()?;
            let params = r.get_deref(b"TransformParams", doc).ok()?.as_dict().ok()?;
            params.get(b"P").ok()?.as_i64().ok()
        })
    })();
    if p == Some(1) {
        return Err(PadesError::Unsupported(
            "the document is certified with no changes allowed (DocMDP P=1)".into(),
        ));
    }
    Ok(())
}

/// Every in-use entry of the cross-reference must point at `N G obj`: a
/// broken table is refused rather than repaired by guessing.
fn check_xref_offsets(bytes: &[u8], doc: &Document) -> Result<(), PadesError> {
    for (id, e) in &doc.reference_table.entries {
        if let lopdf::xref::XrefEntry::Normal { offset, generation } = e {
            let at = *offset as usize;
            let ok = bytes
                .get(at..bytes.len().min(at + 40))
                .is_some_and(|s| starts_with_obj_header(s, *id, *generation));
            if !ok {
                return Err(PadesError::Malformed(format!(
                    "the cross-reference entry of object {id} {generation} points at offset {offset}, \
                     where that object does not begin"
                )));
            }
        }
    }
    Ok(())
}

fn starts_with_obj_header(s: &[u8], id: u32, generation: u16) -> bool {
    let text = String::from_utf8_lossy(s);
    let mut parts = text.split_ascii_whitespace();
    parts.next() == Some(&id.to_string())
        && parts.next().and_then(|g| g.parse::<u16>().ok()) == Some(generation)
        && parts.next().is_some_and(|o| o.starts_with("obj"))
}

/// Refuses nesting deeper than `limit` before lopdf's recursive parser sees
/// it, in the file and in the object streams (inflated, bounded).
fn check_depth(bytes: &[u8], limit: usize) -> Result<(), PadesError> {
    scan_depth(bytes, limit, true)
}

fn scan_depth(bytes: &[u8], limit: usize, top: bool) -> Result<(), PadesError> {
    let mut depth = 0usize;
    let mut i = 0;
    let n = bytes.len();
    let mut last_obj = 0usize;
    while i < n {
        match bytes[i] {
            b'%' => {
                while i < n && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'(' => {
                let mut level = 0usize;
                while i < n {
                    match bytes[i] {
                        b'\\' => i += 1,
                        b'(' => level += 1,
                        b')' => {
                            level -= 1;
                            if level == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
            }
            b'<' if bytes.get(i + 1) == Some(&b'<') => {
                depth += 1;
                i += 1;
            }
            b'<' => {
                while i < n && bytes[i] != b'>' {
                    i += 1;
                }
            }
            b'>' if bytes.get(i + 1) == Some(&b'>') => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'[' => depth += 1,
            b']' => depth = depth.saturating_sub(1),
            b'o' if bytes[i..].starts_with(b"obj") => last_obj = i,
            b's' if bytes[i..].starts_with(b"stream") && !bytes[..i].ends_with(b"end") => {
                let start = i + 6;
                let data_start = match bytes.get(start..start + 2) {
                    Some(b"\r\n") => start + 2,
                    Some([b'\n', _]) | Some([b'\r', _]) => start + 1,
                    _ => {
                        i += 1;
                        continue;
                    }
                };
                let end = bytes[data_start..]
                    .windows(9)
                    .position(|w| w == b"endstream")
                    .map_or(n, |p| data_start + p);
                if top {
                    let head = &bytes[last_obj..i];
                    if head.windows(7).any(|w| w == b"/ObjStm") {
                        let data = &bytes[data_start..end];
                        let inner = if head.windows(12).any(|w| w == b"/FlateDecode") {
                            let mut v = Vec::new();
                            // Bounded: an object stream inflating past 64 MiB is refused below.
                            flate2::read::ZlibDecoder::new(data)
                                .take(64 << 20)
                                .read_to_end(&mut v)
                                .map_err(|e| {
                                    PadesError::Malformed(format!(
                                        "an object stream does not inflate: {e}"
                                    ))
                                })?;
                            v
                        } else {
                            data.to_vec()
                        };
                        scan_depth(&inner, limit, false)?;
                    }
                }
                i = end + 9;
                continue;
            }
            _ => {}
        }
        if depth > limit {
            return Err(PadesError::TooDeep { depth, limit });
        }
        i += 1;
    }
    Ok(())
}
