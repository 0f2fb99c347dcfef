//! What each incremental update changed, and whether a signer before it
//! would have accepted the change.
//!
//! A signature protects the bytes of its revision; a reader shows the last
//! revision. Everything in between is analysed here object by object (V5:
//! an altered document is refused; D2: a second signature after the first is
//! the normal outgoing form and must not fail the first).
//!
//! Allowed after a signature: a new signature (its field, widget, appearance
//! and value), `/AcroForm /Fields` gaining signature fields, `/SigFlags`,
//! `/DR`, a page's `/Annots` gaining signature widgets, the DSS, the
//! document information dictionary, and objects nothing reaches. Everything
//! else that a signed revision could show is not.

use std::collections::HashMap;
use std::rc::Rc;

use serde::Serialize;

use super::PdfError;
use super::file::{Entry, PdfFile};
use super::syntax::{Dict, DictExt, ObjRef, Object};

/// What kind of change an update made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ModificationKind {
    /// A new signature value (signature dictionary).
    Signature,
    /// A signature field or its widget added, or an empty one signed.
    SignatureField,
    /// The appearance of a new signature.
    SignatureAppearance,
    /// `/AcroForm` created or its `/Fields`, `/SigFlags`, `/DR` changed.
    FormFields,
    /// The document security store (validation data).
    Dss,
    /// The document information dictionary.
    Metadata,
    /// An object that nothing in the document refers to.
    UnusedObject,
    /// A new object reached only through allowed changes.
    ObjectAdded,
    /// Page content streams.
    PageContent,
    /// Page resources (fonts, images, forms drawn on the page).
    PageResources,
    /// Pages added, removed or their attributes changed.
    Page,
    /// An annotation that is not a signature widget.
    Annotation,
    /// A form field value (not a signature).
    FormFieldValue,
    /// The document catalog (other than `/AcroForm` and `/DSS`).
    Catalog,
    /// An existing signature value or its field changed.
    SignatureChanged,
    /// Another object of the signed revision replaced.
    ObjectReplaced,
    /// An object of the signed revision deleted.
    ObjectDeleted,
    /// The cross-reference of an update points into older bytes, or an
    /// update holds a cross-reference section its trailer does not use.
    XrefRedirect,
    /// Bytes after the last `%%EOF` that are no revision.
    TrailingData,
}

/// One change made by a later revision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Modification {
    /// The revision that made it.
    pub revision: usize,
    /// What it is.
    pub kind: ModificationKind,
    /// The object changed, when one.
    pub object: Option<(u32, u16)>,
    /// Whether it is allowed after a signature.
    pub allowed: bool,
    /// A sentence a clerk can read.
    pub description: String,
}

/// The part an object plays in a revision. Ordered by how much a change to
/// it matters: an object reached in several ways takes the highest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Role {
    Info,
    Dss,
    SigAppearance,
    SigValue,
    SigField,
    AcroForm,
    Fields,
    Annots,
    Other,
    FormField,
    Annotation,
    PageResource,
    PageContent,
    Page,
    PageTree,
    Catalog,
}

type Roles = HashMap<u32, Role>;

/// Per revision, the modifications it made (index 0 is always empty).
pub(super) fn analyse_updates(file: &PdfFile<'_>) -> Result<Vec<Vec<Modification>>, PdfError> {
    let n = file.revs.len();
    let mut roles: Vec<Roles> = Vec::with_capacity(n);
    for rev in 0..n {
        roles.push(compute_roles(file, rev)?);
    }
    let mut out = vec![Vec::new(); n];
    for r in 1..n {
        out[r] = analyse(file, r, &roles[r - 1], &roles[r])?;
    }
    Ok(out)
}

fn key_str(k: &[u8]) -> String {
    format!("/{}", String::from_utf8_lossy(k))
}

fn same(file: &PdfFile<'_>, a: &Object, b: &Object) -> bool {
    match (a, b) {
        (Object::Stream(x), Object::Stream(y)) => {
            x.dict == y.dict
                && file.data.get(x.data.0..x.data.1) == file.data.get(y.data.0..y.data.1)
        }
        _ => a == b,
    }
}

/// Whether a field (or a widget of one) is a signature field: `/FT /Sig` on
/// itself or inherited through `/Parent`.
fn is_sig_field(file: &PdfFile<'_>, rev: usize, d: &Dict) -> Result<bool, PdfError> {
    let mut cur: Option<Rc<Object>> = None;
    let mut dict = d;
    for _ in 0..file.limits.max_depth {
        if let Some(ft) = dict.name_of("FT") {
            return Ok(ft == b"Sig");
        }
        let Some(p) = dict.get_key("Parent") else {
            return Ok(false);
        };
        cur = file.resolve(rev, p)?;
        match cur.as_deref().and_then(Object::dict) {
            Some(pd) => dict = pd,
            None => return Ok(false),
        }
    }
    let _ = cur;
    Ok(false)
}

fn compute_roles(file: &PdfFile<'_>, rev: usize) -> Result<Roles, PdfError> {
    let mut roles: Roles = HashMap::new();
    let trailer = &file.revs[rev].trailer;
    // (value, role it gets if it is a reference)
    let mut work: Vec<(Object, Role)> = Vec::new();
    if let Some(r) = trailer.get_key("Root") {
        work.push((r.clone(), Role::Catalog));
    }
    if let Some(i) = trailer.get_key("Info") {
        work.push((i.clone(), Role::Info));
    }
    let mut steps = 0usize;
    while let Some((o, role)) = work.pop() {
        steps += 1;
        if steps > file.limits.max_objects.saturating_mul(4) {
            return Err(PdfError::TooLarge {
                what: "object graph traversal",
                limit: file.limits.max_objects,
            });
        }
        let value: Rc<Object> = match &o {
            Object::Ref(r) => {
                match roles.get(&r.num) {
                    Some(old) if *old >= role => continue,
                    _ => {}
                }
                roles.insert(r.num, role);
                match file.get(rev, *r)? {
                    Some(v) => v,
                    None => continue,
                }
            }
            other => Rc::new(other.clone()),
        };
        match &*value {
            Object::Array(items) => {
                for it in items {
                    let child = match role {
                        Role::Annots => annotation_role(file, rev, it)?,
                        Role::Fields => field_role(file, rev, it)?,
                        Role::PageTree => {
                            match file.resolve(rev, it)?.as_deref().and_then(Object::dict) {
                                Some(d) => page_kind(d),
                                None => Role::PageTree,
                            }
                        }
                        other => other,
                    };
                    work.push((it.clone(), child));
                }
            }
            Object::Dict(_) | Object::Stream(_) => {
                let Some(d) = value.dict() else { continue };
                for (k, v) in d {
                    if let Some(child) = child_role(role, k) {
                        work.push((v.clone(), child));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(roles)
}

fn annotation_role(file: &PdfFile<'_>, rev: usize, o: &Object) -> Result<Role, PdfError> {
    let v = file.resolve(rev, o)?;
    Ok(match v.as_deref().and_then(Object::dict) {
        Some(d) if d.name_of("Subtype") == Some(b"Widget") && is_sig_field(file, rev, d)? => {
            Role::SigField
        }
        _ => Role::Annotation,
    })
}

fn field_role(file: &PdfFile<'_>, rev: usize, o: &Object) -> Result<Role, PdfError> {
    let v = file.resolve(rev, o)?;
    Ok(match v.as_deref().and_then(Object::dict) {
        Some(d) if is_sig_field(file, rev, d)? => Role::SigField,
        _ => Role::FormField,
    })
}

fn child_role(parent: Role, key: &[u8]) -> Option<Role> {
    use Role::*;
    // Back links lead to what is already reached through its own path.
    if matches!(key, b"Parent" | b"P") && parent != Annotation {
        return None;
    }
    Some(match (parent, key) {
        (Catalog, b"Pages") => PageTree,
        (Catalog, b"AcroForm") => AcroForm,
        (Catalog, b"DSS") => Dss,
        // The XMP metadata stream is document metadata like `/Info`, and
        // not drawn: signers (pyHanko, iText, Acrobat) rewrite it when they
        // sign, so a later signature that updates it leaves earlier ones
        // intact. A stream also reached as page content keeps that higher
        // role (tests/tests/pdf/interop.rs).
        (Catalog, b"Metadata") => Info,
        (Catalog, _) => Other,
        // The array's elements are told apart by /Type in `compute_roles`.
        (PageTree, b"Kids") => PageTree,
        (PageTree, _) => PageResource,
        (Page, b"Contents") => PageContent,
        (Page, b"Annots") => Annots,
        (Page, _) => PageResource,
        (Annotation, b"P") => return None,
        (Annotation, b"Parent") => FormField,
        (Annotation, _) => Annotation,
        (AcroForm, b"Fields") => Fields,
        (AcroForm, _) => Other,
        (SigField, b"V") => SigValue,
        (SigField, b"Kids") => SigField,
        (SigField, _) => SigAppearance,
        (FormField, _) => FormField,
        (r, _) => r,
    })
}

/// A kid of a page tree node: a page (whose `/Annots` may gain signature
/// widgets) or another node.
fn page_kind(d: &Dict) -> Role {
    if d.name_of("Type") == Some(b"Page") {
        Role::Page
    } else {
        Role::PageTree
    }
}

fn m(
    revision: usize,
    kind: ModificationKind,
    r: Option<ObjRef>,
    allowed: bool,
    description: String,
) -> Modification {
    Modification {
        revision,
        kind,
        object: r.map(|r| (r.num, r.generation)),
        allowed,
        description,
    }
}

fn analyse(
    file: &PdfFile<'_>,
    r: usize,
    old_roles: &Roles,
    new_roles: &Roles,
) -> Result<Vec<Modification>, PdfError> {
    use ModificationKind as K;
    let prev = r - 1;
    let mut out = Vec::new();
    let rev = &file.revs[r];
    let start = rev.info.start;

    // A cross-reference section in the update that its trailer chain does
    // not use: other readers may take it (a hidden second xref).
    for off in xref_like_offsets(file, start, rev.info.end) {
        if !rev.sections.iter().any(|s| off >= *s && off < s + 16) {
            out.push(m(
                r,
                K::XrefRedirect,
                None,
                false,
                format!("the update holds a cross-reference section at byte {off} that its trailer does not use"),
            ));
        }
    }

    let old_root = file.revs[prev]
        .trailer
        .get_key("Root")
        .and_then(Object::reference);
    let new_root = rev.trailer.get_key("Root").and_then(Object::reference);
    let mut root_done = None;
    if old_root != new_root {
        match (old_root, new_root) {
            (Some(o), Some(n)) => {
                let od = file.get(prev, o)?;
                let nd = file.get(r, n)?;
                match (
                    od.as_deref().and_then(Object::dict),
                    nd.as_deref().and_then(Object::dict),
                ) {
                    (Some(od), Some(nd)) => out.extend(catalog_change(file, r, Some(n), od, nd)?),
                    _ => out.push(m(
                        r,
                        K::Catalog,
                        Some(n),
                        false,
                        "the document catalog was replaced by one that cannot be read".into(),
                    )),
                }
                root_done = Some(n.num);
            }
            _ => out.push(m(
                r,
                K::Catalog,
                new_root,
                false,
                "the trailer's /Root was changed".into(),
            )),
        }
    }

    for (&num, &new_entry) in &rev.entries {
        let old_entry = file.entry(prev, num);
        if old_entry == Some(new_entry) {
            continue;
        }
        let new_gen = match new_entry {
            Entry::InFile { generation, .. } => generation,
            _ => 0,
        };
        let old_gen = match old_entry {
            Some(Entry::InFile { generation, .. }) => generation,
            _ => 0,
        };
        let nref = ObjRef {
            num,
            generation: new_gen,
        };
        let oref = ObjRef {
            num,
            generation: old_gen,
        };
        // An update that points an object at older bytes re-reads the signed
        // part differently: the shape of the hiding and wrapping attacks.
        let redirect = match new_entry {
            Entry::InFile { offset, .. } => offset < start,
            Entry::InStream { stream, .. } => {
                matches!(file.entry(r, stream), Some(Entry::InFile { offset, .. }) if offset < start)
            }
            Entry::Free => false,
        };
        if redirect {
            out.push(m(
                r,
                K::XrefRedirect,
                Some(nref),
                false,
                format!("the update points object {num} into the bytes of an earlier revision"),
            ));
            continue;
        }
        let old = match old_entry {
            Some(Entry::Free) | None => None,
            Some(_) => file.get(prev, oref)?,
        };
        let new = match new_entry {
            Entry::Free => None,
            _ => file.get(r, nref)?,
        };
        let old_role = old_roles.get(&num).copied();
        let new_role = new_roles.get(&num).copied();
        match (old, new) {
            (None, None) => {}
            (Some(_), None) => match old_role {
                None => out.push(m(
                    r,
                    K::UnusedObject,
                    Some(oref),
                    true,
                    format!("unused object {num} deleted"),
                )),
                Some(role) => out.push(m(
                    r,
                    K::ObjectDeleted,
                    Some(oref),
                    false,
                    format!(
                        "object {num} ({}) of the signed document was deleted",
                        role_name(role)
                    ),
                )),
            },
            (None, Some(n)) => {
                if root_done == Some(num) {
                    continue;
                }
                out.extend(new_object(file, r, nref, &n, new_role)?);
            }
            (Some(o), Some(n)) => {
                if same(file, &o, &n) {
                    continue;
                }
                if root_done == Some(num) {
                    continue;
                }
                match old_role {
                    None => match new_role {
                        None => out.push(m(
                            r,
                            K::UnusedObject,
                            Some(nref),
                            true,
                            format!("unused object {num} changed"),
                        )),
                        Some(_) => out.extend(new_object(file, r, nref, &n, new_role)?),
                    },
                    Some(role) => out.extend(changed_object(file, r, nref, role, &o, &n)?),
                }
            }
        }
    }
    Ok(out)
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Info => "document information",
        Role::Dss => "document security store",
        Role::SigAppearance => "signature appearance",
        Role::SigValue => "signature value",
        Role::SigField => "signature field",
        Role::AcroForm => "interactive form",
        Role::Fields => "form field list",
        Role::Annots => "page annotation list",
        Role::Other => "document object",
        Role::FormField => "form field",
        Role::Annotation => "annotation",
        Role::PageResource => "page resource",
        Role::PageContent => "page content",
        Role::Page => "page",
        Role::PageTree => "page tree",
        Role::Catalog => "document catalog",
    }
}

fn new_object(
    file: &PdfFile<'_>,
    r: usize,
    nref: ObjRef,
    n: &Object,
    role: Option<Role>,
) -> Result<Vec<Modification>, PdfError> {
    use ModificationKind as K;
    let num = nref.num;
    let one = |kind, allowed, d: String| Ok(vec![m(r, kind, Some(nref), allowed, d)]);
    match role {
        None => one(
            K::UnusedObject,
            true,
            format!("new object {num}, referenced by nothing"),
        ),
        Some(Role::SigField) => one(
            K::SignatureField,
            true,
            format!("new signature field or widget {num}"),
        ),
        Some(Role::SigValue) => one(K::Signature, true, format!("new signature value {num}")),
        Some(Role::SigAppearance) => one(
            K::SignatureAppearance,
            true,
            format!("new signature appearance object {num}"),
        ),
        Some(Role::Dss) => one(
            K::Dss,
            true,
            format!("document security store object {num}"),
        ),
        Some(Role::Info) => one(K::Metadata, true, format!("new document information {num}")),
        Some(Role::AcroForm) => one(
            K::FormFields,
            true,
            format!("new interactive form dictionary {num}"),
        ),
        Some(Role::Fields) => array_change(
            file,
            r,
            nref,
            Role::Fields,
            &[],
            n.array().unwrap_or_default(),
        ),
        Some(Role::Annots) => array_change(
            file,
            r,
            nref,
            Role::Annots,
            &[],
            n.array().unwrap_or_default(),
        ),
        Some(Role::Other) => one(K::ObjectAdded, true, format!("new object {num}")),
        Some(Role::FormField) => one(
            K::FormFieldValue,
            false,
            format!("new form field {num} that is not a signature"),
        ),
        Some(Role::Annotation) => one(
            K::Annotation,
            false,
            format!("new annotation {num} that is not a signature widget"),
        ),
        Some(Role::PageContent) => one(
            K::PageContent,
            false,
            format!("new page content stream {num}"),
        ),
        Some(Role::PageResource) => {
            one(K::PageResources, false, format!("new page resource {num}"))
        }
        Some(Role::Page | Role::PageTree) => {
            one(K::Page, false, format!("new page or page tree node {num}"))
        }
        Some(Role::Catalog) => one(K::Catalog, false, format!("new document catalog {num}")),
    }
}

fn changed_object(
    file: &PdfFile<'_>,
    r: usize,
    nref: ObjRef,
    role: Role,
    o: &Object,
    n: &Object,
) -> Result<Vec<Modification>, PdfError> {
    use ModificationKind as K;
    let num = nref.num;
    let one = |kind, allowed, d: String| Ok(vec![m(r, kind, Some(nref), allowed, d)]);
    match role {
        Role::Catalog => match (o.dict(), n.dict()) {
            (Some(od), Some(nd)) => catalog_change(file, r, Some(nref), od, nd),
            _ => one(
                K::Catalog,
                false,
                "the document catalog is no longer a dictionary".into(),
            ),
        },
        Role::AcroForm => match (o.dict(), n.dict()) {
            (Some(od), Some(nd)) => acroform_change(file, r, nref, od, nd),
            _ => one(
                K::FormFields,
                false,
                "the interactive form is no longer a dictionary".into(),
            ),
        },
        Role::Fields | Role::Annots => match (o.array(), n.array()) {
            (Some(oa), Some(na)) => array_change(file, r, nref, role, oa, na),
            _ => one(
                K::FormFields,
                false,
                format!("the {} {num} is no longer an array", role_name(role)),
            ),
        },
        Role::Page => match (o.dict(), n.dict()) {
            (Some(od), Some(nd)) => page_change(file, r, nref, od, nd),
            _ => one(
                K::Page,
                false,
                format!("page {num} is no longer a dictionary"),
            ),
        },
        Role::SigField => match (o.dict(), n.dict()) {
            (Some(od), Some(nd)) => {
                let changed = changed_keys(file, od, nd);
                let only_signing = od.get_key("V").is_none()
                    && nd.get_key("V").is_some()
                    && changed.iter().all(|k| {
                        matches!(k.as_slice(), b"V" | b"AP" | b"MK" | b"F" | b"Lock" | b"SV")
                    });
                let widget_only = changed
                    .iter()
                    .all(|k| matches!(k.as_slice(), b"AP" | b"MK"))
                    && od.get_key("V").is_none();
                if only_signing || widget_only {
                    one(
                        K::SignatureField,
                        true,
                        format!("empty signature field {num} was signed"),
                    )
                } else {
                    one(
                        K::SignatureChanged,
                        false,
                        format!(
                            "signature field {num} changed ({})",
                            changed
                                .iter()
                                .map(|k| key_str(k))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                }
            }
            _ => one(
                K::SignatureChanged,
                false,
                format!("signature field {num} replaced"),
            ),
        },
        Role::SigValue => one(
            K::SignatureChanged,
            false,
            format!("the signature value {num} of an earlier signature changed"),
        ),
        Role::SigAppearance => one(
            K::SignatureChanged,
            false,
            format!("the appearance {num} of an existing signature field changed"),
        ),
        Role::Dss => one(
            K::Dss,
            true,
            format!("document security store object {num} updated"),
        ),
        Role::Info => one(
            K::Metadata,
            true,
            format!("document information {num} updated"),
        ),
        Role::FormField => one(
            K::FormFieldValue,
            false,
            format!("form field {num} changed"),
        ),
        Role::Annotation => one(K::Annotation, false, format!("annotation {num} changed")),
        Role::PageContent => one(
            K::PageContent,
            false,
            format!("page content stream {num} changed"),
        ),
        Role::PageResource => one(
            K::PageResources,
            false,
            format!("page resource {num} changed"),
        ),
        Role::PageTree => one(
            K::Page,
            false,
            format!("page tree node {num} changed (pages added, removed or reordered)"),
        ),
        Role::Other => one(
            K::ObjectReplaced,
            false,
            format!("object {num} of the signed document replaced"),
        ),
    }
}

fn changed_keys(file: &PdfFile<'_>, a: &Dict, b: &Dict) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = a.keys().chain(b.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| match (a.get(k), b.get(k)) {
            (Some(x), Some(y)) => !same(file, x, y),
            (None, None) => false,
            _ => true,
        })
        .collect()
}

fn catalog_change(
    file: &PdfFile<'_>,
    r: usize,
    nref: Option<ObjRef>,
    od: &Dict,
    nd: &Dict,
) -> Result<Vec<Modification>, PdfError> {
    use ModificationKind as K;
    let mut out = Vec::new();
    for k in changed_keys(file, od, nd) {
        match k.as_slice() {
            b"DSS" => out.push(m(
                r,
                K::Dss,
                nref,
                true,
                "document security store added to the catalog".into(),
            )),
            b"AcroForm" => match (od.get_key("AcroForm"), nd.get_key("AcroForm")) {
                (None, Some(_)) => out.push(m(
                    r,
                    K::FormFields,
                    nref,
                    true,
                    "interactive form added to the catalog".into(),
                )),
                (Some(Object::Dict(a)), Some(Object::Dict(b))) => {
                    let r0 = nref.unwrap_or(ObjRef {
                        num: 0,
                        generation: 0,
                    });
                    out.extend(acroform_change(file, r, r0, a, b)?);
                }
                _ => out.push(m(
                    r,
                    K::Catalog,
                    nref,
                    false,
                    "the catalog's /AcroForm was replaced or removed".into(),
                )),
            },
            other => out.push(m(
                r,
                K::Catalog,
                nref,
                false,
                format!("the document catalog's {} changed", key_str(other)),
            )),
        }
    }
    Ok(out)
}

fn acroform_change(
    file: &PdfFile<'_>,
    r: usize,
    nref: ObjRef,
    od: &Dict,
    nd: &Dict,
) -> Result<Vec<Modification>, PdfError> {
    use ModificationKind as K;
    let mut out = Vec::new();
    for k in changed_keys(file, od, nd) {
        match k.as_slice() {
            b"Fields" => match (od.get_key("Fields"), nd.get_key("Fields")) {
                (Some(Object::Array(a)), Some(Object::Array(b))) => {
                    out.extend(array_change(file, r, nref, Role::Fields, a, b)?)
                }
                (None, Some(Object::Array(b))) => {
                    out.extend(array_change(file, r, nref, Role::Fields, &[], b)?)
                }
                (_, Some(Object::Ref(_))) => out.push(m(
                    r,
                    K::FormFields,
                    Some(nref),
                    true,
                    "the form field list was moved to a new object".into(),
                )),
                _ => out.push(m(
                    r,
                    K::FormFieldValue,
                    Some(nref),
                    false,
                    "the form field list was removed".into(),
                )),
            },
            b"SigFlags" | b"DR" => out.push(m(
                r,
                K::FormFields,
                Some(nref),
                true,
                format!("the interactive form's {} changed", key_str(&k)),
            )),
            other => out.push(m(
                r,
                K::FormFieldValue,
                Some(nref),
                false,
                format!("the interactive form's {} changed", key_str(other)),
            )),
        }
    }
    Ok(out)
}

fn page_change(
    file: &PdfFile<'_>,
    r: usize,
    nref: ObjRef,
    od: &Dict,
    nd: &Dict,
) -> Result<Vec<Modification>, PdfError> {
    use ModificationKind as K;
    let mut out = Vec::new();
    let num = nref.num;
    for k in changed_keys(file, od, nd) {
        match k.as_slice() {
            b"Annots" => {
                let oa = match od.get_key("Annots") {
                    Some(a) => file.resolve(r - 1, a)?,
                    None => None,
                };
                let na = match nd.get_key("Annots") {
                    Some(a) => file.resolve(r, a)?,
                    None => None,
                };
                let oa: &[Object] = oa.as_deref().and_then(Object::array).unwrap_or_default();
                let na: &[Object] = na.as_deref().and_then(Object::array).unwrap_or_default();
                out.extend(array_change(file, r, nref, Role::Annots, oa, na)?);
            }
            b"Contents" => out.push(m(
                r,
                K::PageContent,
                Some(nref),
                false,
                format!("the content of page {num} changed"),
            )),
            b"Resources" => out.push(m(
                r,
                K::PageResources,
                Some(nref),
                false,
                format!("the resources of page {num} changed"),
            )),
            other => out.push(m(
                r,
                K::Page,
                Some(nref),
                false,
                format!("page {num}'s {} changed", key_str(other)),
            )),
        }
    }
    Ok(out)
}

/// `/Fields` or `/Annots`: every old element kept, every new one a signature.
fn array_change(
    file: &PdfFile<'_>,
    r: usize,
    nref: ObjRef,
    role: Role,
    old: &[Object],
    new: &[Object],
) -> Result<Vec<Modification>, PdfError> {
    use ModificationKind as K;
    let mut out = Vec::new();
    let mut remaining: Vec<&Object> = new.iter().collect();
    for o in old {
        match remaining.iter().position(|n| *n == o) {
            Some(i) => {
                remaining.remove(i);
            }
            None => {
                let (kind, what) = if role == Role::Fields {
                    (K::FormFieldValue, "a form field was removed")
                } else {
                    (K::Annotation, "an annotation was removed from a page")
                };
                out.push(m(r, kind, Some(nref), false, what.into()));
            }
        }
    }
    for n in remaining {
        let d = file.resolve(r, n)?;
        let sig = match d.as_deref().and_then(Object::dict) {
            Some(d) => {
                let widget_ok = role == Role::Fields || d.name_of("Subtype") == Some(b"Widget");
                widget_ok && is_sig_field(file, r, d)?
            }
            None => false,
        };
        let what = n
            .reference()
            .map(|x| x.to_string())
            .unwrap_or_else(|| "a direct object".into());
        if sig {
            out.push(m(
                r,
                K::SignatureField,
                Some(nref),
                true,
                format!("signature field {what} added"),
            ));
        } else if role == Role::Fields {
            out.push(m(
                r,
                K::FormFieldValue,
                Some(nref),
                false,
                format!("form field {what} that is not a signature added"),
            ));
        } else {
            out.push(m(
                r,
                K::Annotation,
                Some(nref),
                false,
                format!("annotation {what} that is not a signature widget added to a page"),
            ));
        }
    }
    Ok(out)
}

/// Offsets in `[start, end)` that look like the start of a cross-reference
/// section: `xref` at the start of a line, or an object of `/Type /XRef`.
fn xref_like_offsets(file: &PdfFile<'_>, start: usize, end: usize) -> Vec<usize> {
    let Some(region) = file.data.get(start..end) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(p) = region
        .get(i..)
        .and_then(|h| h.windows(4).position(|w| w == b"xref"))
    {
        let at = i + p;
        let line_start = at == 0 || matches!(region.get(at - 1), Some(b'\n' | b'\r'));
        let after_ok = region
            .get(at + 4)
            .is_none_or(|b| super::syntax::is_white(*b));
        let not_startxref = !(at >= 5 && region.get(at - 5..at) == Some(b"start"));
        if line_start && after_ok && not_startxref {
            out.push(start + at);
        }
        i = at + 4;
    }
    let mut j = 0;
    for pat in [&b"/Type/XRef"[..], b"/Type /XRef"] {
        j = 0;
        while let Some(p) = region
            .get(j..)
            .and_then(|h| h.windows(pat.len()).position(|w| w == pat))
        {
            let at = j + p;
            // The object header before it: the section starts there.
            let hdr = region[..at].windows(3).rposition(|w| w == b"obj");
            if let Some(h) = hdr {
                let line = region[..h]
                    .iter()
                    .rposition(|b| *b == b'\n' || *b == b'\r')
                    .map_or(0, |x| x + 1);
                out.push(start + line);
            }
            j = at + pat.len();
        }
    }
    let _ = j;
    out
}
