//! The XML layer: bounded parse and canonicalisation.
