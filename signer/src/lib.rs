//! kyso signer (library). See docs/ARCHITECTURE.md.
