//! `naslake sniff URL`: the first bytes of a file no job describes yet, for the
//! source kinds to write the `[sources.NAME]` block that reads it
//! ([`super::Source::sniff`]).

use std::io::Read;

use object_store::ObjectStoreExt;

use crate::base::error::{Error, Result};
use crate::storage::Location;

/// How much of a file is sampled (after gunzip for `.gz` names): enough lines for
/// the shape and the types of a logger export, bounded whatever the file's size.
pub const SAMPLE_BYTES: usize = 4 << 20;

/// The start of one file.
#[derive(Debug)]
pub struct Sample<'a> {
    pub head: &'a [u8],
    /// The file goes on after `head`.
    pub truncated: bool,
    /// The file's name (its last path segment).
    pub file_name: &'a str,
    /// The source name asked for (`--name`).
    pub name: Option<&'a str>,
}

/// A kind's description of a sampled file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    /// A `[sources.NAME]` block: valid TOML, comments as `#` lines.
    pub block: String,
    /// What to tell the person on standard error.
    pub remarks: Vec<String>,
}

/// A sampled file: its first bytes (gunzipped), whether there is more, its name.
#[derive(Debug)]
pub struct Sampled {
    pub head: Vec<u8>,
    pub truncated: bool,
    pub file_name: String,
}

/// Reads at most [`SAMPLE_BYTES`] of the file at `url` (a local path or any
/// address `run` takes), with one ranged read.
pub async fn sample(url: &str) -> Result<Sampled> {
    let file = Location::open(url)?;
    let file_name = file
        .prefix
        .filename()
        .ok_or_else(|| Error::config(format!("{}: names no file", file.display)))?
        .to_string();
    let meta = file
        .store
        .head(&file.prefix)
        .await
        .map_err(|e| Error::config(format!("{}: cannot be read: {e}", file.display)))?;
    let gz = file_name.to_ascii_lowercase().ends_with(".gz");
    // A gzip member holds more than it takes: read enough to fill the sample.
    let want = if gz {
        SAMPLE_BYTES as u64
    } else {
        SAMPLE_BYTES as u64 + 1
    };
    let raw = file.read_head(&file.prefix, meta.size, want).await?;
    if !gz {
        let truncated = raw.len() > SAMPLE_BYTES;
        let head = raw[..raw.len().min(SAMPLE_BYTES)].to_vec();
        return Ok(Sampled {
            head,
            truncated,
            file_name,
        });
    }
    let mut head = Vec::new();
    let mut decoder = flate2::read::MultiGzDecoder::new(&raw[..]).take(SAMPLE_BYTES as u64 + 1);
    // A sample cut inside the stream ends in an error: what came before it counts.
    let complete = decoder.read_to_end(&mut head).is_ok();
    let truncated = head.len() > SAMPLE_BYTES || !complete || meta.size > raw.len() as u64;
    if head.is_empty() && !complete {
        return Err(Error::config(format!(
            "{}: is named .gz but does not decompress",
            file.display
        )));
    }
    head.truncate(SAMPLE_BYTES);
    Ok(Sampled {
        head,
        truncated,
        file_name,
    })
}
