//! The bytes zune-jpeg decodes from: zune's own in-memory cursor (`ZCursor`)
//! with one read made cheap.
//!
//! zune's bit reader refills itself four bytes at a time through
//! `read_exact_bytes`. With zune-core's `std` feature (which zune-jpeg's
//! defaults turn on), the cursor serves that through its `io::Read`, copying a
//! slice whose length it knows only at run time (the bytes asked for or the
//! bytes left, whichever is fewer), so every refill in the decoder's hot loop
//! was a call to `memcpy` (docs/benchmarks.md, Images, "zune-jpeg's reader").
//! Here a read that fits copies exactly the length asked for, which becomes one
//! load once the decoder's call is inlined. A read that does not fit, and every
//! other method (the bit reader's byte-at-a-time path at an `FF` byte among
//! them), is the cursor's own, so the decoder sees the same bytes, positions
//! and errors as with `ZCursor` (a property test holds the two to that).

use zune_core::bytestream::{ZByteIoError, ZByteReaderTrait, ZCursor, ZSeekFrom};

/// A JPEG in memory, as zune-jpeg reads it.
pub struct JpegBytes<'a>(ZCursor<&'a [u8]>);

impl<'a> JpegBytes<'a> {
    /// The reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        JpegBytes(ZCursor::new(bytes))
    }
}

impl ZByteReaderTrait for JpegBytes<'_> {
    #[inline(always)]
    fn read_byte_no_error(&mut self) -> u8 {
        self.0.read_byte_no_error()
    }

    #[inline(always)]
    fn read_exact_bytes(&mut self, buf: &mut [u8]) -> Result<(), ZByteIoError> {
        // `split` clamps the position to the end: from a position past it
        // (a seek may put it there) `rest` is empty, and any read of a byte or
        // more falls through to the cursor, whose partial copy, error and
        // rewind are then the ones zune has always seen.
        let (_, rest) = self.0.split();
        if let Some(src) = rest.get(..buf.len()) {
            buf.copy_from_slice(src);
            self.0.skip(buf.len());
            return Ok(());
        }
        self.0.read_exact_bytes(buf)
    }

    #[inline(always)]
    fn read_bytes(&mut self, buf: &mut [u8]) -> Result<usize, ZByteIoError> {
        self.0.read_bytes(buf)
    }

    #[inline(always)]
    fn peek_bytes(&mut self, buf: &mut [u8]) -> Result<usize, ZByteIoError> {
        self.0.peek_bytes(buf)
    }

    #[inline(always)]
    fn peek_exact_bytes(&mut self, buf: &mut [u8]) -> Result<(), ZByteIoError> {
        self.0.peek_exact_bytes(buf)
    }

    #[inline(always)]
    fn z_seek(&mut self, from: ZSeekFrom) -> Result<u64, ZByteIoError> {
        self.0.z_seek(from)
    }

    #[inline(always)]
    fn is_eof(&mut self) -> Result<bool, ZByteIoError> {
        self.0.is_eof()
    }

    #[inline(always)]
    fn z_position(&mut self) -> Result<u64, ZByteIoError> {
        self.0.z_position()
    }

    fn read_remaining(&mut self, sink: &mut Vec<u8>) -> Result<usize, ZByteIoError> {
        self.0.read_remaining(sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One call of the trait, with its argument.
    #[derive(Debug, Clone)]
    enum Op {
        Byte,
        Exact(usize),
        Read(usize),
        Peek(usize),
        PeekExact(usize),
        Seek(ZSeekFrom),
        Eof,
        Position,
        Remaining,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Byte),
            (0usize..12).prop_map(Op::Exact),
            (0usize..12).prop_map(Op::Read),
            (0usize..12).prop_map(Op::Peek),
            (0usize..12).prop_map(Op::PeekExact),
            (0u64..40).prop_map(|n| Op::Seek(ZSeekFrom::Start(n))),
            (-20i64..20).prop_map(|n| Op::Seek(ZSeekFrom::Current(n))),
            (-20i64..20).prop_map(|n| Op::Seek(ZSeekFrom::End(n))),
            Just(Op::Eof),
            Just(Op::Position),
            Just(Op::Remaining),
        ]
    }

    /// What one call returned and left behind: its result (errors by their
    /// text), the bytes it wrote, and the reader's position after it.
    fn apply(r: &mut impl ZByteReaderTrait, op: &Op) -> (String, Vec<u8>, String) {
        // A buffer of the size asked, filled with a byte the reads must
        // overwrite (so a partial copy shows).
        let asked = match op {
            Op::Exact(n) | Op::Read(n) | Op::Peek(n) | Op::PeekExact(n) => *n,
            _ => 0,
        };
        let mut buf = vec![0xAA; asked];
        let result = match op {
            Op::Byte => format!("{}", r.read_byte_no_error()),
            Op::Exact(_) => format!("{:?}", r.read_exact_bytes(&mut buf)),
            Op::Read(_) => format!("{:?}", r.read_bytes(&mut buf)),
            Op::Peek(_) => format!("{:?}", r.peek_bytes(&mut buf)),
            Op::PeekExact(_) => format!("{:?}", r.peek_exact_bytes(&mut buf)),
            Op::Seek(from) => format!("{:?}", r.z_seek(*from)),
            Op::Eof => format!("{:?}", r.is_eof()),
            Op::Position => format!("{:?}", r.z_position()),
            Op::Remaining => format!("{:?}", r.read_remaining(&mut buf)),
        };
        (result, buf, format!("{:?}", r.z_position()))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Every call, in any order, from any position (past the end too),
        /// returns and writes what zune's own cursor does.
        #[test]
        fn reads_as_zunes_cursor_does(
            bytes in proptest::collection::vec(any::<u8>(), 0..24),
            ops in proptest::collection::vec(op(), 1..40),
        ) {
            let mut ours = JpegBytes::new(&bytes);
            let mut zunes = ZCursor::new(&bytes[..]);
            for (i, op) in ops.iter().enumerate() {
                let (got, want) = (apply(&mut ours, op), apply(&mut zunes, op));
                prop_assert_eq!(got, want, "call {} ({:?})", i, op);
            }
        }
    }

    /// A position at the end of the address space reads as the cursor's does
    /// (an empty read succeeds; nothing is left).
    #[test]
    fn a_seek_to_the_last_position_reads_as_zunes_cursor_does() {
        let bytes = [1u8, 2, 3];
        let mut ours = JpegBytes::new(&bytes);
        let mut zunes = ZCursor::new(&bytes[..]);
        for op in [
            Op::Seek(ZSeekFrom::Start(u64::MAX)),
            Op::Exact(0),
            Op::Eof,
            Op::Position,
        ] {
            assert_eq!(apply(&mut ours, &op), apply(&mut zunes, &op), "{op:?}");
        }
    }

    /// zune-jpeg decodes the same pixels, or fails with the same error, from
    /// either reader: every sample JPEG (baseline and progressive, YCbCr and
    /// CMYK), whole and cut short at 39 points, to each colour space naslake
    /// asks for.
    #[test]
    fn zune_jpeg_decodes_the_same_from_either_reader() {
        use zune_core::colorspace::ColorSpace;
        use zune_core::options::DecoderOptions;
        use zune_jpeg::JpegDecoder;

        // As jpeg.rs decodes: headers with the default options (jpeg.rs also
        // lifts the size limit, which no sample reaches), then the pixels in
        // strict mode, to the colour space chosen.
        fn decode<T: ZByteReaderTrait>(input: T, out: ColorSpace) -> Result<Vec<u8>, String> {
            let mut d = JpegDecoder::new_with_options(input, DecoderOptions::default());
            d.decode_headers().map_err(|e| format!("headers: {e:?}"))?;
            let options = d
                .options()
                .jpeg_set_out_colorspace(out)
                .set_strict_mode(true);
            d.set_options(options);
            d.decode().map_err(|e| format!("{e:?}"))
        }

        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/images");
        let mut files = 0;
        for entry in walkdir::WalkDir::new(dir) {
            let entry = entry.unwrap();
            if entry.path().extension().is_none_or(|e| e != "jpg") {
                continue;
            }
            let whole = std::fs::read(entry.path()).unwrap();
            // Some samples are named .jpg and are not JPEGs (they test the
            // magic-byte check); they are decoded too, but not counted.
            if whole.starts_with(&[0xFF, 0xD8]) {
                files += 1;
            }
            let cuts = (1..40).map(|k| whole.len() * k / 40);
            for len in cuts.chain([whole.len()]) {
                let bytes = &whole[..len];
                for out in [ColorSpace::Luma, ColorSpace::RGB, ColorSpace::CMYK] {
                    assert_eq!(
                        decode(JpegBytes::new(bytes), out),
                        decode(ZCursor::new(bytes), out),
                        "{} cut to {len} bytes, to {out:?}",
                        entry.path().display()
                    );
                }
            }
        }
        assert!(files >= 5, "only {files} sample JPEGs found under {dir}");
    }
}
