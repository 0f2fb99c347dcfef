//! The one rendering of X.509 names as text, used wherever a name is shown or
//! compared as a string: the verifier's reports, the registry's issuer and serial
//! look-up, the command line.
//!
//! RFC 4514 order (the most specific RDN first, as `openssl -nameopt RFC2253` prints
//! it) and RFC 4514 escaping, but values as UTF-8: x509-cert's own `Display` escapes
//! every non-ASCII byte, which makes a Vietnamese name unreadable, and two programs
//! that render the same name differently cannot find each other's records.

use const_oid::ObjectIdentifier;
use const_oid::db::{rfc3280, rfc4519};
use der::{Encode, Tag, Tagged};
use x509_cert::name::Name;

/// RFC 4514 rendering of a name with UTF-8 values: `CN=Nguyễn Văn A,O=Bộ Nội vụ,C=VN`.
pub fn rfc4514(name: &Name) -> String {
    let mut parts: Vec<String> = Vec::with_capacity(name.0.len());
    for rdn in name.0.iter().rev() {
        let atvs: Vec<String> = rdn
            .0
            .iter()
            .map(|atv| {
                let value = match directory_string(&atv.value) {
                    Some(s) => escape(&s),
                    // RFC 4514 2.4: a value that is not a string is `#` and the hex of its
                    // BER encoding.
                    None => format!("#{}", hex::encode(atv.value.to_der().unwrap_or_default())),
                };
                format!("{}={value}", short_name(atv.oid))
            })
            .collect();
        parts.push(atvs.join("+"));
    }
    parts.join(",")
}

/// The first value of an attribute of a name, as text whatever its string type
/// (a value that is not a string comes out as the hex of its content).
pub fn attribute(name: &Name, oid: ObjectIdentifier) -> Option<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|atv| atv.oid == oid)
        .map(|atv| directory_string(&atv.value).unwrap_or_else(|| hex::encode(atv.value.value())))
}

/// A DirectoryString value (UTF8String, PrintableString, BMPString, ...) as text;
/// `None` for a value of another type.
pub fn directory_string(v: &der::Any) -> Option<String> {
    let bytes = v.value();
    match v.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::VisibleString => {
            Some(String::from_utf8_lossy(bytes).into_owned())
        }
        // TeletexString is in practice Latin-1.
        Tag::TeletexString => Some(bytes.iter().map(|b| char::from(*b)).collect()),
        Tag::BmpString => {
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            Some(String::from_utf16_lossy(&units))
        }
        _ => None,
    }
}

/// The RFC 4514 keyword of an attribute type (those of RFC 4514 3, and the usual
/// ones of the certificates kyso sees), or its dotted OID.
fn short_name(oid: ObjectIdentifier) -> String {
    let known = match oid {
        rfc4519::CN => "CN",
        rfc4519::L => "L",
        rfc4519::ST => "ST",
        rfc4519::O => "O",
        rfc4519::OU => "OU",
        rfc4519::C => "C",
        rfc4519::STREET => "STREET",
        rfc4519::DC => "DC",
        rfc4519::UID => "UID",
        rfc4519::TITLE => "title",
        rfc4519::SERIAL_NUMBER => "serialNumber",
        rfc4519::GIVEN_NAME => "GN",
        rfc4519::SN => "SN",
        rfc3280::EMAIL_ADDRESS => "emailAddress",
        other => return other.to_string(),
    };
    known.to_owned()
}

/// RFC 4514 2.4 escaping: `"+,;<>\` and NUL anywhere, `#` and space at the start,
/// space at the end. Other characters, non-ASCII included, stay as they are.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let last = s.chars().count().saturating_sub(1);
    for (i, c) in s.chars().enumerate() {
        match c {
            '\0' => out.push_str("\\00"),
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::str::FromStr;

    use der::asn1::{BmpString, SetOfVec, Utf8StringRef};
    use x509_cert::attr::AttributeTypeAndValue;
    use x509_cert::name::{RdnSequence, RelativeDistinguishedName};

    use super::*;

    fn atv(oid: ObjectIdentifier, value: der::Any) -> AttributeTypeAndValue {
        AttributeTypeAndValue { oid, value }
    }

    fn utf8(s: &str) -> der::Any {
        der::Any::encode_from(&Utf8StringRef::new(s).unwrap()).unwrap()
    }

    fn rdn(atvs: Vec<AttributeTypeAndValue>) -> RelativeDistinguishedName {
        RelativeDistinguishedName(SetOfVec::try_from(atvs).unwrap())
    }

    #[test]
    fn vietnamese_utf8_values_stay_readable_most_specific_first() {
        let name = RdnSequence(vec![
            rdn(vec![atv(rfc4519::C, utf8("VN"))]),
            rdn(vec![atv(rfc4519::O, utf8("Ban Cơ yếu Chính phủ"))]),
            rdn(vec![atv(
                rfc4519::CN,
                utf8("Cục Chứng thực số và Bảo mật thông tin"),
            )]),
        ]);
        assert_eq!(
            rfc4514(&name),
            "CN=Cục Chứng thực số và Bảo mật thông tin,O=Ban Cơ yếu Chính phủ,C=VN"
        );
        assert_eq!(
            attribute(&name, rfc4519::O).as_deref(),
            Some("Ban Cơ yếu Chính phủ")
        );
    }

    #[test]
    fn special_characters_are_escaped_as_rfc_4514_says() {
        let name = RdnSequence(vec![rdn(vec![atv(
            rfc4519::CN,
            utf8("#Sở, \"A\"+B; <C> \\ end "),
        )])]);
        assert_eq!(
            rfc4514(&name),
            "CN=\\#Sở\\, \\\"A\\\"\\+B\\; \\<C\\> \\\\ end\\ "
        );
        let lead = RdnSequence(vec![rdn(vec![atv(rfc4519::CN, utf8(" x"))])]);
        assert_eq!(rfc4514(&lead), "CN=\\ x");
    }

    #[test]
    fn multi_valued_rdns_join_with_plus_and_bmp_strings_decode() {
        let bmp = der::Any::encode_from(&BmpString::from_utf8("Hà Nội").unwrap()).unwrap();
        let name = RdnSequence(vec![
            rdn(vec![atv(rfc4519::L, bmp)]),
            rdn(vec![
                atv(rfc4519::CN, utf8("Trần Thị B")),
                atv(rfc4519::UID, utf8("CMND:012345678")),
            ]),
        ]);
        let s = rfc4514(&name);
        assert!(s.ends_with(",L=Hà Nội"), "{s}");
        assert!(s.contains("CN=Trần Thị B"), "{s}");
        assert!(s.contains("+"), "{s}");
    }

    #[test]
    fn non_string_values_are_hex_of_their_encoding_and_unknown_types_dotted() {
        let oid = ObjectIdentifier::from_str("1.2.3.4").unwrap();
        let int = der::Any::encode_from(&5u8).unwrap();
        let name = RdnSequence(vec![rdn(vec![atv(oid, int)])]);
        assert_eq!(rfc4514(&name), "1.2.3.4=#020105");
    }
}
