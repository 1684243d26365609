//! PNG, BMP and WebP through `image`, with its allocation limit set to
//! `max_decode_bytes`, and their pixels to gray levels by the rules of `gray.rs`.

use std::borrow::Cow;
use std::io::Cursor;

use super::decode::{Bounds, Decoded, Header, Refused, Stage, refused};
use super::format::Format;
use super::gray::{Gray, luma};

/// `image`'s name for a format (JPEG and TIFF are decoded by `jpeg.rs` and
/// `tiff/`, never here; `image` is built without TIFF).
fn image_format(f: Format) -> image::ImageFormat {
    match f {
        Format::Jpeg => image::ImageFormat::Jpeg,
        Format::Png => image::ImageFormat::Png,
        Format::Tiff => image::ImageFormat::Tiff,
        Format::Bmp => image::ImageFormat::Bmp,
        Format::WebP => image::ImageFormat::WebP,
    }
}

/// The colour model and bits per sample as stored. PNG and BMP say whether they
/// hold palette indices only in their own header, which `image` expands.
fn stored_color(
    format: Format,
    bytes: &[u8],
    decoded: image::ExtendedColorType,
) -> (&'static str, u8) {
    use image::ExtendedColorType as E;
    match format {
        // IHDR: bytes 24 (bit depth) and 25 (colour type 3 = indexed).
        Format::Png if bytes.len() > 25 && bytes[25] == 3 => return ("palette", bytes[24]),
        // Bits per pixel: at 28 after a BITMAPINFOHEADER (or a later one), at 24
        // after an OS/2 BITMAPCOREHEADER (12 bytes); 8 or fewer is a palette.
        Format::Bmp if bytes.len() > 29 => {
            let header = u32::from_le_bytes([bytes[14], bytes[15], bytes[16], bytes[17]]);
            let at = if header == 12 { 24 } else { 28 };
            let bpp = u16::from_le_bytes([bytes[at], bytes[at + 1]]);
            if (1..=8).contains(&bpp) {
                return ("palette", bpp as u8);
            }
        }
        _ => {}
    }
    let channels = decoded.channel_count().max(1);
    let bits = (decoded.bits_per_pixel() / u16::from(channels)) as u8;
    let name = match decoded {
        E::Cmyk8 | E::Cmyk16 => "cmyk",
        E::A8 => "gray",
        _ => match channels {
            1 => "gray",
            2 => "gray_alpha",
            3 => "rgb",
            _ => "rgba",
        },
    };
    (name, bits)
}

fn image_error(stage: Stage, e: image::ImageError) -> Refused {
    match e {
        image::ImageError::Limits(l) => refused(Stage::Limits, format!("{l}")),
        other => refused(stage, other.to_string()),
    }
}

pub fn decode(format: Format, bytes: &[u8], bounds: &Bounds) -> Result<Decoded, Refused> {
    use image::ImageDecoder;
    let original = bytes;
    // BMP headers `image` refuses and Pillow reads, rewritten (bmp.rs); RLE
    // data expanded as Pillow expands it (rle.rs).
    let normalized = match format {
        Format::Bmp => {
            let header = super::bmp::normalize(bytes);
            match super::rle::uncompress(&header, bounds)? {
                Some(expanded) => Cow::Owned(expanded),
                None => header,
            }
        }
        _ => Cow::Borrowed(bytes),
    };
    // A rewritten header or expanded data is a copy, held while it decodes.
    let copied = match &normalized {
        Cow::Owned(b) => b.len() as u64,
        Cow::Borrowed(_) => 0,
    };
    let bytes: &[u8] = &normalized;
    let mut reader = image::ImageReader::with_format(Cursor::new(bytes), image_format(format));
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(bounds.max_decode_bytes);
    reader.limits(limits);
    let decoder = reader
        .into_decoder()
        .map_err(|e| image_error(Stage::Header, e))?;
    let (w, h) = decoder.dimensions();
    bounds.check_pixels(u64::from(w), u64::from(h))?;
    // The decoded image, then the gray levels made of it.
    let pixels = u64::from(w) * u64::from(h);
    bounds.check_memory(
        &format!("this {}", format.name()),
        decoder
            .total_bytes()
            .saturating_add(pixels)
            .saturating_add(copied),
    )?;
    let (color_type, bit_depth) = stored_color(format, original, decoder.original_color_type());
    let header = Header {
        format,
        width: w,
        height: h,
        color_type,
        bit_depth,
        progressive: None,
    };
    let mut img =
        image::DynamicImage::from_decoder(decoder).map_err(|e| image_error(Stage::Decode, e))?;
    // A 16-bit BMP's 5- and 6-bit channels: `image` spreads them over 0..=255
    // rounded to nearest, Pillow rounded down (4 of 31 is 33 against 32); the
    // metrics follow Pillow's levels, as the oracle's do.
    // An alpha mask's channel is left as it is (Pillow reads such a file as RGB).
    if format == Format::Bmp
        && let Some(bits) = super::bmp::bits_16(bytes)
    {
        let remap = |px: &mut [u8]| {
            for (c, n) in px.iter_mut().zip(bits) {
                *c = super::bmp::pillow_level(*c, n);
            }
        };
        match &mut img {
            image::DynamicImage::ImageRgb8(rgb) => rgb.pixels_mut().for_each(|p| remap(&mut p.0)),
            image::DynamicImage::ImageRgba8(rgba) => {
                rgba.pixels_mut().for_each(|p| remap(&mut p.0))
            }
            _ => {}
        }
    }
    let gray = to_gray(img);
    Ok(Decoded { header, gray })
}

/// Gray levels of a decoded image by the rules of `gray.rs`.
fn to_gray(img: image::DynamicImage) -> Gray {
    use image::DynamicImage as D;
    let (width, height) = (img.width() as usize, img.height() as usize);
    let hi = |v: u16| (v >> 8) as u8;
    let pixels: Vec<u8> = match img {
        D::ImageLuma8(b) => b.into_raw(),
        D::ImageLumaA8(b) => b.pixels().map(|p| p.0[0]).collect(),
        D::ImageRgb8(b) => b.pixels().map(|p| luma(p.0[0], p.0[1], p.0[2])).collect(),
        D::ImageRgba8(b) => b.pixels().map(|p| luma(p.0[0], p.0[1], p.0[2])).collect(),
        D::ImageLuma16(b) => b.pixels().map(|p| hi(p.0[0])).collect(),
        D::ImageLumaA16(b) => b.pixels().map(|p| hi(p.0[0])).collect(),
        D::ImageRgb16(b) => b
            .pixels()
            .map(|p| luma(hi(p.0[0]), hi(p.0[1]), hi(p.0[2])))
            .collect(),
        D::ImageRgba16(b) => b
            .pixels()
            .map(|p| luma(hi(p.0[0]), hi(p.0[1]), hi(p.0[2])))
            .collect(),
        // A variant added to `image` later: through its own RGB conversion.
        other => other
            .to_rgb8()
            .pixels()
            .map(|p| luma(p.0[0], p.0[1], p.0[2]))
            .collect(),
    };
    Gray {
        width,
        height,
        pixels,
    }
}
