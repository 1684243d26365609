//! One image's header and its pixels as gray levels, bounded: the header is read
//! first, and an image that declares more than `max_pixels`, or whose decode would
//! take more than `max_decode_bytes`, is refused before any pixel is allocated.
//!
//! JPEG goes through zune-jpeg (`jpeg.rs`), TIFF through the `tiff` crate
//! (`tiff/`), PNG, BMP and WebP through `image` (`raster.rs`), each with its
//! own limits lifted so these bounds decide. A decoder that panics on a hostile file is caught here: the file is a
//! reject, the run goes on.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::format::Format;
use super::gray::Gray;
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

thread_local! {
    /// A full-size plane this thread is done with, for its next JPEG decode. A
    /// fresh zeroed buffer of camera size comes from the allocator as pages the
    /// kernel has to fault in as the decoder writes them (3% of the image job's
    /// time); zeroing a kept one is a fraction of that.
    static SPARE: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// A spare plane larger than this goes back to the allocator: a thread keeps at
/// most this much between images.
const SPARE_BYTES: usize = 32 << 20;

/// `len` zero bytes, in this thread's spare plane when it has one. Zeroed, not
/// left as the last image's pixels: what a decoder does not write stays gray.
pub(super) fn plane(len: usize) -> Vec<u8> {
    let mut p = SPARE.take();
    p.clear();
    p.resize(len, 0);
    p
}

/// Keeps `plane` for this thread's next decode (see [`plane`]).
pub fn recycle(plane: Vec<u8>) {
    if plane.capacity() <= SPARE_BYTES {
        SPARE.set(plane);
    }
}

/// Decodes `bytes`, known to be in `format` by its magic bytes.
pub fn decode(format: Format, bytes: &[u8], bounds: &Bounds) -> Result<Decoded, Refused> {
    let run = || match format {
        Format::Jpeg => jpeg::decode(bytes, bounds),
        Format::Tiff => tiff::decode(bytes, bounds),
        other => raster::decode(other, bytes, bounds),
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
    fn a_kept_plane_comes_back_zeroed_at_the_length_asked() {
        recycle(vec![200u8; 4096]);
        let p = plane(1000);
        assert!(p.capacity() >= 4096, "the kept allocation is reused");
        assert_eq!(p, vec![0u8; 1000], "none of the last image's levels");
        recycle(p);
        assert_eq!(plane(3000), vec![0u8; 3000], "longer than the last use");
    }

    #[test]
    fn a_plane_over_the_limit_is_not_kept() {
        recycle(vec![1u8; 16]);
        recycle(Vec::with_capacity(SPARE_BYTES + 1));
        assert!(plane(0).capacity() < SPARE_BYTES, "the large one was freed");
    }
}
