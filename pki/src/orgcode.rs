//! Organisation codes (mã định danh, Decision 20/2020/QĐ-TTg): `NNN.NN.NN.Xnn`, four
//! dot-separated levels with the most significant on the RIGHT. Level 1 is a letter and two
//! digits (G: ministries and government bodies, H: provincial People's Committees), levels 2
//! and 3 two digits each, level 4 three digits; zeros mean the level is unused. A unit's
//! parent is found by zeroing its most specific level.
//!
//! Used by the registry to know which organisations it manages (A4, `CheckJurisdiction`) and
//! by the document flow to check a sender's code before anything is stored, so
//! the parse is strict: a code with a gap (level 3 used, level 2 zero) names no unit and is
//! refused rather than guessed at.

use std::fmt;

/// A checked organisation code: the one parser of the project (the registry, the document
/// flow and the edXML reader all use it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgCode {
    /// Level 1: the letter and its two digits (`H`, 41).
    letter: u8,
    top: u8,
    /// Levels 2, 3 and 4; 0 when unused.
    l2: u8,
    l3: u8,
    l4: u16,
}

/// Why a text is not an organisation code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not an organisation code (Decision 20/2020, NNN.NN.NN.Xnn such as 000.00.00.H41): {0}")]
pub struct BadCode(&'static str);

/// The national exchange's address prefix (`VN:GOV:<code>:<subsystem>`).
pub const ADDRESS_PREFIX: &str = "VN:GOV:";

/// The longest code the decision allows, checked before anything else.
pub const MAX_LEN: usize = 35;

fn digits<const N: usize>(s: &str) -> Option<u16> {
    (s.len() == N && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.bytes().fold(0u16, |n, b| n * 10 + u16::from(b - b'0')))
}

impl OrgCode {
    /// Parses a code an operator or a caller typed: surrounding blanks are ignored, and the
    /// exchange's address form `VN:GOV:<code>[:<subsystem>]` is accepted for the code it
    /// carries. The code itself is read by [`OrgCode::parse_exact`].
    pub fn parse(text: &str) -> Result<Self, BadCode> {
        let t = text.trim();
        if t.len() > MAX_LEN {
            return Err(BadCode("longer than 35 characters"));
        }
        let t = match t.strip_prefix(ADDRESS_PREFIX) {
            Some(rest) => rest.split(':').next().unwrap_or_default(),
            None => t,
        };
        Self::parse_exact(t)
    }

    /// Parses exactly `NNN.NN.NN.Xnn`, nothing around it (a document's `OrganId`): the letter
    /// upper case as the decision writes it, level 1 not zero, no used level under an unused
    /// one.
    pub fn parse_exact(t: &str) -> Result<Self, BadCode> {
        if t.len() > MAX_LEN {
            return Err(BadCode("longer than 35 characters"));
        }
        let parts: Vec<&str> = t.split('.').collect();
        let [p4, p3, p2, p1] = parts.as_slice() else {
            return Err(BadCode("four dot-separated levels are needed"));
        };
        let l4 = digits::<3>(p4).ok_or(BadCode("level 4 is three digits"))?;
        let l3 = digits::<2>(p3).ok_or(BadCode("level 3 is two digits"))?;
        let l2 = digits::<2>(p2).ok_or(BadCode("level 2 is two digits"))?;
        let (letter, top) = match p1.as_bytes() {
            [c, rest @ ..] if c.is_ascii_uppercase() => (
                *c,
                std::str::from_utf8(rest)
                    .ok()
                    .and_then(digits::<2>)
                    .ok_or(BadCode("level 1 is a capital letter and two digits"))?,
            ),
            _ => return Err(BadCode("level 1 is a capital letter and two digits")),
        };
        if top == 0 {
            return Err(BadCode("level 1 cannot be zero"));
        }
        if (l3 != 0 && l2 == 0) || (l4 != 0 && l3 == 0) {
            return Err(BadCode(
                "a level is used under an unused one (zeros only on the left)",
            ));
        }
        Ok(Self {
            letter,
            top: u8::try_from(top).map_err(|_| BadCode("level 1"))?,
            l2: u8::try_from(l2).map_err(|_| BadCode("level 2"))?,
            l3: u8::try_from(l3).map_err(|_| BadCode("level 3"))?,
            l4,
        })
    }

    /// How many levels are used (1 to 4).
    pub fn depth(self) -> u8 {
        1 + u8::from(self.l2 != 0) + u8::from(self.l3 != 0) + u8::from(self.l4 != 0)
    }

    /// The unit above: the most specific level zeroed; `None` for a level-1 body.
    pub fn parent(self) -> Option<Self> {
        let mut p = self;
        if p.l4 != 0 {
            p.l4 = 0;
        } else if p.l3 != 0 {
            p.l3 = 0;
        } else if p.l2 != 0 {
            p.l2 = 0;
        } else {
            return None;
        }
        Some(p)
    }

    /// This code and every code above it, most specific first.
    pub fn lineage(self) -> Vec<Self> {
        std::iter::successors(Some(self), |c| c.parent()).collect()
    }

    /// Whether `self` is `other` or a unit under it.
    pub fn is_within(self, other: Self) -> bool {
        std::iter::successors(Some(self), |c| c.parent()).any(|c| c == other)
    }
}

impl std::str::FromStr for OrgCode {
    type Err = BadCode;
    fn from_str(s: &str) -> Result<Self, BadCode> {
        Self::parse_exact(s)
    }
}

impl fmt::Display for OrgCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:03}.{:02}.{:02}.{}{:02}",
            self.l4, self.l3, self.l2, self.letter as char, self.top
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_prints_and_climbs() {
        let c = OrgCode::parse(" 001.02.03.H41 ").unwrap();
        assert_eq!(c.to_string(), "001.02.03.H41");
        let up: Vec<String> = c.lineage().iter().map(ToString::to_string).collect();
        assert_eq!(
            up,
            [
                "001.02.03.H41",
                "000.02.03.H41",
                "000.00.03.H41",
                "000.00.00.H41"
            ]
        );
        assert_eq!(OrgCode::parse("000.00.00.G22").unwrap().parent(), None);
        assert_eq!(OrgCode::parse("000.00.00.G22").unwrap().depth(), 1);
        assert_eq!(c.depth(), 4);
        assert!(c.is_within(OrgCode::parse("000.00.00.H41").unwrap()));
        assert!(!c.is_within(OrgCode::parse("000.00.00.H34").unwrap()));
        assert!(OrgCode::parse_exact(" 001.02.03.H41").is_err());
        assert!(OrgCode::parse_exact("VN:GOV:000.00.12.H41:edoc").is_err());
        assert_eq!(
            OrgCode::parse("VN:GOV:000.00.12.H41:edoc")
                .unwrap()
                .to_string(),
            "000.00.12.H41"
        );
    }

    #[test]
    fn refuses_what_names_no_unit() {
        for bad in [
            "",
            "H41",
            "000.00.00.h41",
            "000.00.00.H00",
            "000.00.00.H4",
            "00.00.00.H41",
            "000.0a.00.H41",
            "000.01.00.H41",
            "001.00.01.H41",
            "000.00.00.41H",
            "000.00.00.H41.1",
            "000.00.00.Ä41",
            "000.00.00.H41                          x",
        ] {
            assert!(OrgCode::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
