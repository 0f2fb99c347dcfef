#!/usr/bin/env python3
"""pyHanko as a PDF signature peer for kyso's tests (tests/src/pdf_peers.rs drives it).

Subcommands (every one prints one JSON document on stdout; errors go to stderr, exit 1):

  sign      PAdES-sign a PDF (ETSI.CAdES.detached, SHA-256) as an incremental update: a new
            field, optionally visible (a solid-colour stamp, so a rendered page shows exactly
            where pyHanko put it). Levels: --timestamp-url (or --tsa-url) adds a signature
            timestamp (B-T);
            --embed-validation-info a DSS with the paths' certificates and revocation data
            fetched through --rewrite (B-LT, trusting --root); --use-pades-lta then a document
            timestamp (B-LTA).
  validate  validate every signature of a PDF against given trust roots, intermediates and
            revocation data; --repeat N times the validation for benchmarks. With --ltv,
            the PAdES long-term validation instead (ETSI EN 319 102-1 §5.6.3, pyHanko's
            ades_lta_validation, the level PADES_LTA): the document time-stamps as the
            evidence record, revocation data from the DSS only (no fetching).
  tamper    make test variants of a signed PDF: a later incremental update changing page 1's
            content, one adding a non-signature annotation, or a byte flipped inside the
            signed range.

Revocation for `validate`: CRLs and OCSP responses given as files (no fetching), or fetching
allowed with --rewrite FROM=TO pairs that map the URL prefixes inside the test certificates
(http://ocsp.kyso.test/ ...) onto the loopback servers of the tests.
"""

import argparse
import asyncio
import dataclasses
import json
import logging
import sys
import time
from datetime import datetime, timezone

from asn1crypto import pem, x509
from pyhanko.pdf_utils import generic, layout
from pyhanko.pdf_utils.images import PdfImage
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko.stamp import StaticStampStyle
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.fetchers.aiohttp_fetchers import AIOHttpFetcherBackend
from pyhanko_certvalidator.fetchers.aiohttp_fetchers.util import LazySession


def fail(msg):
    print(f"pyhanko_tool: {msg}", file=sys.stderr)
    sys.exit(1)


def der_blocks(path):
    """Every DER object in a PEM (possibly a bundle) or DER file."""
    with open(path, "rb") as f:
        data = f.read()
    if pem.detect(data):
        return [der for _type, _headers, der in pem.unarmor(data, multiple=True)]
    return [data]


def load_certs(paths):
    return [x509.Certificate.load(d) for p in paths for d in der_blocks(p)]


# ---------------------------------------------------------------------------------------
# sign


def parse_rect(text):
    parts = [float(v) for v in text.split(",")]
    if len(parts) != 4:
        fail(f"--rect wants x1,y1,x2,y2, got {text!r}")
    # pyHanko wants integral user-space coordinates for a field box.
    return tuple(int(round(v)) for v in parts)


def solid_stamp(rgb_hex):
    """A stamp that is one flat colour filling the whole box: easy to find on a rendering."""
    from PIL import Image

    rgb = tuple(int(rgb_hex[i : i + 2], 16) for i in (0, 2, 4))
    img = Image.new("RGB", (8, 8), rgb)
    return StaticStampStyle(
        background=PdfImage(img),
        background_opacity=1.0,
        border_width=0,
        background_layout=layout.SimpleBoxLayoutRule(
            x_align=layout.AxisAlignment.ALIGN_MIN,
            y_align=layout.AxisAlignment.ALIGN_MIN,
            margins=layout.Margins(0, 0, 0, 0),
            inner_content_scaling=layout.InnerScaling.STRETCH_FILL,
        ),
    )


def cmd_sign(a):
    signer = signers.SimpleSigner.load(
        a.key, a.cert, ca_chain_files=tuple(a.chain) if a.chain else None
    )
    if signer is None:
        fail(f"cannot load the key {a.key} or the certificate {a.cert}")
    meta = signers.PdfSignatureMetadata(
        field_name=a.field,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=a.reason,
        location=a.location,
    )
    rect = parse_rect(a.rect) if a.rect else None
    timestamper = None
    if a.timestamp_url:
        from pyhanko.sign.timestamps import HTTPTimeStamper

        timestamper = HTTPTimeStamper(a.timestamp_url)
    backend = None
    if a.embed_validation_info or a.use_pades_lta:
        if not timestamper and a.use_pades_lta:
            fail("--use-pades-lta needs --timestamp-url")
        a.moment, a.retroactive_revinfo = None, False
        a.revocation_mode = "soft-fail"
        vc, backend = make_context(a, load_certs(a.root), [], [], [])
        meta = dataclasses.replace(
            meta,
            embed_validation_info=True,
            use_pades_lta=a.use_pades_lta,
            validation_context=vc,
        )
    with open(a.input, "rb") as inf:
        w = IncrementalPdfFileWriter(inf, strict=False)
        if w.prev.encrypted:
            w.encrypt(a.password.encode())
        field_spec = fields.SigFieldSpec(
            sig_field_name=a.field, on_page=a.page - 1, box=rect
        )
        pdf_signer = signers.PdfSigner(
            meta,
            signer=signer,
            timestamper=timestamper,
            stamp_style=solid_stamp(a.color) if rect else None,
            new_field_spec=field_spec,
        )

        async def run():
            try:
                with open(a.output, "wb") as outf:
                    await pdf_signer.async_sign_pdf(w, output=outf)
            finally:
                if backend is not None:
                    await backend.close()

        asyncio.run(run())
    print(
        json.dumps(
            {
                "output": a.output,
                "field": a.field,
                "page": a.page,
                "rect": list(rect) if rect else None,
                "color": a.color if rect else None,
            }
        )
    )


# ---------------------------------------------------------------------------------------
# validate


class RewritingSession:
    """An aiohttp session whose GET/POST URLs are rewritten by prefix first."""

    def __init__(self, inner, rewrites):
        self._inner = inner
        self._rewrites = rewrites

    def _url(self, url):
        for src, dst in self._rewrites:
            if url.startswith(src):
                return dst + url[len(src) :]
        return url

    def get(self, url, **kw):
        return self._inner.get(self._url(str(url)), **kw)

    def post(self, url, **kw):
        return self._inner.post(self._url(str(url)), **kw)


class RewritingLazySession(LazySession):
    """pyHanko's fetchers take a LazySession and call get_session() for every request."""

    def __init__(self, rewrites):
        super().__init__()
        self._rewrites = rewrites

    def get_session(self):
        return RewritingSession(super().get_session(), self._rewrites)


def parse_rewrite(text):
    if "=" not in text:
        fail(f"--rewrite wants FROM=TO, got {text!r}")
    src, dst = text.split("=", 1)
    return src, dst


def make_context(a, roots, others, crls, ocsps):
    """A fresh ValidationContext (no cache carried between validations) and the fetcher
    backend to close afterwards, if fetching is on."""
    backend = None
    kw = dict(
        trust_roots=roots,
        other_certs=others,
        crls=crls,
        ocsps=ocsps,
        revocation_mode=a.revocation_mode,
    )
    if a.moment:
        kw["moment"] = datetime.fromisoformat(a.moment).astimezone(timezone.utc)
    if a.rewrite:
        if a.moment:
            fail("--moment cannot be combined with fetching (--rewrite)")
        kw["allow_fetching"] = True
        backend = AIOHttpFetcherBackend(
            session=RewritingLazySession([parse_rewrite(r) for r in a.rewrite]),
            per_request_timeout=10,
        )
        kw["fetcher_backend"] = backend
    else:
        kw["allow_fetching"] = False
    if a.retroactive_revinfo:
        kw["retroactive_revinfo"] = True
    return ValidationContext(**kw), backend


def enum_name(v):
    return None if v is None else getattr(v, "name", str(v))


def iso(dt):
    return None if dt is None else dt.isoformat()


def describe(emb, status):
    rev = status.revocation_details
    br = [int(x) for x in emb.byte_range] if emb.byte_range is not None else None
    return {
        "field": emb.field_name,
        "intact": bool(status.intact),
        "valid": bool(status.valid),
        "trusted": bool(status.trusted),
        "revoked": bool(status.revoked),
        "coverage": enum_name(status.coverage),
        "modification_level": enum_name(status.modification_level),
        "docmdp_ok": status.docmdp_ok,
        "bottom_line": bool(status.bottom_line),
        "summary": status.summary(),
        "trust_problem": enum_name(status.trust_problem_indic),
        "revocation_date": iso(rev.revocation_date) if rev else None,
        "revocation_reason": (rev.revocation_reason.native if rev else None),
        "signer": status.signing_cert.subject.human_friendly,
        "md_algorithm": status.md_algorithm,
        "mechanism": status.pkcs7_signature_mechanism,
        "signer_reported_time": iso(status.signer_reported_dt),
        "validation_time": iso(status.validation_time),
        "byte_range": br,
        "subfilter": str(emb.sig_object.get("/SubFilter", "")).lstrip("/"),
        "error": None,
        "details": status.pretty_print_details(),
    }


async def validate_once(a, pdf_bytes, roots, others, crls, ocsps):
    import io

    reader = PdfFileReader(io.BytesIO(pdf_bytes), strict=False)
    if reader.encrypted:
        reader.decrypt(a.password.encode())
    out = []
    for emb in reader.embedded_regular_signatures:
        vc, backend = make_context(a, roots, others, crls, ocsps)
        try:
            status = await async_validate_pdf_signature(emb, vc)
            out.append(describe(emb, status))
        except Exception as e:  # pyHanko raises on malformed signatures: a verdict too
            out.append(
                {
                    "field": emb.field_name,
                    "intact": False,
                    "valid": False,
                    "trusted": False,
                    "revoked": False,
                    "coverage": None,
                    "modification_level": None,
                    "docmdp_ok": None,
                    "bottom_line": False,
                    "summary": "ERROR",
                    "error": f"{type(e).__name__}: {e}",
                }
            )
        finally:
            if backend is not None:
                await backend.close()
    return out


async def validate_ltv(pdf_bytes, roots, others, password):
    """PAdES B-LTA validation of every regular signature: trust from the roots, revocation
    data required where a certificate names a source, and only what the document carries
    (its DSS and CMS) may answer: no fetching."""
    import io

    from pyhanko.sign.validation import ades
    from pyhanko.sign.validation.policy_decl import (
        LocalKnowledge,
        PdfSignatureValidationSpec,
        RevinfoOnlineFetchingRule,
        RevocationInfoGatheringSpec,
        SignatureValidationSpec,
    )
    from pyhanko_certvalidator.registry import SimpleTrustManager
    from pyhanko_certvalidator.context import CertValidationPolicySpec
    from pyhanko_certvalidator.policy_decl import (
        CertRevTrustPolicy,
        RevocationCheckingPolicy,
        RevocationCheckingRule,
    )

    reader = PdfFileReader(io.BytesIO(pdf_bytes), strict=False)
    if reader.encrypted:
        reader.decrypt(password.encode())
    rule = RevocationCheckingRule.CHECK_IF_DECLARED
    policy = CertValidationPolicySpec(
        trust_manager=SimpleTrustManager.build(trust_roots=roots),
        revinfo_policy=CertRevTrustPolicy(
            RevocationCheckingPolicy(ee_certificate_rule=rule, intermediate_ca_cert_rule=rule)
        ),
    )
    spec = PdfSignatureValidationSpec(
        SignatureValidationSpec(
            cert_validation_policy=policy,
            revinfo_gathering_policy=RevocationInfoGatheringSpec(
                online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY
            ),
            local_knowledge=LocalKnowledge(known_certs=others),
        )
    )
    out = []
    for emb in reader.embedded_regular_signatures:
        try:
            r = await ades.ades_lta_validation(emb, spec)
            sub = r.ades_subindic
            out.append(
                {
                    "field": emb.field_name,
                    "indication": enum_name(sub.status),
                    "sub_indication": enum_name(sub),
                    "passed": enum_name(sub.status) == "PASSED",
                    "best_signature_time": iso(r.best_signature_time),
                    "oldest_evidence_record_timestamp": iso(
                        r.oldest_evidence_record_timestamp
                    ),
                    "error": None,
                    "details": (
                        r.api_status.pretty_print_details() if r.api_status is not None else None
                    ),
                }
            )
        except Exception as e:
            out.append(
                {
                    "field": emb.field_name,
                    "indication": None,
                    "sub_indication": None,
                    "passed": False,
                    "error": f"{type(e).__name__}: {e}",
                }
            )
    timestamps = [
        {"field": t.field_name} for t in reader.embedded_timestamp_signatures
    ]
    return out, timestamps


def cmd_validate(a):
    with open(a.input, "rb") as f:
        pdf_bytes = f.read()
    roots = load_certs(a.root)
    if not roots:
        fail("validate needs at least one --root")
    others = load_certs(a.intermediate)
    crls = [d for p in a.crl for d in der_blocks(p)]
    ocsps = [d for p in a.ocsp for d in der_blocks(p)]
    if a.ltv:
        sigs, stamps = asyncio.run(validate_ltv(pdf_bytes, roots, others, a.password))
        print(json.dumps({"signatures": sigs, "document_timestamps": stamps}, ensure_ascii=False))
        return

    async def run():
        sigs = await validate_once(a, pdf_bytes, roots, others, crls, ocsps)
        secs = None
        if a.repeat > 0:
            started = time.perf_counter()
            for _ in range(a.repeat):
                await validate_once(a, pdf_bytes, roots, others, crls, ocsps)
            secs = (time.perf_counter() - started) / a.repeat
        return sigs, secs

    sigs, secs = asyncio.run(run())
    print(
        json.dumps(
            {"signatures": sigs, "seconds_per_validation": secs, "repeat": a.repeat},
            ensure_ascii=False,
        )
    )


# ---------------------------------------------------------------------------------------
# tamper


def last_byte_range(pdf_bytes):
    import io

    reader = PdfFileReader(io.BytesIO(pdf_bytes), strict=False)
    sigs = reader.embedded_regular_signatures
    if not sigs:
        fail("tamper: the input has no signature")
    return [int(x) for x in sigs[-1].byte_range]


def tamper_content(a):
    """A later incremental update drawing a red bar onto page 1 (a new content stream)."""
    with open(a.input, "rb") as inf:
        w = IncrementalPdfFileWriter(inf, strict=False)
        stream = generic.StreamObject(stream_data=b"q 1 0 0 rg 72 72 200 24 re f Q\n")
        ref = w.add_object(stream)
        w.add_stream_to_page(0, ref)
        with open(a.output, "wb") as outf:
            w.write(outf)
    return {"kind": "content"}


def tamper_annotation(a):
    """A later incremental update adding a sticky-note (/Text) annotation to page 1."""
    with open(a.input, "rb") as inf:
        w = IncrementalPdfFileWriter(inf, strict=False)
        page_ref, _res = w.find_page_for_modification(0)
        page = page_ref.get_object()
        annot = generic.DictionaryObject(
            {
                generic.NameObject("/Type"): generic.NameObject("/Annot"),
                generic.NameObject("/Subtype"): generic.NameObject("/Text"),
                generic.NameObject("/Rect"): generic.ArrayObject(
                    [generic.FloatObject(v) for v in (72, 700, 96, 724)]
                ),
                generic.NameObject("/Contents"): generic.TextStringObject(
                    "Ghi chú thêm sau khi ký"
                ),
                generic.NameObject("/P"): page_ref,
            }
        )
        annot_ref = w.add_object(annot)
        annots = page.get("/Annots")
        if annots is None:
            page[generic.NameObject("/Annots")] = generic.ArrayObject([annot_ref])
            w.update_container(page)
        else:
            annots.append(annot_ref)
            raw = page.raw_get("/Annots")
            if isinstance(raw, generic.IndirectObject):
                w.mark_update(raw)
            else:
                w.update_container(page)
        with open(a.output, "wb") as outf:
            w.write(outf)
    return {"kind": "annotation"}


def tamper_flip(a):
    """One bit flipped inside the first signed range of the last signature (so inside every
    signature's range), where the file stays well-formed: the verdict is then about the digest
    alone, not a parse error. By default a byte of the comment on the second line (the binary
    marker every writer puts there; `qpdf --check` stays clean), else the data of the first
    stream in the range; --offset picks the byte."""
    with open(a.input, "rb") as f:
        data = bytearray(f.read())
    br = last_byte_range(bytes(data))
    start, length = br[0], br[1]
    if a.offset is not None:
        off = a.offset
    else:
        nl = data.find(b"\n", 0, 32)
        if nl >= 0 and data[nl + 1 : nl + 2] == b"%" and data[nl + 2 : nl + 3] not in (b"\r", b"\n"):
            off = nl + 2
        else:
            i = data.find(b"stream", start, start + length)
            while i >= 0 and data[i - 3 : i] == b"end":
                i = data.find(b"stream", i + 6, start + length)
            if i < 0:
                fail("tamper: no stream inside the first signed range")
            off = i + len(b"stream")
            while data[off] in (0x0D, 0x0A):
                off += 1
            off += 8
    if not (start <= off < start + length):
        fail(f"tamper: offset {off} is outside the first signed range {br}")
    data[off] ^= 0x01
    with open(a.output, "wb") as f:
        f.write(bytes(data))
    return {"kind": "flip-byte", "offset": off, "byte_range": br}


def cmd_tamper(a):
    kinds = {"content": tamper_content, "annotation": tamper_annotation, "flip-byte": tamper_flip}
    result = kinds[a.kind](a)
    result["output"] = a.output
    print(json.dumps(result))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("sign")
    s.add_argument("--in", dest="input", required=True)
    s.add_argument("--out", dest="output", required=True)
    s.add_argument("--key", required=True, help="PEM private key (unencrypted)")
    s.add_argument("--cert", required=True, help="PEM signer certificate")
    s.add_argument("--chain", action="append", default=[], help="PEM CA certificates to embed")
    s.add_argument("--field", required=True, help="new signature field name")
    s.add_argument("--page", type=int, default=1, help="1-based page of a visible field")
    s.add_argument("--rect", help="x1,y1,x2,y2 in PDF points: a visible signature")
    s.add_argument("--color", default="1f4fbf", help="RRGGBB of the visible stamp")
    s.add_argument("--reason")
    s.add_argument("--location")
    s.add_argument("--password", default="", help="user password of an encrypted input")
    s.add_argument(
        "--timestamp-url", "--tsa-url", help="RFC 3161 TSA: a signature timestamp (B-T)"
    )
    s.add_argument("--embed-validation-info", action="store_true", help="a DSS (B-LT)")
    s.add_argument("--use-pades-lta", action="store_true", help="a document timestamp (B-LTA)")
    s.add_argument("--root", action="append", default=[], help="trust roots for B-LT (PEM/DER)")
    s.add_argument(
        "--rewrite", action="append", default=[], help="FROM=TO URL prefix for B-LT fetching"
    )
    s.set_defaults(func=cmd_sign)

    v = sub.add_parser("validate")
    v.add_argument("--in", dest="input", required=True)
    v.add_argument("--root", action="append", default=[], help="trust root file (PEM/DER)")
    v.add_argument("--intermediate", action="append", default=[], help="other certificates")
    v.add_argument("--crl", action="append", default=[], help="CRL file(s), PEM bundle or DER")
    v.add_argument("--ocsp", action="append", default=[], help="DER OCSP response file(s)")
    v.add_argument(
        "--rewrite", action="append", default=[], help="FROM=TO URL prefix; enables fetching"
    )
    v.add_argument("--moment", help="ISO 8601 validation time (no fetching then)")
    v.add_argument(
        "--revocation-mode", default="hard-fail", choices=["soft-fail", "hard-fail", "require"]
    )
    v.add_argument("--retroactive-revinfo", action="store_true")
    v.add_argument(
        "--ltv", action="store_true", help="PAdES B-LTA validation from the DSS, no fetching"
    )
    v.add_argument("--password", default="", help="user password of an encrypted input")
    v.add_argument("--repeat", type=int, default=0, help="time N more validations")
    v.set_defaults(func=cmd_validate)

    t = sub.add_parser("tamper")
    t.add_argument("--in", dest="input", required=True)
    t.add_argument("--out", dest="output", required=True)
    t.add_argument("--kind", required=True, choices=["content", "annotation", "flip-byte"])
    t.add_argument("--offset", type=int, help="flip-byte: the byte to change")
    t.set_defaults(func=cmd_tamper)

    p.add_argument("--verbose", action="store_true", help="pyHanko's log on stderr")
    a = p.parse_args()
    # pyHanko logs every failed check with a traceback; the JSON carries the verdicts.
    logging.basicConfig(level=logging.INFO if a.verbose else logging.CRITICAL)
    a.func(a)


if __name__ == "__main__":
    main()
