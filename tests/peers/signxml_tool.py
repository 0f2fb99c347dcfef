"""The XML signature peer (signxml, on lxml): signs and verifies edXML envelopes for the
interop tests (tests/tests/verifier/edxml_dsig.rs).

  signxml_tool.py sign IN OUT KEY CHAIN_PEM SIGNATURE_ALGORITHM C14N_URI [keyvalue]
      (keyvalue: a ds:KeyValue beside the X509Data). IN has an empty <ds:Signature Id="placeholder"/> where the signature goes.
  signxml_tool.py xades-sign IN OUT KEY CHAIN_PEM SIGNATURE_ALGORITHM C14N_URI
      XAdES-BES (XAdESSigner: SigningTime, SigningCertificateV2, KeyValue).
  signxml_tool.py verify IN ROOT_PEM
      exit 0 and "OK" when the envelope verifies against ROOT_PEM, else exit 1.
"""
import sys

from lxml import etree
from signxml import SignatureConfiguration, XMLSigner, XMLVerifier, methods
from signxml.xades import XAdESSigner


def sign(src, out, key, chain, algorithm, c14n, key_value=False, xades=False):
    root = etree.parse(src).getroot()
    with open(key, "rb") as f:
        key_pem = f.read()
    with open(chain) as f:
        chain_pem = f.read()
    signer = XAdESSigner if xades else XMLSigner
    signed = signer(
        method=methods.enveloped,
        signature_algorithm=algorithm,
        digest_algorithm="sha256",
        c14n_algorithm=c14n,
    ).sign(root, key=key_pem, cert=chain_pem, always_add_key_value=key_value)
    with open(out, "wb") as f:
        f.write(etree.tostring(signed, xml_declaration=True, encoding="UTF-8"))


def verify(src, root_pem):
    with open(src, "rb") as f:
        data = f.read()
    try:
        XMLVerifier().verify(
            data,
            ca_pem_file=root_pem,
            expect_config=SignatureConfiguration(location=".//", expect_references=1),
        )
    except Exception as e:  # any refusal is a failed verification
        print(f"FAILED: {e}")
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    if sys.argv[1] == "sign":
        sign(*sys.argv[2:8], key_value=sys.argv[8:9] == ["keyvalue"])
    elif sys.argv[1] == "xades-sign":
        sign(*sys.argv[2:8], key_value=True, xades=True)
    elif sys.argv[1] == "verify":
        verify(*sys.argv[2:4])
    else:
        sys.exit(f"unknown command {sys.argv[1]}")
