//! JPEG through zune-jpeg (the decoder `image` uses), asked for the luma plane
//! alone when the file is YCbCr: Y is the ITU-R 601 luma Pillow computes from the
//! RGB it converts Y, Cb, Cr to (the two differ by rounding), so there is no
//! chroma upsampling or colour conversion for pixels that become gray anyway.
//! DCT-scaled decoding (jpeg-decoder's) was measured: no faster on camera-sized
//! files, where entropy decoding dominates, and its reduced IDCTs read about 10%
//! sharper than an area average of the full image.

use super::decode::{Bounds, Decoded, Header, Refused, Stage, refused, zeroed};
use super::format::Format;
use super::gray::{Gray, cmyk_luma, luma};
use super::zune_input::JpegBytes;

/// Decodes `bytes` to gray levels, into `spare` when it fits ([`zeroed`]).
pub fn decode(bytes: &[u8], bounds: &Bounds, spare: Vec<u8>) -> Result<Decoded, Refused> {
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;
    use zune_jpeg::JpegDecoder;
    // zune's own size limit is lifted: max_pixels decides, from the header.
    let options = DecoderOptions::default()
        .set_max_width(usize::from(u16::MAX))
        .set_max_height(usize::from(u16::MAX));
    let mut d = JpegDecoder::new_with_options(JpegBytes::new(bytes), options);
    d.decode_headers()
        .map_err(|e| refused(Stage::Header, format!("JPEG header: {e}")))?;
    let info = d
        .info()
        .ok_or_else(|| refused(Stage::Header, "JPEG header: no frame"))?;
    let (w, h) = (u64::from(info.width), u64::from(info.height));
    bounds.check_pixels(w, h)?;
    let input = d
        .input_colorspace()
        .ok_or_else(|| refused(Stage::Header, "JPEG header: no colour space"))?;
    // Y of YCbCr is the luma Pillow computes from the RGB it converts to (the
    // same ITU-R 601 weights), so a colour JPEG is decoded to Y alone.
    // zune settles the colour space of three components only when it decodes
    // (an Adobe marker saying RGB or YCbCr): with the headers alone, three
    // components may still read as CMYK or YCCK.
    let three = info.components == 3;
    let (color_type, output) = match input {
        ColorSpace::Luma => ("gray", ColorSpace::Luma),
        ColorSpace::YCbCr => ("rgb", ColorSpace::Luma),
        ColorSpace::RGB => ("rgb", ColorSpace::RGB),
        ColorSpace::CMYK if three => ("rgb", ColorSpace::RGB),
        ColorSpace::YCCK if three => ("rgb", ColorSpace::Luma),
        ColorSpace::CMYK => ("cmyk", ColorSpace::CMYK),
        ColorSpace::YCCK => ("ycck", ColorSpace::RGB),
        other => {
            return Err(refused(
                Stage::Decode,
                format!("JPEG data: the {other:?} colour space is not read"),
            ));
        }
    };
    let progressive = info.sof.is_progressive();
    let header = Header {
        format: Format::Jpeg,
        width: info.width.into(),
        height: info.height.into(),
        color_type,
        bit_depth: 8,
        progressive: Some(progressive),
    };
    let components = u64::from(info.components.max(1));
    // A progressive JPEG keeps every coefficient (2 bytes each, blocks padded to
    // 16) until its last scan; every JPEG keeps its output.
    let coefficients = if progressive {
        w.next_multiple_of(16) * h.next_multiple_of(16) * components * 2
    } else {
        0
    };
    let out_channels = output.num_components() as u64;
    // The decoder's output, then the gray levels made of it.
    bounds.check_memory("this JPEG", coefficients + w * h * out_channels + w * h)?;
    // Strict: a file that ends before its last scan is an error (zune would
    // otherwise fill the rest in gray and call it decoded).
    let options = d
        .options()
        .jpeg_set_out_colorspace(output)
        .set_strict_mode(true);
    d.set_options(options);
    let size = d
        .output_buffer_size()
        .ok_or_else(|| refused(Stage::Header, "JPEG header: no output size"))?;
    let mut pixels = zeroed(spare, size);
    d.decode_into(&mut pixels)
        .map_err(|e| refused(Stage::Decode, format!("JPEG data: {e}")))?;
    let gray: Vec<u8> = match output {
        ColorSpace::Luma => pixels,
        ColorSpace::RGB => pixels
            .chunks_exact(3)
            .map(|p| luma(p[0], p[1], p[2]))
            .collect(),
        // Adobe's CMYK JPEGs store the inks inverted (Pillow reads them as
        // "CMYK;I" when the Adobe marker is there, as CMYK otherwise).
        _ if adobe_marker(bytes) => pixels
            .chunks_exact(4)
            .map(|p| cmyk_luma(255 - p[0], 255 - p[1], 255 - p[2], 255 - p[3]))
            .collect(),
        _ => pixels
            .chunks_exact(4)
            .map(|p| cmyk_luma(p[0], p[1], p[2], p[3]))
            .collect(),
    };
    let (ow, oh) = (w as usize, h as usize);
    if gray.len() != ow * oh {
        return Err(refused(
            Stage::Decode,
            format!(
                "JPEG data: {} gray levels for {ow} × {oh} pixels",
                gray.len()
            ),
        ));
    }
    Ok(Decoded {
        header,
        gray: Gray {
            width: ow,
            height: oh,
            pixels: gray,
        },
    })
}

/// Whether the JPEG has an Adobe APP14 segment before its first scan (segments
/// walked by their lengths, within the file).
fn adobe_marker(bytes: &[u8]) -> bool {
    let mut at = 2;
    while at + 4 <= bytes.len() && bytes[at] == 0xFF {
        let marker = bytes[at + 1];
        if marker == 0xEE {
            return bytes.get(at + 4..at + 9) == Some(b"Adobe");
        }
        if marker == 0xDA || marker == 0xD9 {
            return false;
        }
        let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        at += 2 + len;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const YCBCR: &[u8] = include_bytes!("../../../samples/images/line-1/part-0001.jpg");
    const CMYK: &[u8] = include_bytes!("../../../samples/images/line-1/part-0006-cmyk.jpg");
    const TRUNCATED: &[u8] = include_bytes!("../../../samples/images/line-2/truncated.jpg");

    fn gray_of(bytes: &[u8], spare: Vec<u8>) -> Result<Gray, String> {
        let bounds = Bounds {
            max_pixels: u64::MAX,
            max_decode_bytes: u64::MAX,
        };
        decode(bytes, &bounds, spare)
            .map(|d| d.gray)
            .map_err(|r| r.reason)
    }

    #[test]
    fn a_spare_plane_of_any_size_and_content_decodes_the_same() {
        for file in [YCBCR, CMYK] {
            let fresh = gray_of(file, Vec::new()).unwrap();
            let n = fresh.pixels.len();
            for spare in [n, n * 3, n * 4, n - 1, n + 1, 2 * n + 1, 16] {
                let dirty = (0..spare).map(|i| (i * 31 % 251) as u8).collect();
                assert_eq!(
                    gray_of(file, dirty).as_ref(),
                    Ok(&fresh),
                    "a spare of {spare} bytes for {n} pixels"
                );
            }
        }
        let n = gray_of(YCBCR, Vec::new()).unwrap().pixels.len();
        let refused = gray_of(TRUNCATED, Vec::new()).unwrap_err();
        assert_eq!(gray_of(TRUNCATED, vec![9u8; n]).unwrap_err(), refused);
    }

    #[test]
    fn the_adobe_marker_is_found_by_walking_segments() {
        let app0 = [0xFF, 0xE0, 0x00, 0x04, 0, 0];
        let app14 = [0xFF, 0xEE, 0x00, 0x07, b'A', b'd', b'o', b'b', b'e'];
        let sos = [0xFF, 0xDA, 0x00, 0x02];
        let file = |parts: &[&[u8]]| {
            [&[0xFF, 0xD8][..]]
                .iter()
                .chain(parts)
                .flat_map(|p| p.iter().copied())
                .collect::<Vec<u8>>()
        };
        assert!(adobe_marker(&file(&[&app0, &app14, &sos])));
        assert!(
            !adobe_marker(&file(&[&app0, &sos, &app14])),
            "after the scan: not a header segment"
        );
        assert!(!adobe_marker(&file(&[&app0])));
        assert!(
            !adobe_marker(&[0xFF, 0xD8, 0xFF, 0xE0, 0xFF]),
            "a length past the end"
        );
    }
}
