//! One image's header and its pixels as gray levels, bounded: the header is read
//! first, and an image that declares more than `max_pixels`, or whose decode would
//! take more than `max_decode_bytes`, is refused before any pixel is allocated.
//!
//! JPEG goes through zune-jpeg (`jpeg.rs`), TIFF through the `tiff` crate
//! (`tiff/`), PNG, BMP and WebP through `image` (`raster.rs`), each with its
//! own limits lifted so these bounds decide. A decoder that panics on a hostile file is caught here: the file is a
//! reject, the run goes on.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::format::Format;
use super::gray::{Gray, zeros};
use super::{jpeg, raster, tiff};

/// What the header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub format: Format,
    pub width: u32,
    pub height: u32,
    pub color_type: &'static str,
    pub bit_depth: u8,
    pub progressive: Option<bool>,
}

/// An image decoded to gray levels, at full size.
#[derive(Debug)]
pub struct Decoded {
    pub header: Header,
    pub gray: Gray,
}

/// Where indexing an image stopped (the `stage` of `image_rejects`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The object could not be read whole (over `max_file_bytes`, changed).
    Read,
    /// Its bytes are none of the formats read.
    Recognise,
    /// Its header does not parse.
    Header,
    /// It declares more than the bounds allow.
    Limits,
    /// Its image data is truncated or corrupt.
    Decode,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Read => "read",
            Stage::Recognise => "recognise",
            Stage::Header => "header",
            Stage::Limits => "limits",
            Stage::Decode => "decode",
        }
    }
}

/// Why an image was refused: the stage and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub stage: Stage,
    pub reason: String,
}

pub(super) fn refused(stage: Stage, reason: impl Into<String>) -> Refused {
    Refused {
        stage,
        reason: reason.into(),
    }
}

/// The bounds of one decode.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_pixels: u64,
    pub max_decode_bytes: u64,
}

impl Bounds {
    pub(super) fn check_pixels(&self, width: u64, height: u64) -> Result<(), Refused> {
        let pixels = width * height;
        if pixels > self.max_pixels {
            return Err(refused(
                Stage::Limits,
                format!(
                    "{width} × {height} = {pixels} pixels declared, over max_pixels ({})",
                    self.max_pixels
                ),
            ));
        }
        if pixels == 0 {
            return Err(refused(
                Stage::Header,
                format!("{width} × {height}: an image with no pixels"),
            ));
        }
        Ok(())
    }

    pub(super) fn check_memory(&self, what: &str, bytes: u64) -> Result<(), Refused> {
        if bytes > self.max_decode_bytes {
            return Err(refused(
                Stage::Limits,
                format!(
                    "decoding {what} would take {bytes} bytes, over max_decode_bytes ({})",
                    self.max_decode_bytes
                ),
            ));
        }
        Ok(())
    }
}

/// `len` zero bytes, in `spare` (the plane of the image before) when that has
/// room for exactly `len`, as a run of one camera's images do: a fresh zeroed
/// buffer of camera size comes from the allocator as pages the kernel faults in
/// as the decoder writes them (3% of the image job's time), and zeroing a kept
/// one costs a fraction of that. Any other spare is freed first, so a decode
/// holds no more than the bytes its bounds counted (a spare grown or larger
/// would hold more). Zeroed, never the last image's levels: what a decoder
/// leaves unwritten reads 0, as in a new buffer. A new plane is zeroed as
/// `gray.rs`'s planes are ([`zeros`]), not asked of the allocator zeroed: over
/// 400 JPEGs of two sizes in turn, page faults 200–206 K → 41–50 K and 5% less
/// time, for a peak about 8 MiB higher (docs/benchmarks.md, Images).
pub(super) fn zeroed(mut spare: Vec<u8>, len: usize) -> Vec<u8> {
    if spare.capacity() != len {
        drop(spare);
        return zeros(len);
    }
    spare.clear();
    spare.resize(len, 0);
    spare
}

/// Decodes `bytes`, known to be in `format` by its magic bytes. `spare` is the
/// gray plane of the image before, which a JPEG is decoded into ([`zeroed`]);
/// any other format frees it first, so that what a decode holds stays within
/// `max_decode_bytes`.
pub fn decode(
    format: Format,
    bytes: &[u8],
    bounds: &Bounds,
    spare: Vec<u8>,
) -> Result<Decoded, Refused> {
    let run = move || match format {
        Format::Jpeg => jpeg::decode(bytes, bounds, spare),
        Format::Tiff => {
            drop(spare);
            tiff::decode(bytes, bounds)
        }
        other => {
            drop(spare);
            raster::decode(other, bytes, bounds)
        }
    };
    match catch_unwind(AssertUnwindSafe(run)) {
        Ok(r) => r,
        Err(_) => Err(refused(
            Stage::Decode,
            format!(
                "the {} decoder failed on this file (it panicked)",
                format.name()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spare_of_the_size_asked_comes_back_zeroed() {
        let spare = vec![200u8; 4096];
        let at = spare.as_ptr();
        let p = zeroed(spare, 4096);
        assert_eq!(p.as_ptr(), at, "the spare's allocation is reused");
        assert_eq!(p, vec![0u8; 4096], "none of the last image's levels");
        let mut dirty = p;
        dirty.truncate(100);
        assert_eq!(zeroed(dirty, 4096), vec![0u8; 4096], "whatever its length");
    }

    #[test]
    fn a_spare_of_another_size_is_not_used() {
        for (spare, len) in [(1000, 1001), (4096, 4095), (0, 10), (10, 0)] {
            let p = zeroed(vec![7u8; spare], len);
            assert_eq!(p, vec![0u8; len]);
            // Neither the spare (capacity `spare`) nor the spare grown
            // (capacity at least twice `spare`).
            assert_eq!(p.capacity(), len, "a buffer of its own size");
        }
    }
}
