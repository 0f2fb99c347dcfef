//! The PNG subset the appearances need: 8-bit RGB or RGBA, not interlaced
//! (what signature and seal images are exported as). Decoded here with
//! flate2 rather than with the `png` crate, which would bring a second
//! copy of miniz_oxide. Anything else is refused with the reason.

use std::io::Read;

use super::PadesError;

/// Largest side accepted, in pixels: a seal at 600 dpi is under 1 000.
const MAX_SIDE: u32 = 4096;
/// The pixel budget of one image: 4 Mpx bounds the inflated data at 16 MiB and the
/// decoded samples at 16 MiB (a 40 mm seal at 1 200 dpi is 1 900 x 1 900).
const MAX_PIXELS: u64 = 4 << 20;

/// A decoded image: its colour samples and, if it has any transparency,
/// its alpha channel (the PDF `/SMask`).
#[derive(Debug, Clone)]
pub(crate) struct Image {
    pub width: u32,
    pub height: u32,
    /// RGB, 3 bytes a pixel, rows top to bottom.
    pub rgb: Vec<u8>,
    /// Alpha, 1 byte a pixel; `None` when the image is opaque.
    pub alpha: Option<Vec<u8>>,
}

fn bad(reason: impl Into<String>) -> PadesError {
    PadesError::Image(reason.into())
}

fn be32(b: &[u8], at: usize) -> Result<u32, PadesError> {
    b.get(at..at + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map(u32::from_be_bytes)
        .ok_or_else(|| bad("truncated PNG"))
}

/// Decodes a PNG.
pub(crate) fn decode(png: &[u8]) -> Result<Image, PadesError> {
    const SIG: &[u8] = b"\x89PNG\r\n\x1a\n";
    if !png.starts_with(SIG) {
        return Err(bad("not a PNG file (signature missing)"));
    }
    let mut at = SIG.len();
    let mut header = None;
    let mut idat = Vec::new();
    loop {
        let len = be32(png, at)? as usize;
        let kind = png
            .get(at + 4..at + 8)
            .ok_or_else(|| bad("truncated PNG chunk"))?;
        let data = png
            .get(at + 8..at + 8 + len)
            .ok_or_else(|| bad("truncated PNG chunk"))?;
        // The CRC is skipped: the bytes come from the caller, and a flipped
        // bit shows in the image, not in the signature's validity.
        at = at + 12 + len;
        match kind {
            b"IHDR" => {
                if data.len() != 13 {
                    return Err(bad("IHDR must have 13 bytes"));
                }
                header = Some((
                    be32(data, 0)?,
                    be32(data, 4)?,
                    data[8],
                    data[9],
                    data[10],
                    data[11],
                    data[12],
                ));
            }
            b"IDAT" => {
                if idat.len() + data.len() > png.len() {
                    return Err(bad("IDAT larger than the file"));
                }
                idat.extend_from_slice(data);
            }
            b"IEND" => break,
            b"PLTE" => return Err(bad("palette PNGs are not supported; export as RGBA")),
            _ => {}
        }
        if at >= png.len() {
            return Err(bad("PNG without IEND"));
        }
    }
    let (width, height, depth, colour, compression, filter, interlace) =
        header.ok_or_else(|| bad("PNG without IHDR"))?;
    if depth != 8 {
        return Err(bad(format!(
            "{depth}-bit samples are not supported; export as 8-bit RGB or RGBA"
        )));
    }
    let channels = match colour {
        2 => 3usize,
        6 => 4,
        other => {
            return Err(bad(format!(
                "PNG colour type {other} is not supported; export as 8-bit RGB (2) or RGBA (6)"
            )));
        }
    };
    if compression != 0 || filter != 0 {
        return Err(bad("unknown PNG compression or filter method"));
    }
    if interlace != 0 {
        return Err(bad(
            "interlaced PNGs are not supported; export without interlacing",
        ));
    }
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(bad(format!(
            "{width}x{height} pixels: each side must be 1 to {MAX_SIDE}"
        )));
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(bad(format!("{width}x{height} pixels is too many")));
    }
    let stride = width as usize * channels;
    let expected = (stride + 1) * height as usize;
    let mut raw = Vec::with_capacity(expected);
    flate2::read::ZlibDecoder::new(idat.as_slice())
        .take(expected as u64 + 1)
        .read_to_end(&mut raw)
        .map_err(|e| bad(format!("the image data does not inflate: {e}")))?;
    if raw.len() != expected {
        return Err(bad(format!(
            "the image data inflates to {} bytes, {expected} expected",
            raw.len()
        )));
    }
    let pixels = unfilter(&raw, stride, height as usize, channels)?;
    let count = width as usize * height as usize;
    let mut rgb = Vec::with_capacity(count * 3);
    let mut alpha = Vec::with_capacity(if channels == 4 { count } else { 0 });
    for px in pixels.chunks_exact(channels) {
        rgb.extend_from_slice(&px[..3]);
        if channels == 4 {
            alpha.push(px[3]);
        }
    }
    let alpha = (channels == 4 && alpha.iter().any(|a| *a != 255)).then_some(alpha);
    Ok(Image {
        width,
        height,
        rgb,
        alpha,
    })
}

/// Reverses the per-row filters (PNG spec §9).
fn unfilter(raw: &[u8], stride: usize, rows: usize, bpp: usize) -> Result<Vec<u8>, PadesError> {
    let mut out = vec![0u8; stride * rows];
    for y in 0..rows {
        let line = &raw[y * (stride + 1)..(y + 1) * (stride + 1)];
        let (kind, src) = (line[0], &line[1..]);
        let (done, rest) = out.split_at_mut(y * stride);
        let prev = if y == 0 {
            None
        } else {
            Some(&done[(y - 1) * stride..])
        };
        let cur = &mut rest[..stride];
        for x in 0..stride {
            let a = if x >= bpp { cur[x - bpp] } else { 0 };
            let b = prev.map_or(0, |p| p[x]);
            let c = if x >= bpp {
                prev.map_or(0, |p| p[x - bpp])
            } else {
                0
            };
            let predicted = match kind {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                4 => paeth(a, b, c),
                other => return Err(bad(format!("unknown PNG row filter {other}"))),
            };
            cur[x] = src[x].wrapping_add(predicted);
        }
    }
    Ok(out)
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = (
        (p - i16::from(a)).abs(),
        (p - i16::from(b)).abs(),
        (p - i16::from(c)).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}
