//! The JPEG decode alone, as naslake's image source runs it
//! (`naslake::sources::image::jpeg::decode`: a YCbCr file decoded to its luma
//! plane, nothing else, into the plane of the decode before), with
//! naslake's allocator: milliseconds per image on one
//! core, the median of three passes over the first `LIMIT` `.jpg` files under a
//! folder (sorted by path), read into memory first. `scripts/bench-images`
//! prints it beside Pillow's own decodes, as the floor under naslake's time per
//! image.
//!
//! Usage: jpeg_decode_floor DIR [LIMIT (default 200)]
//! Prints: FILES MS_PER_IMAGE PIXELS_PER_PASS

use naslake::sources::image::decode::Bounds;
use naslake::sources::image::jpeg;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: jpeg_decode_floor DIR [LIMIT]")?;
    let limit: usize = args.next().map_or(Ok(200), |l| l.parse())?;
    let mut paths = Vec::new();
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry?;
        if entry.file_type().is_file() && entry.path().extension().is_some_and(|e| e == "jpg") {
            paths.push(entry.into_path());
        }
    }
    paths.sort();
    paths.truncate(limit);
    if paths.is_empty() {
        return Err("no .jpg files".into());
    }
    let files = paths
        .iter()
        .map(std::fs::read)
        .collect::<Result<Vec<_>, _>>()?;
    let bounds = Bounds {
        max_pixels: u64::MAX,
        max_decode_bytes: u64::MAX,
    };
    let mut passes = Vec::new();
    let mut pixels = 0;
    let mut spare = Vec::new();
    for _ in 0..3 {
        let started = std::time::Instant::now();
        pixels = 0;
        for bytes in &files {
            let decoded = jpeg::decode(bytes, &bounds, spare).map_err(|e| format!("{e:?}"))?;
            pixels += decoded.gray.pixels.len();
            // As the source does once it has the thumbnail: the next decode
            // goes into this plane.
            spare = decoded.gray.pixels;
        }
        passes.push(started.elapsed().as_secs_f64() * 1e3 / files.len() as f64);
    }
    passes.sort_by(f64::total_cmp);
    println!("{} {:.2} {pixels}", files.len(), passes[1]);
    Ok(())
}
