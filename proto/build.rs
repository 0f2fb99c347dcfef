//! Compiles the protos with protox (pure Rust), so no protoc is needed to build.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "kyso/verifier/v1/verifier.proto",
        "kyso/signer/v1/signer.proto",
        "kyso/registry/v1/registry.proto",
        "kyso/documents/v1/documents.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["."])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out.join("kyso_descriptor.bin");
    std::fs::write(&descriptor_path, prost::Message::encode_to_vec(&fds))?;
    tonic_prost_build::configure()
        // The PDF of a VerifyPdf request as `bytes::Bytes`: decoded as a slice of the
        // message's receive buffer instead of a copy of up to the whole file into a `Vec`,
        // and cloned by a reference count where a client sends the same file again.
        .bytes(".kyso.verifier.v1.VerifyPdfRequest.pdf")
        .file_descriptor_set_path(&descriptor_path)
        .compile_fds(fds)?;
    Ok(())
}
