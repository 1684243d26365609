//! The JPEG decode alone, as naslake's image source asks zune-jpeg for it (a
//! YCbCr file decoded to its luma plane, nothing else): milliseconds per image
//! on one core, over every `.jpg` under a folder, the files read into memory
//! first. `scripts/bench-images` prints it beside Pillow's own decodes, as the
//! floor under naslake's time per image.
//!
//! Usage: jpeg_decode_floor DIR

use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: jpeg_decode_floor DIR")?;
    let mut files = Vec::new();
    let mut pending = vec![std::path::PathBuf::from(dir)];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(d)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "jpg") {
                files.push(std::fs::read(&path)?);
            }
        }
    }
    if files.is_empty() {
        return Err("no .jpg files".into());
    }
    let started = std::time::Instant::now();
    let mut pixels = 0usize;
    for bytes in &files {
        let options = DecoderOptions::default()
            .set_max_width(usize::from(u16::MAX))
            .set_max_height(usize::from(u16::MAX))
            .jpeg_set_out_colorspace(ColorSpace::Luma)
            .set_strict_mode(true);
        let mut decoder = JpegDecoder::new_with_options(ZCursor::new(bytes), options);
        pixels += decoder.decode()?.len();
    }
    let ms = started.elapsed().as_secs_f64() * 1e3 / files.len() as f64;
    println!("{} {ms:.2} {pixels}", files.len());
    Ok(())
}
