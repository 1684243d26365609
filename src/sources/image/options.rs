//! The image source's options in a job spec (`sources.NAME`): how objects are
//! recognised, the station pattern, the thumbnail the metrics are computed on, and
//! the limits that keep hostile files small in memory.

use bytesize::ByteSize;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageOptions {
    /// `suffix`: the objects whose keys end in `suffixes` (the formats' usual
    /// ones by default). `content`: every object under the prefix. Either way the
    /// format is the one the magic bytes say; a suffix that names another is
    /// reported (`suffix_matches`), never trusted.
    #[serde(default)]
    pub recognise: Recognise,
    /// A regular expression on the key; its first capture group is the station.
    /// By default the first folder.
    #[serde(default = "default_station_pattern")]
    pub station_pattern: String,
    /// Long side of the grayscale thumbnail the metrics are computed on (images
    /// with a shorter long side are measured at their own size).
    #[serde(default = "default_thumbnail")]
    pub thumbnail_long_side: u32,
    /// Most pixels (width × height) an image may declare; a larger one is
    /// rejected from its header, before any pixel is allocated.
    #[serde(default = "default_max_pixels")]
    pub max_pixels: u64,
    /// Most memory one decode may take (pixels, and a progressive JPEG's
    /// coefficients); a decode that would need more is rejected from its header.
    #[serde(default = "default_max_decode")]
    pub max_decode_bytes: ByteSize,
    /// Largest object read (it is read whole: the content hash covers every byte).
    #[serde(default = "default_max_file")]
    pub max_file_bytes: ByteSize,
    /// Objects read at once (each a reader thread); decoding runs on every core.
    #[serde(default = "default_readers")]
    pub readers: usize,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recognise {
    #[default]
    Suffix,
    Content,
}

fn default_station_pattern() -> String {
    "^([^/]+)/".into()
}
fn default_thumbnail() -> u32 {
    512
}
fn default_max_pixels() -> u64 {
    100_000_000
}
fn default_max_decode() -> ByteSize {
    ByteSize::mib(512)
}
fn default_max_file() -> ByteSize {
    ByteSize::mib(128)
}
fn default_readers() -> usize {
    2
}

impl ImageOptions {
    /// The station pattern, compiled; errors name the key.
    pub fn station(&self) -> Result<regex::Regex, String> {
        let re = regex::Regex::new(&self.station_pattern)
            .map_err(|e| format!("`station_pattern`: {e}"))?;
        if re.captures_len() < 2 {
            return Err(
                "`station_pattern` has no capture group: the first one is the station".into(),
            );
        }
        Ok(re)
    }

    pub fn check(&self) -> Result<(), String> {
        self.station()?;
        if !(8..=4096).contains(&self.thumbnail_long_side) {
            return Err("`thumbnail_long_side` is 8 to 4096 pixels".into());
        }
        // Widths and heights are Athena `int`s: no side may pass i32::MAX.
        if self.max_pixels == 0 || self.max_pixels > i32::MAX as u64 {
            return Err(format!("`max_pixels` is 1 to {}", i32::MAX));
        }
        if !(1..=64).contains(&self.readers) {
            return Err("`readers` is 1 to 64".into());
        }
        if self.max_file_bytes.as_u64() == 0 || self.max_decode_bytes.as_u64() == 0 {
            return Err("`max_file_bytes` and `max_decode_bytes` must be at least 1 byte".into());
        }
        Ok(())
    }
}
