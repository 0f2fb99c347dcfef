//! Organisation codes (mã định danh, Decision 20/2020/QĐ-TTg) and exchange addresses (N6).
//!
//! A code is four dot-separated levels written least significant first, `NNN.NN.NN.Xnn`:
//! level 4 (three digits), level 3 and level 2 (two digits each), level 1 (a capital letter
//! and two digits: `G22` the government office, `H34` a province). Zeros mean the level is
//! unused. A unit hangs under the unit one level up, so a used level below an unused one
//! names no unit and is refused; the parent is the code with the most specific used level
//! zeroed. The national data exchange addresses a system as `VN:GOV:<code>:<subsystem>`.

use std::fmt;

use crate::{EdxmlError, error::Result};

/// The longest subsystem name kyso reads in an exchange address.
const MAX_SUBSYSTEM_LEN: usize = 64;

/// An organisation code, `NNN.NN.NN.Xnn` (N6): kyso-pki's, the one parser of the project,
/// read exactly as a document writes it.
pub use kyso_pki::orgcode::OrgCode as OrganId;

/// Reads a document's organisation code exactly (no blanks, no address form) (N6).
pub fn parse_organ_id(text: &str) -> Result<OrganId> {
    OrganId::parse_exact(text).map_err(|e| bad(text, &e.to_string()))
}

/// A system on the national data exchange: `VN:GOV:<code>:<subsystem>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExchangeAddress {
    /// The organisation that runs the system.
    pub organ: OrganId,
    /// The system's name within the organisation (letters, digits, `-`, `_`, `.`).
    pub subsystem: String,
}

impl ExchangeAddress {
    /// Reads an address; the code must be a valid [`OrganId`].
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| EdxmlError::Format(format!("exchange address {text:?}: {why} (N6)"));
        if text.len() > "VN:GOV:".len() + kyso_pki::orgcode::MAX_LEN + 1 + MAX_SUBSYSTEM_LEN {
            return Err(bad("too long"));
        }
        let rest = text
            .strip_prefix("VN:GOV:")
            .ok_or_else(|| bad("does not start with VN:GOV:"))?;
        let (code, subsystem) = rest
            .split_once(':')
            .ok_or_else(|| bad("no subsystem after the organisation code"))?;
        let organ = parse_organ_id(code)?;
        if subsystem.is_empty()
            || subsystem.len() > MAX_SUBSYSTEM_LEN
            || !subsystem
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(bad(
                "the subsystem is empty, too long or not letters, digits, - _ .",
            ));
        }
        Ok(Self {
            organ,
            subsystem: subsystem.to_owned(),
        })
    }
}

impl fmt::Display for ExchangeAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VN:GOV:{}:{}", self.organ, self.subsystem)
    }
}

fn bad(text: &str, why: &str) -> EdxmlError {
    // The code is quoted bounded: it may be anything a sender wrote.
    let shown: String = text.chars().take(40).collect();
    EdxmlError::Format(format!("organisation code {shown:?}: {why} (N6)"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, non_snake_case)] // rule IDs in test names
mod tests {
    use super::*;

    #[test]
    fn valid_codes_parse_and_print_back_N6() {
        for code in [
            "000.00.00.G22",
            "000.00.00.H34",
            "000.00.12.H41",
            "000.03.12.H41",
            "123.03.12.H41",
        ] {
            let id = parse_organ_id(code).unwrap();
            assert_eq!(id.to_string(), code);
        }
        assert_eq!(parse_organ_id("000.00.00.G22").unwrap().depth(), 1);
        assert_eq!(parse_organ_id("123.03.12.H41").unwrap().depth(), 4);
    }

    #[test]
    fn invalid_codes_are_refused_N6() {
        for code in [
            "",
            "G22",
            "000.00.G22",
            "000.00.00.00.G22",
            "00.00.00.G22",
            "000.0.00.G22",
            "000.00.00.g22",
            "000.00.00.G2",
            "000.00.00.G222",
            "000.00.00.G00",
            "000.00.00.222",
            "000.00.0a.G22",
            "000.01.00.H34",
            "001.00.05.H34",
            "+00.00.00.G22",
            " 000.00.00.G22",
            "000.00.00.Ǵ22",
            &"0".repeat(36),
        ] {
            assert!(parse_organ_id(code).is_err(), "{code:?} accepted");
        }
    }

    #[test]
    fn parent_zeroes_the_most_specific_used_level_N6() {
        let id = parse_organ_id("123.03.12.H41").unwrap();
        let chain: Vec<String> = std::iter::successors(Some(id), |u| u.parent())
            .map(|u| u.to_string())
            .collect();
        assert_eq!(
            chain,
            [
                "123.03.12.H41",
                "000.03.12.H41",
                "000.00.12.H41",
                "000.00.00.H41"
            ]
        );
        assert!(id.is_within(parse_organ_id("000.00.00.H41").unwrap()));
        assert!(!id.is_within(parse_organ_id("000.00.00.H34").unwrap()));
    }

    #[test]
    fn exchange_addresses_parse_and_print_back_N6() {
        let a = ExchangeAddress::parse("VN:GOV:000.00.12.H41:vbdh").unwrap();
        assert_eq!(a.organ.to_string(), "000.00.12.H41");
        assert_eq!(a.subsystem, "vbdh");
        assert_eq!(a.to_string(), "VN:GOV:000.00.12.H41:vbdh");
        for bad in [
            "VN:GOV:000.00.12.H41",
            "VN:GOV:000.00.12.H41:",
            "VN:GOV:x:vbdh",
            "VN:GOV:000.00.12.H41:a b",
            "GOV:000.00.12.H41:a",
        ] {
            assert!(ExchangeAddress::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
