//! The bytes zune-jpeg decodes from: zune's own in-memory cursor (`ZCursor`)
//! with one read made cheap.
//!
//! zune's bit reader refills itself four bytes at a time through
//! `read_exact_bytes`. The cursor serves that by copying a slice whose length it
//! knows only at run time (the bytes left, or the bytes asked for), so every
//! refill in the decoder's hot loop called `memcpy`: 2.3% of an image run's
//! samples, besides the registers a call clobbers. Here a read that fits copies
//! exactly the length asked for, which becomes one load once the decoder's
//! call is inlined. A read that does not fit, and every other method, is the
//! cursor's own, so the decoder sees the same bytes, positions and errors as
//! before (a property test holds the two to that).

use zune_core::bytestream::{ZByteIoError, ZByteReaderTrait, ZCursor, ZSeekFrom};

/// A JPEG in memory, as zune-jpeg reads it.
pub struct JpegBytes<'a>(ZCursor<&'a [u8]>);

impl<'a> JpegBytes<'a> {
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
        // `split` is the cursor's position, clamped to the end.
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
        let mut buf = Vec::new();
        let result = match op {
            Op::Byte => format!("{}", r.read_byte_no_error()),
            Op::Exact(n) => {
                buf = vec![0xAA; *n];
                format!("{:?}", r.read_exact_bytes(&mut buf))
            }
            Op::Read(n) => {
                buf = vec![0xAA; *n];
                format!("{:?}", r.read_bytes(&mut buf))
            }
            Op::Peek(n) => {
                buf = vec![0xAA; *n];
                format!("{:?}", r.peek_bytes(&mut buf))
            }
            Op::PeekExact(n) => {
                buf = vec![0xAA; *n];
                format!("{:?}", r.peek_exact_bytes(&mut buf))
            }
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
                prop_assert_eq!(apply(&mut ours, op), apply(&mut zunes, op), "call {} ({:?})", i, op);
            }
        }
    }

    /// zune-jpeg decodes the same pixels, or fails with the same error, from
    /// either reader: every sample JPEG, whole and cut short at many points.
    #[test]
    fn zune_jpeg_decodes_the_same_from_either_reader() {
        use zune_core::colorspace::ColorSpace;
        use zune_core::options::DecoderOptions;
        use zune_jpeg::JpegDecoder;

        fn decode<T: ZByteReaderTrait>(input: T, out: ColorSpace) -> Result<Vec<u8>, String> {
            let options = DecoderOptions::default()
                .jpeg_set_out_colorspace(out)
                .set_strict_mode(true);
            let mut d = JpegDecoder::new_with_options(input, options);
            d.decode().map_err(|e| format!("{e:?}"))
        }

        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/images");
        let mut files = 0;
        for entry in walkdir::WalkDir::new(dir) {
            let entry = entry.unwrap();
            if entry.path().extension().is_none_or(|e| e != "jpg") {
                continue;
            }
            files += 1;
            let whole = std::fs::read(entry.path()).unwrap();
            let cuts = (1..40).map(|k| whole.len() * k / 40);
            for len in cuts.chain([whole.len()]) {
                let bytes = &whole[..len];
                for out in [ColorSpace::Luma, ColorSpace::RGB] {
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
