//! How a TIFF's pixels are read, decided from its first directory's tags alone
//! (a pure function, [`plan`]): the colour model that makes them gray, what
//! each stored sample is, and whether the `tiff` decoder reads the file as it
//! is or a copy whose header says something it can read (`ifd.rs`):
//!
//! - a **palette** image as the gray image of its indices (photometric 3 → 1),
//!   the ColorMap then applied here;
//! - a one-sample image of a **depth the decoder has no type for** (12, 10, 14,
//!   24 bits…) as 8-bit rows of the same bytes (the width becomes the row's byte
//!   count), its samples then unpacked here. Only uncompressed or losslessly
//!   compressed strips without a predictor: the rewrite keeps the bytes, not
//!   what a predictor or a tile grid means.
//!
//! White-is-zero gray is inverted here where the decoder does not invert it
//! (signed, half-float, several samples, a rewritten depth): its photometric
//! interpretation is rewritten to black-is-zero first. One-sample unsigned and
//! 32- and 64-bit float gray the decoder inverts itself.
//!
//! Strips stored least significant bit first (FillOrder 2) are read from a
//! copy whose chunk bytes are reversed.
//!
//! What no plan reads is refused, and the reason names the feature the tags
//! hold ("YCbCr with 2 × 2 subsampling, uncompressed", "64-bit complex samples"),
//! (A tile whose decoding alone would take more than `max_decode_bytes` is
//! refused by `mod.rs`, with the other bounds.)

use std::io::Cursor;

use tiff::decoder::Decoder;
use tiff::tags::Tag;

use super::ifd::Patch;

/// What the tags say, as far as reading the pixels goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tags {
    pub width: u32,
    pub height: u32,
    pub photometric: Option<u16>,
    /// BitsPerSample of the first sample (the decoder refuses mixed depths).
    pub bits: u16,
    /// SampleFormat of the first sample: 1 unsigned, 2 signed, 3 float, 5/6 complex.
    pub sample_format: u16,
    pub samples: u16,
    pub compression: u16,
    pub predictor: u16,
    pub planar: u16,
    /// FillOrder: 2 stores each byte's bits least significant first.
    pub fill_order: u16,
    /// TileWidth and TileLength, for a tiled image.
    pub tile: Option<(u32, u32)>,
    pub rows_per_strip: u32,
    /// Where each strip or tile starts, and its byte count.
    pub chunk_offsets: Vec<u64>,
    pub chunk_counts: Vec<u64>,
    pub subsampling: (u16, u16),
    pub colormap: Option<Vec<u16>>,
    /// ExtraSamples' first value: 1 is alpha premultiplied into the colour.
    pub extra_sample: Option<u16>,
    /// Whether the SampleFormat tag is there (a rewrite can only change it then).
    pub has_sample_format: bool,
    /// JPEGTables: the tables every JPEG strip or tile is read after.
    pub jpeg_tables: Option<Vec<u8>>,
    /// T4Options (0 when absent; `None` when it does not read): bit 0 set is
    /// two-dimensional Group 3 coding, bit 1 uncompressed mode.
    pub t4_options: Option<u32>,
}

impl Tags {
    /// The first directory's tags; the decoder's error when they do not read.
    pub fn read(bytes: &[u8]) -> Result<Tags, tiff::TiffError> {
        let mut d = Decoder::new(Cursor::new(bytes))?;
        let (width, height) = d.dimensions()?;
        let mut vec = |t: Tag| d.find_tag_unsigned_vec::<u32>(t).ok().flatten();
        let first = |v: Option<Vec<u32>>, default: u32| {
            v.and_then(|v| v.first().copied())
                .unwrap_or(default)
                .min(u32::from(u16::MAX)) as u16
        };
        let photometric = vec(Tag::PhotometricInterpretation)
            .and_then(|v| v.first().copied())
            .map(|p| p.min(u32::from(u16::MAX)) as u16);
        let bits = first(vec(Tag::BitsPerSample), 1);
        let formats = vec(Tag::SampleFormat);
        let has_sample_format = formats.is_some();
        let sample_format = first(formats, 1);
        let samples = first(vec(Tag::SamplesPerPixel), 1);
        let compression = first(vec(Tag::Compression), 1);
        let predictor = first(vec(Tag::Predictor), 1);
        let planar = first(vec(Tag::PlanarConfiguration), 1);
        let fill_order = first(vec(Tag::FillOrder), 1);
        let one = |v: Option<Vec<u32>>| v.and_then(|v| v.first().copied());
        let tile = one(vec(Tag::TileWidth)).zip(one(vec(Tag::TileLength)));
        let rows_per_strip = one(vec(Tag::RowsPerStrip)).unwrap_or(u32::MAX);
        let subsampling = match vec(Tag::ChromaSubsampling).as_deref() {
            Some([h, v]) => (*h as u16, *v as u16),
            _ => (2, 2),
        };
        let extra_sample = one(vec(Tag::ExtraSamples)).map(|v| v.min(u32::from(u16::MAX)) as u16);
        let colormap = d.find_tag_unsigned_vec::<u16>(Tag::ColorMap).ok().flatten();
        let jpeg_tables = d
            .find_tag_unsigned_vec::<u8>(Tag::JPEGTables)
            .ok()
            .flatten();
        let t4_options = match d.find_tag_unsigned::<u32>(Tag::Unknown(292)) {
            Ok(found) => Some(found.unwrap_or(0)),
            Err(_) => None,
        };
        let mut u64s = |t: Tag| d.find_tag_unsigned_vec::<u64>(t).ok().flatten();
        let (offsets, counts) = match tile {
            Some(_) => (Tag::TileOffsets, Tag::TileByteCounts),
            None => (Tag::StripOffsets, Tag::StripByteCounts),
        };
        let chunk_offsets = u64s(offsets).unwrap_or_default();
        let chunk_counts = u64s(counts).unwrap_or_default();
        Ok(Tags {
            width,
            height,
            photometric,
            bits,
            sample_format,
            samples,
            compression,
            predictor,
            planar,
            fill_order,
            tile,
            rows_per_strip,
            chunk_offsets,
            chunk_counts,
            subsampling,
            colormap,
            extra_sample,
            has_sample_format,
            jpeg_tables,
            t4_options,
        })
    }
}

#[cfg(test)]
impl Tags {
    /// An 8-bit gray 30 × 2 strip image, unsurprising in every tag: tests
    /// change what they are about.
    pub fn example() -> Tags {
        Tags {
            width: 30,
            height: 2,
            photometric: Some(BLACK_IS_ZERO),
            bits: 8,
            sample_format: 1,
            samples: 1,
            compression: 1,
            predictor: 1,
            planar: 1,
            fill_order: 1,
            tile: None,
            rows_per_strip: 2,
            chunk_offsets: vec![8],
            chunk_counts: vec![60],
            subsampling: (2, 2),
            colormap: None,
            extra_sample: None,
            has_sample_format: false,
            jpeg_tables: None,
            t4_options: Some(0),
        }
    }
}

/// How the samples of a pixel become one gray level (gray.rs's rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Model {
    /// The first sample; `invert` when white is zero and the decoder has not
    /// inverted it already (it has, for the gray it reads as it is).
    Gray {
        invert: bool,
    },
    /// Gray whose alpha was multiplied into it: divided out first as Pillow's
    /// `La` to `LA` does (`l · 255 / a`, clipped; as it is where alpha is 0 or
    /// 255), then as `Gray`.
    GrayPremultiplied {
        invert: bool,
    },
    /// Pillow's luma of R, G, B; `premultiplied` when the alpha that follows
    /// was multiplied into them (divided out first, as Pillow's `RGBa`).
    Rgb {
        premultiplied: bool,
    },
    Cmyk,
    /// The Y sample: the luma itself.
    YCbCr,
    /// The first sample is an index into these colours (ColorMap's high bytes,
    /// as Pillow reads them).
    Palette(Vec<[u8; 3]>),
}

impl Model {
    /// How many samples of a pixel make its gray level (the first ones).
    pub fn samples_used(&self) -> usize {
        match self {
            Model::Gray { .. } | Model::YCbCr | Model::Palette(_) => 1,
            Model::GrayPremultiplied { .. } => 2,
            Model::Rgb {
                premultiplied: false,
            } => 3,
            Model::Rgb {
                premultiplied: true,
            }
            | Model::Cmyk => 4,
        }
    }
}

/// What one stored sample is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleKind {
    Unsigned,
    Signed,
    Float,
}

/// How the decoder is to read the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// As it is.
    AsStored,
    /// A copy with these entries changed (`ifd.rs`).
    Rewritten(Vec<Patch>),
    /// CCITT modified Huffman (compression 2) or Group 3 one-dimensional (3)
    /// strips, decoded by `fax.rs`; `group3` for the latter.
    Fax { group3: bool },
    /// Tiles in separate planes: one copy with these entries changed (one
    /// sample, gray), narrowed to each plane the model uses in turn
    /// (`ifd::narrow_to_plane`) and read as a gray image; the `tiff` crate 0.11
    /// miscomputes the edge tiles of every plane but the first when it reads
    /// them together.
    PlaneByPlane(Vec<Patch>),
}

impl Read {
    /// Whether reading makes a copy of the file (held while it decodes).
    pub fn copies_the_file(&self) -> bool {
        matches!(self, Read::Rewritten(_) | Read::PlaneByPlane(_))
    }
}

/// The decision for one TIFF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub model: Model,
    pub kind: SampleKind,
    /// Bits per stored sample.
    pub bits: u16,
    pub read: Read,
    /// The bytes of every strip or tile are stored least significant bit first
    /// (FillOrder 2): the copy has them reversed, as libtiff reads them.
    pub reverse_chunk_bits: bool,
    /// The colour model's name in `image_inspections.color_type`.
    pub color_type: &'static str,
}

const WHITE_IS_ZERO: u16 = 0;
const BLACK_IS_ZERO: u16 = 1;
const RGB: u16 = 2;
const PALETTE: u16 = 3;
const CMYK: u16 = 5;
const YCBCR: u16 = 6;
const CIELAB: u16 = 8;
const ICCLAB: u16 = 9;
const OLD_JPEG: u16 = 6;
const JPEG: u16 = 7;

/// The plan for a TIFF with these tags, or, in words, what it holds that none
/// reads.
pub fn plan(tags: &Tags) -> Result<Plan, String> {
    // libtiff reverses the bytes of every compression but JPEG's, whose
    // stream has its own order (TIFF_NOBITREV); so does Pillow.
    let reverse_chunk_bits = match tags.fill_order {
        1 => false,
        2 => !matches!(tags.compression, OLD_JPEG | JPEG),
        other => return Err(format!("FillOrder {other}")),
    };
    if matches!(tags.compression, 2 | 3) {
        return fax_plan(tags);
    }
    let kind = match tags.sample_format {
        1 | 4 => SampleKind::Unsigned,
        2 => SampleKind::Signed,
        3 => SampleKind::Float,
        5 | 6 => return Err(format!("{}-bit complex samples", tags.bits)),
        other => return Err(format!("sample format {other}")),
    };
    let bits = tags.bits;
    let native_depth = matches!(bits, 8 | 16 | 32 | 64);
    match (kind, bits) {
        (SampleKind::Float, 16 | 32 | 64) => {}
        (SampleKind::Float, b) => return Err(format!("{b}-bit floating-point samples")),
        (_, 1..=64) => {}
        (_, b) => return Err(format!("{b}-bit samples")),
    }
    // The decoder opens no directory without one (ifd.rs names it then).
    let photometric = tags.photometric.ok_or("no photometric interpretation")?;
    let need = |n: u16, what: &str| {
        if tags.samples >= n {
            Ok(())
        } else {
            Err(format!("{what} in {} samples", tags.samples))
        }
    };
    let alpha = tags.samples > 1;
    let (model, color_type) = match photometric {
        WHITE_IS_ZERO | BLACK_IS_ZERO if alpha && tags.extra_sample == Some(1) => {
            (Model::GrayPremultiplied { invert: false }, "gray_alpha")
        }
        WHITE_IS_ZERO | BLACK_IS_ZERO => (
            Model::Gray { invert: false },
            if alpha { "gray_alpha" } else { "gray" },
        ),
        RGB => {
            need(3, "RGB")?;
            let premultiplied = tags.samples > 3 && tags.extra_sample == Some(1);
            (
                Model::Rgb { premultiplied },
                if tags.samples > 3 { "rgba" } else { "rgb" },
            )
        }
        CMYK => {
            need(4, "CMYK")?;
            (Model::Cmyk, "cmyk")
        }
        CIELAB | ICCLAB => {
            need(3, "L*a*b*")?;
            if bits != 8 {
                return Err(format!("L*a*b* with {bits}-bit samples"));
            }
            (Model::Gray { invert: false }, "lab")
        }
        YCBCR if tags.compression == OLD_JPEG => {
            return Err("old-style JPEG compression (6)".into());
        }
        YCBCR => {
            need(3, "YCbCr")?;
            if bits != 8 {
                return Err(format!("YCbCr with {bits}-bit samples"));
            }
            if tags.subsampling != (1, 1) && tags.compression != JPEG {
                let (h, v) = tags.subsampling;
                return Err(format!(
                    "YCbCr with {h} × {v} chroma subsampling outside JPEG (compression {})",
                    tags.compression
                ));
            }
            (Model::YCbCr, "rgb")
        }
        PALETTE => {
            if kind != SampleKind::Unsigned || bits > 8 {
                return Err(format!("a palette of {bits}-bit indices"));
            }
            let map = tags
                .colormap
                .as_deref()
                .ok_or("a palette without a ColorMap")?;
            let n = 1usize << bits;
            if map.len() < 3 * n {
                return Err(format!(
                    "a ColorMap of {} values for {bits}-bit indices (3 × {n} needed)",
                    map.len()
                ));
            }
            let colour = |i: usize| {
                let high = |v: u16| (v >> 8) as u8;
                [high(map[i]), high(map[n + i]), high(map[2 * n + i])]
            };
            (Model::Palette((0..n).map(colour).collect()), "palette")
        }
        4 => return Err("a transparency mask (photometric interpretation 4)".into()),
        10 => return Err("ITU L*a*b* colour (photometric interpretation 10)".into()),
        other => return Err(format!("photometric interpretation {other}")),
    };
    // The decoder reads gray in any depth up to 8 bits, and whole bytes of
    // every model; a palette it does not read at all.
    let mut patches = Vec::new();
    let mut model = model;
    // The decoder inverts one-sample unsigned and 32- and 64-bit float gray
    // itself; not signed, half-float or several samples.
    let decoder_inverts = tags.samples == 1
        && match kind {
            SampleKind::Unsigned => matches!(bits, 1 | 2 | 4 | 8 | 16 | 32 | 64),
            SampleKind::Float => bits >= 32,
            SampleKind::Signed => false,
        };
    let black_is_zero = Patch {
        tag: 262,
        value: u32::from(BLACK_IS_ZERO),
    };
    // The decoder reads no palette and no CIE L*a*b*; as gray they are the
    // index and L* (the first sample, its a* and b* then ignored).
    if matches!(model, Model::Palette(_)) || photometric == CIELAB {
        patches.push(black_is_zero);
    } else if photometric == WHITE_IS_ZERO && !decoder_inverts {
        patches.push(black_is_zero);
        model = match model {
            Model::GrayPremultiplied { .. } => Model::GrayPremultiplied { invert: true },
            _ => Model::Gray { invert: true },
        };
    }
    let gray_like = matches!(
        model,
        Model::Gray { .. } | Model::GrayPremultiplied { .. } | Model::Palette(_)
    );
    let decoder_reads_depth = native_depth || (gray_like && bits < 8);
    if bits < 8 && tags.samples > 1 && tags.planar == 2 {
        return Err(format!(
            "{bits}-bit samples in {} separate planes",
            tags.samples
        ));
    }
    if !decoder_reads_depth {
        let refuse = |why: &str| Err(format!("{bits}-bit samples {why}"));
        if tags.samples != 1 {
            return refuse(&format!("in {} samples per pixel", tags.samples));
        }
        if tags.tile.is_some() {
            return refuse("in tiles");
        }
        if tags.predictor != 1 {
            return refuse(&format!("with predictor {}", tags.predictor));
        }
        if matches!(tags.compression, 2..=4 | 6 | JPEG) {
            return refuse(&format!("with compression {}", tags.compression));
        }
        let row_bytes = (u64::from(tags.width) * u64::from(bits)).div_ceil(8);
        let row_bytes = u32::try_from(row_bytes).map_err(|_| "a row over 4 GiB".to_string())?;
        patches.extend([
            Patch {
                tag: 256,
                value: row_bytes,
            },
            Patch { tag: 258, value: 8 },
        ]);
        if !patches.contains(&black_is_zero) {
            patches.push(black_is_zero);
        }
    }
    if reverse_chunk_bits {
        patches.push(Patch { tag: 266, value: 1 });
    }
    let read = if tags.tile.is_some() && tags.planar == 2 && tags.samples > 1 {
        // bits ≥ 8 here: packed samples in planes are refused above.
        let mut per_plane = vec![
            Patch { tag: 277, value: 1 },
            Patch { tag: 284, value: 1 },
            Patch {
                tag: 258,
                value: u32::from(bits),
            },
            black_is_zero,
        ];
        if tags.has_sample_format {
            per_plane.push(Patch {
                tag: 339,
                value: u32::from(tags.sample_format),
            });
        }
        if tags.extra_sample.is_some() {
            per_plane.push(Patch { tag: 338, value: 0 });
        }
        per_plane.extend(patches.into_iter().filter(|p| p.tag != 262));
        Read::PlaneByPlane(per_plane)
    } else if patches.is_empty() {
        Read::AsStored
    } else {
        Read::Rewritten(patches)
    };
    Ok(Plan {
        model,
        kind,
        bits,
        read,
        reverse_chunk_bits,
        color_type,
    })
}

/// Fax strips: one-bit gray, white runs sample 0 (so white where white is zero).
fn fax_plan(tags: &Tags) -> Result<Plan, String> {
    let name = if tags.compression == 2 {
        "CCITT modified Huffman"
    } else {
        "CCITT Group 3 fax"
    };
    let photometric = tags.photometric.ok_or("no photometric interpretation")?;
    if tags.bits != 1 || tags.samples != 1 || !matches!(photometric, 0 | 1) {
        return Err(format!(
            "{name} data of {} samples of {} bits, photometric interpretation {photometric}",
            tags.samples, tags.bits
        ));
    }
    if tags.tile.is_some() {
        return Err(format!("{name} data in tiles"));
    }
    if tags.compression == 3 {
        // Bit 0: two-dimensional coding; bit 1: uncompressed mode.
        match tags.t4_options {
            Some(o) if o & 0b11 == 0 => {}
            Some(o) => return Err(format!("CCITT Group 3 fax with T4Options {o}")),
            None => return Err("CCITT Group 3 fax whose T4Options do not read".into()),
        }
        if tags.width > u32::from(u16::MAX) {
            return Err(format!("CCITT Group 3 fax rows of {} pixels", tags.width));
        }
    }
    if !matches!(tags.fill_order, 1 | 2) {
        return Err(format!("{name} data with FillOrder {}", tags.fill_order));
    }
    Ok(Plan {
        model: Model::Gray {
            invert: photometric == WHITE_IS_ZERO,
        },
        kind: SampleKind::Unsigned,
        bits: 1,
        read: Read::Fax {
            group3: tags.compression == 3,
        },
        reverse_chunk_bits: false,
        color_type: "gray",
    })
}

/// The features named in a refusal: what the tags hold, in words, that makes
/// the decoder's refusal plausible ("YCbCr", "LZMA compression").
/// Empty when they hold nothing unusual.
pub fn unusual(tags: &Tags) -> Vec<String> {
    let mut found = Vec::new();
    let compression = match tags.compression {
        6 => Some("old-style JPEG"),
        34661 => Some("JBIG"),
        34712 => Some("JPEG 2000"),
        34887 => Some("LERC"),
        34925 => Some("LZMA"),
        50000 => Some("Zstandard"),
        50001 => Some("WebP"),
        52546 => Some("JPEG XL"),
        _ => None,
    };
    if let Some(name) = compression {
        found.push(format!("{name} compression ({})", tags.compression));
    }
    if tags.predictor != 1 {
        found.push(format!("predictor {}", tags.predictor));
    }
    if tags.photometric == Some(YCBCR) {
        let (h, v) = tags.subsampling;
        found.push(format!("YCbCr with {h} × {v} chroma subsampling"));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags() -> Tags {
        Tags::example()
    }

    #[test]
    fn whole_bytes_are_read_as_stored() {
        for (photometric, samples, color_type) in [
            (BLACK_IS_ZERO, 1, "gray"),
            (BLACK_IS_ZERO, 2, "gray_alpha"),
            (RGB, 3, "rgb"),
            (RGB, 4, "rgba"),
            (CMYK, 4, "cmyk"),
        ] {
            for (format, bits) in [(1, 8), (1, 16), (2, 16), (1, 32), (3, 32), (3, 64)] {
                let t = Tags {
                    photometric: Some(photometric),
                    samples,
                    sample_format: format,
                    bits,
                    ..tags()
                };
                let p = plan(&t).unwrap();
                assert_eq!(p.read, Read::AsStored, "{t:?}");
                assert_eq!(p.color_type, color_type);
            }
        }
    }

    #[test]
    fn a_palette_is_read_as_gray_indices_and_its_map_by_high_bytes() {
        let mut map = vec![0u16; 3 * 16];
        map[1] = 0xFF00; // red of index 1
        map[16 + 1] = 0x80FF; // green of index 1
        map[32 + 2] = 0x0101; // blue of index 2
        let t = Tags {
            photometric: Some(PALETTE),
            bits: 4,
            colormap: Some(map),
            ..tags()
        };
        let p = plan(&t).unwrap();
        assert_eq!(p.read, Read::Rewritten(vec![Patch { tag: 262, value: 1 }]));
        let Model::Palette(colours) = p.model else {
            panic!("{:?}", p.model)
        };
        assert_eq!(colours.len(), 16);
        assert_eq!(colours[1], [0xFF, 0x80, 0]);
        assert_eq!(colours[2], [0, 0, 1]);
        let short = Tags {
            colormap: Some(vec![0; 3 * 15]),
            ..t.clone()
        };
        assert!(plan(&short).unwrap_err().contains("ColorMap of 45 values"));
        let none = Tags {
            colormap: None,
            ..t
        };
        assert!(plan(&none).unwrap_err().contains("without a ColorMap"));
    }

    #[test]
    fn twelve_bit_strips_are_read_as_the_bytes_of_their_rows() {
        let t = Tags {
            bits: 12,
            photometric: Some(WHITE_IS_ZERO),
            width: 31,
            ..tags()
        };
        let p = plan(&t).unwrap();
        assert_eq!(
            p.read,
            Read::Rewritten(vec![
                Patch { tag: 262, value: 1 },
                Patch {
                    tag: 256,
                    value: 47 // ⌈31 × 12 / 8⌉
                },
                Patch { tag: 258, value: 8 },
            ])
        );
        assert_eq!(p.model, Model::Gray { invert: true });
        assert_eq!(p.bits, 12);
        for (t, why) in [
            (
                Tags {
                    tile: Some((16, 16)),
                    ..t.clone()
                },
                "in tiles",
            ),
            (
                Tags {
                    predictor: 2,
                    ..t.clone()
                },
                "predictor 2",
            ),
            (
                Tags {
                    samples: 3,
                    photometric: Some(RGB),
                    ..t.clone()
                },
                "3 samples",
            ),
            (
                Tags {
                    compression: 7,
                    ..t.clone()
                },
                "compression 7",
            ),
        ] {
            let e = plan(&t).unwrap_err();
            assert!(e.contains("12-bit samples") && e.contains(why), "{e}");
        }
        // Under 8 bits the decoder reads gray itself.
        let four = Tags { bits: 4, ..tags() };
        assert_eq!(plan(&four).unwrap().read, Read::AsStored);
    }

    #[test]
    fn white_is_zero_is_inverted_here_where_the_decoder_does_not() {
        let white = |bits, sample_format, samples| {
            let t = Tags {
                photometric: Some(WHITE_IS_ZERO),
                bits,
                sample_format,
                samples,
                ..tags()
            };
            plan(&t).unwrap()
        };
        for (bits, samples) in [(8, 1), (4, 1), (1, 1)] {
            let p = white(bits, 1, samples);
            assert_eq!(p.read, Read::AsStored);
            assert_eq!(p.model, Model::Gray { invert: false });
        }
        for (bits, format) in [(16, 1), (32, 1), (32, 3), (64, 3)] {
            assert_eq!(
                white(bits, format, 1).read,
                Read::AsStored,
                "{bits} {format}"
            );
        }
        for (bits, format, samples) in [(8, 2, 1), (16, 2, 1), (8, 1, 2), (16, 3, 1), (3, 1, 1)] {
            let p = white(bits, format, samples);
            assert_eq!(p.read, Read::Rewritten(vec![Patch { tag: 262, value: 1 }]));
            assert_eq!(p.model, Model::Gray { invert: true });
        }
    }

    #[test]
    fn planes_of_packed_samples_are_refused_reversed_bits_rewritten() {
        let jpeg_reversed = Tags {
            fill_order: 2,
            compression: JPEG,
            photometric: Some(RGB),
            samples: 3,
            ..tags()
        };
        let p = plan(&jpeg_reversed).unwrap();
        assert!(
            !p.reverse_chunk_bits,
            "a JPEG stream keeps its own bit order"
        );
        let reversed = Tags {
            fill_order: 2,
            ..tags()
        };
        let p = plan(&reversed).unwrap();
        assert!(p.reverse_chunk_bits);
        assert_eq!(p.read, Read::Rewritten(vec![Patch { tag: 266, value: 1 }]));
        let unknown = Tags {
            fill_order: 3,
            ..tags()
        };
        assert_eq!(plan(&unknown).unwrap_err(), "FillOrder 3");
        let planes = Tags {
            bits: 4,
            samples: 2,
            planar: 2,
            ..tags()
        };
        assert!(plan(&planes).unwrap_err().contains("separate planes"));
    }

    #[test]
    fn tiled_planes_are_read_one_at_a_time_as_gray() {
        let t = Tags {
            photometric: Some(RGB),
            samples: 4,
            planar: 2,
            tile: Some((16, 16)),
            bits: 16,
            has_sample_format: true,
            extra_sample: Some(1),
            ..tags()
        };
        let p = plan(&t).unwrap();
        let patch = |tag, value| Patch { tag, value };
        assert_eq!(
            p.read,
            Read::PlaneByPlane(vec![
                patch(277, 1),
                patch(284, 1),
                patch(258, 16),
                patch(262, 1),
                patch(339, 1),
                patch(338, 0),
            ])
        );
        assert_eq!(
            p.model,
            Model::Rgb {
                premultiplied: true
            }
        );
        assert_eq!(p.model.samples_used(), 4);
        // Strips of separate planes the decoder reads whole.
        let strips = Tags { tile: None, ..t };
        assert_eq!(plan(&strips).unwrap().read, Read::AsStored);
    }

    #[test]
    fn fax_is_one_bit_gray_white_where_the_photometric_says_and_2d_is_refused() {
        let fax = |compression, photometric, t4_options| Tags {
            compression,
            photometric: Some(photometric),
            bits: 1,
            t4_options,
            ..tags()
        };
        let p = plan(&fax(2, WHITE_IS_ZERO, Some(0))).unwrap();
        assert_eq!(p.read, Read::Fax { group3: false });
        assert_eq!(p.model, Model::Gray { invert: true });
        let p = plan(&fax(3, BLACK_IS_ZERO, Some(4))).unwrap();
        assert_eq!(p.read, Read::Fax { group3: true });
        assert_eq!(p.model, Model::Gray { invert: false });
        for (t4, why) in [
            (Some(1), "T4Options 1"),
            (Some(2), "T4Options 2"),
            (None, "do not read"),
        ] {
            let e = plan(&fax(3, WHITE_IS_ZERO, t4)).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
        let wide = Tags {
            width: 70_000,
            ..fax(3, 0, Some(0))
        };
        assert!(plan(&wide).unwrap_err().contains("70000 pixels"));
        let gray = Tags {
            bits: 8,
            ..fax(2, 0, Some(0))
        };
        assert!(plan(&gray).unwrap_err().contains("of 1 samples of 8 bits"));
    }

    #[test]
    fn what_no_plan_reads_is_named() {
        let refused = |t: Tags| plan(&t).unwrap_err();
        let ycbcr = |subsampling, compression| Tags {
            photometric: Some(YCBCR),
            samples: 3,
            subsampling,
            compression,
            ..tags()
        };
        assert!(refused(ycbcr((2, 2), 1)).contains("2 × 2 chroma subsampling"));
        assert_eq!(plan(&ycbcr((2, 2), 7)).unwrap().model, Model::YCbCr);
        assert_eq!(plan(&ycbcr((1, 1), 5)).unwrap().model, Model::YCbCr);
        let complex = Tags {
            sample_format: 6,
            bits: 64,
            ..tags()
        };
        assert_eq!(refused(complex), "64-bit complex samples");
        let float24 = Tags {
            sample_format: 3,
            bits: 24,
            ..tags()
        };
        assert_eq!(refused(float24), "24-bit floating-point samples");
        let lab = Tags {
            photometric: Some(8),
            samples: 3,
            ..tags()
        };
        assert_eq!(plan(&lab).unwrap().color_type, "lab");
        let itu = Tags {
            photometric: Some(10),
            samples: 3,
            ..tags()
        };
        assert!(refused(itu).contains("ITU L*a*b*"));
        let old_jpeg = Tags {
            photometric: Some(YCBCR),
            samples: 3,
            compression: 6,
            ..tags()
        };
        assert_eq!(refused(old_jpeg), "old-style JPEG compression (6)");
        let two_sample_rgb = Tags {
            photometric: Some(RGB),
            samples: 2,
            ..tags()
        };
        assert!(refused(two_sample_rgb).contains("RGB in 2 samples"));
    }
}
