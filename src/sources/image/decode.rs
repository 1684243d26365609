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
