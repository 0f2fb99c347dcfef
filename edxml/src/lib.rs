//! edXML (QCVN 102:2016), the envelope of the inter-agency document exchange (N6).
//!
//! Everything here is pure: bytes in, typed values out. The crate reads an envelope or a
//! status message once, with strict limits, verifies its enveloped XML signature
//! (XML-DSig core validation) over the *same* tree it reads the header from, and writes
//! envelopes and status messages that kyso then signs without re-serialising.
//!
//! - [`xml`]: the bounded parse (no DTD, UTF-8 only) and canonical XML (C14N 1.0, 1.1,
//!   exclusive), the only serialisation that is ever hashed.
//! - [`dsig`]: the enveloped signature: its strict shape, core validation into a
//!   [`kyso_pki::cms::SignerCheck`] (path, validity and revocation stay in kyso-validation),
//!   XAdES qualifying properties, and the two-phase signing for an HSM.
//! - [`envelope`], [`status`], [`organ`], [`attachment`]: what the exchange carries.

pub mod attachment;
pub mod dsig;
pub mod envelope;
pub mod error;
pub mod limits;
pub mod open;
pub mod organ;
pub mod status;
pub mod xml;

pub use error::EdxmlError;
pub use limits::EdxmlLimits;
pub use open::{Opened, SignatureState, looks_like_edxml, open};
