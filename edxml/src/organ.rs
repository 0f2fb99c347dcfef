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

/// The longest code the decision allows, checked before anything else.
pub const MAX_ORGAN_ID_LEN: usize = 35;

/// The longest subsystem name kyso reads in an exchange address.
const MAX_SUBSYSTEM_LEN: usize = 64;

/// An organisation code, `NNN.NN.NN.Xnn` (N6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrganId {
    /// Level 1: the letter and its number (`('H', 34)`).
    level1: (u8, u8),
    /// Level 2 (0 = unused).
    level2: u8,
    /// Level 3 (0 = unused).
    level3: u8,
    /// Level 4 (0 = unused).
    level4: u16,
}

impl OrganId {
    /// Reads a code; anything but the exact form is refused with a reason (N6).
    pub fn parse(text: &str) -> Result<Self> {
        if text.len() > MAX_ORGAN_ID_LEN {
            return Err(bad(text, "longer than 35 characters"));
        }
        let parts: Vec<&str> = text.split('.').collect();
        let [l4, l3, l2, l1] = parts.as_slice() else {
            return Err(bad(text, "not four dot-separated levels NNN.NN.NN.Xnn"));
        };
        let level4 = digits(l4, 3).ok_or_else(|| bad(text, "level 4 is not three digits"))?;
        let level3 = digits(l3, 2).ok_or_else(|| bad(text, "level 3 is not two digits"))?;
        let level2 = digits(l2, 2).ok_or_else(|| bad(text, "level 2 is not two digits"))?;
        let letter = l1
            .bytes()
            .next()
            .filter(u8::is_ascii_uppercase)
            .ok_or_else(|| bad(text, "level 1 does not start with a capital letter"))?;
        let number = l1
            .get(1..)
            .and_then(|n| digits(n, 2))
            .ok_or_else(|| bad(text, "level 1 is not a letter and two digits"))?;
        if number == 0 {
            return Err(bad(text, "level 1 is zero: every unit has a level 1"));
        }
        let id = Self {
            level1: (letter, number as u8),
            level2: level2 as u8,
            level3: level3 as u8,
            level4,
        };
        // Each level hangs under the one above: a used level needs every level above used.
        let used = [id.level2 != 0, id.level3 != 0, id.level4 != 0];
        if used.windows(2).any(|w| !w[0] && w[1]) {
            return Err(bad(text, "a used level below an unused one names no unit"));
        }
        Ok(id)
    }

    /// How many levels are used (1 to 4).
    pub fn depth(&self) -> u8 {
        1 + u8::from(self.level2 != 0) + u8::from(self.level3 != 0) + u8::from(self.level4 != 0)
    }

    /// The unit one level up: the most specific used level zeroed; `None` at level 1.
    pub fn parent(&self) -> Option<Self> {
        let mut up = *self;
        if up.level4 != 0 {
            up.level4 = 0;
        } else if up.level3 != 0 {
            up.level3 = 0;
        } else if up.level2 != 0 {
            up.level2 = 0;
        } else {
            return None;
        }
        Some(up)
    }

    /// Whether `self` is `other` or a unit under it.
    pub fn is_within(&self, other: &Self) -> bool {
        let mut at = Some(*self);
        while let Some(unit) = at {
            if unit == *other {
                return true;
            }
            at = unit.parent();
        }
        false
    }
}

impl fmt::Display for OrganId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:03}.{:02}.{:02}.{}{:02}",
            self.level4,
            self.level3,
            self.level2,
            char::from(self.level1.0),
            self.level1.1
        )
    }
}

impl std::str::FromStr for OrganId {
    type Err = EdxmlError;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
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
        if text.len() > "VN:GOV:".len() + MAX_ORGAN_ID_LEN + 1 + MAX_SUBSYSTEM_LEN {
            return Err(bad("too long"));
        }
        let rest = text
            .strip_prefix("VN:GOV:")
            .ok_or_else(|| bad("does not start with VN:GOV:"))?;
        let (code, subsystem) = rest
            .split_once(':')
            .ok_or_else(|| bad("no subsystem after the organisation code"))?;
        let organ = OrganId::parse(code)?;
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

/// `n` ASCII digits exactly, as a number.
fn digits(text: &str, n: usize) -> Option<u16> {
    (text.len() == n && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
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
            let id = OrganId::parse(code).unwrap();
            assert_eq!(id.to_string(), code);
        }
        assert_eq!(OrganId::parse("000.00.00.G22").unwrap().depth(), 1);
        assert_eq!(OrganId::parse("123.03.12.H41").unwrap().depth(), 4);
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
            assert!(OrganId::parse(code).is_err(), "{code:?} accepted");
        }
    }

    #[test]
    fn parent_zeroes_the_most_specific_used_level_N6() {
        let id = OrganId::parse("123.03.12.H41").unwrap();
        let chain: Vec<String> = std::iter::successors(Some(id), OrganId::parent)
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
        assert!(id.is_within(&OrganId::parse("000.00.00.H41").unwrap()));
        assert!(!id.is_within(&OrganId::parse("000.00.00.H34").unwrap()));
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
