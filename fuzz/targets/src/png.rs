//! The PNG decoder of signature and seal images (kyso-pades `png.rs`, with
//! its side and pixel limits): the image comes with the signing request.

/// Decodes the image; must not panic, and the limits bound its memory.
pub fn png(data: &[u8]) {
    let _ = kyso_pades::decode_image(data);
}
