//! The gRPC contracts of kyso, generated from `proto/kyso/**.proto`.

#![allow(missing_debug_implementations, unused_qualifications, clippy::all)]

/// Encoded `FileDescriptorSet` of every kyso proto, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/kyso_descriptor.bin"));

pub mod verifier {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/kyso.verifier.v1.rs"));
    }
}

pub mod signer {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/kyso.signer.v1.rs"));
    }
}

pub mod registry {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/kyso.registry.v1.rs"));
    }
}

pub mod documents {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/kyso.documents.v1.rs"));
    }
}
