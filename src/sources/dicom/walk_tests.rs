//! The walk's rules, on files written here byte by byte (the real files of the
//! pydicom wheels are the integration tests' job: tests/test_dicom.py).

use std::ops::Range;

use proptest::prelude::*;

use super::*;
use crate::sources::dicom::window::Ranged;

/// Encodes elements of a data set.
struct Writer {
    enc: Encoding,
    out: Vec<u8>,
}

impl Writer {
    fn new(enc: Encoding) -> Self {
        Writer {
            enc,
            out: Vec::new(),
        }
    }
    fn u16(&mut self, v: u16) {
        match self.enc {
            Encoding::ExplicitBig => self.out.extend(v.to_be_bytes()),
            _ => self.out.extend(v.to_le_bytes()),
        }
    }
    fn u32(&mut self, v: u32) {
        match self.enc {
            Encoding::ExplicitBig => self.out.extend(v.to_be_bytes()),
            _ => self.out.extend(v.to_le_bytes()),
        }
    }
    fn tag(&mut self, g: u16, e: u16) {
        self.u16(g);
        self.u16(e);
    }
    /// An element with a value (its length as written, unless `len` says otherwise).
    fn element(
        &mut self,
        g: u16,
        e: u16,
        vr: &[u8; 2],
        value: &[u8],
        len: Option<u32>,
    ) -> &mut Self {
        self.tag(g, e);
        let len = len.unwrap_or(value.len() as u32);
        if self.enc.explicit() {
            self.out.extend(vr);
            if long_vr(*vr) {
                self.out.extend([0, 0]);
                self.u32(len);
            } else {
                self.u16(len as u16);
            }
        } else {
            self.u32(len);
        }
        self.out.extend(value);
        self
    }
    fn text(&mut self, g: u16, e: u16, vr: &[u8; 2], value: &str) -> &mut Self {
        let mut v = value.as_bytes().to_vec();
        if v.len() % 2 == 1 {
            v.push(if vr == b"UI" { 0 } else { b' ' });
        }
        self.element(g, e, vr, &v, None)
    }
    fn item_tag(&mut self, e: u16, len: u32) -> &mut Self {
        self.tag(0xFFFE, e);
        self.u32(len);
        self
    }
    /// An undefined-length element (a sequence, or encapsulated pixel data).
    fn open(&mut self, g: u16, e: u16, vr: &[u8; 2]) -> &mut Self {
        self.element(g, e, vr, &[], Some(UNDEFINED))
    }
}

fn meta(ts: &str) -> Vec<u8> {
    let mut m = Writer::new(Encoding::ExplicitLittle);
    m.text(0x0002, 0x0002, b"UI", "1.2.840.10008.5.1.4.1.1.2")
        .text(0x0002, 0x0003, b"UI", "1.2.3.4.5")
        .text(0x0002, 0x0010, b"UI", ts);
    let mut group = Writer::new(Encoding::ExplicitLittle);
    group.element(
        0x0002,
        0x0000,
        b"UL",
        &(m.out.len() as u32).to_le_bytes(),
        None,
    );
    let mut out = vec![0u8; 128];
    out.extend(b"DICM");
    out.extend(group.out);
    out.extend(m.out);
    out
}

/// A small CT header in `enc`, then native pixel data of `pixels` bytes.
fn data_set(enc: Encoding, pixels: u32) -> Vec<u8> {
    let mut w = Writer::new(enc);
    w.text(0x0008, 0x0005, b"CS", "ISO_IR 100")
        .text(0x0008, 0x0016, b"UI", "1.2.840.10008.5.1.4.1.1.2")
        .text(0x0008, 0x0018, b"UI", "1.2.3.4.5")
        .text(0x0008, 0x0060, b"CS", "CT")
        .element(0x0009, 0x1010, b"OB", &[7u8; 3000], None)
        .text(0x0010, 0x0010, b"PN", "Doe^Jane")
        .text(0x0020, 0x000D, b"UI", "1.2.3")
        .element(0x0028, 0x0010, b"US", &512u16.to_le_bytes(), None);
    w.element(0x7FE0, 0x0010, b"OW", &[], Some(pixels));
    w.out
}

fn file(ts: &str, enc: Encoding, pixels: u32) -> Vec<u8> {
    let mut f = meta(ts);
    f.extend(data_set(enc, pixels));
    f.extend(std::iter::repeat_n(0u8, pixels as usize));
    f
}

fn window(
    data: &[u8],
    budget: u64,
) -> Ranged<impl FnMut(Range<u64>) -> Result<bytes::Bytes, crate::sources::ReadError> + '_> {
    Ranged::new(
        move |r: Range<u64>| {
            Ok(bytes::Bytes::copy_from_slice(
                &data[r.start as usize..r.end as usize],
            ))
        },
        data.len() as u64,
        256,
        budget,
    )
}

fn run(data: &[u8]) -> Result<Walked, Failure> {
    run_budget(data, 1 << 20)
}

fn run_budget(data: &[u8], budget: u64) -> Result<Walked, Failure> {
    match walk(&mut window(data, budget), budget) {
        Ok(w) => Ok(w),
        Err(Outcome::Failed(f)) => Err(f),
        Err(Outcome::Io(e)) => panic!("storage error on memory: {e}"),
    }
}

fn kept_tags(w: &Walked) -> Vec<&'static str> {
    w.elements.iter().map(|k| k.attribute.keyword).collect()
}

#[test]
fn a_part_10_file_keeps_its_attributes_and_stops_at_pixel_data() {
    let f = file("1.2.840.10008.1.2.1", Encoding::ExplicitLittle, 1 << 16);
    let w = run(&f).unwrap();
    assert_eq!(w.encoding, Encoding::ExplicitLittle);
    assert!(!w.guessed);
    assert_eq!(
        w.meta.as_ref().unwrap().transfer_syntax.as_deref(),
        Some("1.2.840.10008.1.2.1")
    );
    assert_eq!(
        kept_tags(&w),
        [
            "SpecificCharacterSet",
            "SOPClassUID",
            "SOPInstanceUID",
            "Modality",
            "PatientName",
            "StudyInstanceUID",
            "Rows"
        ]
    );
    assert_eq!(w.raw(&attributes::MODALITY), Some(&b"CT"[..]));
    assert_eq!(w.pixel_data.unwrap().tag, Tag(0x7FE0, 0x0010));
}

#[test]
fn the_pixel_data_and_skipped_elements_are_not_read() {
    // 64 MiB of pixel data, never fetched: the walk reads a few hundred bytes.
    let mut f = meta("1.2.840.10008.1.2.1");
    f.extend(data_set(Encoding::ExplicitLittle, 64 << 20));
    let header = f.len();
    f.resize(header + (64 << 20), 0);
    let mut w = window(&f, 1 << 20);
    let walked = walk(&mut w, 1 << 20).unwrap();
    assert!(walked.pixel_data.is_some());
    assert!(w.fetched() < 8 * 1024, "read {} bytes", w.fetched());
}

#[test]
fn every_encoding_reads_with_and_without_file_meta() {
    for (ts, enc) in [
        ("1.2.840.10008.1.2", Encoding::ImplicitLittle),
        ("1.2.840.10008.1.2.1", Encoding::ExplicitLittle),
        ("1.2.840.10008.1.2.2", Encoding::ExplicitBig),
        ("1.2.840.10008.1.2.4.50", Encoding::ExplicitLittle),
    ] {
        let w = run(&file(ts, enc, 16)).unwrap();
        assert_eq!((w.encoding, w.guessed), (enc, false), "{ts}");
        assert_eq!(kept_tags(&w).len(), 7, "{ts}");
        // No meta: the encoding is found by trying.
        let w = run(&data_set(enc, 0)).unwrap();
        assert_eq!(
            (w.encoding, w.guessed, w.meta.is_none()),
            (enc, true, true),
            "{ts} without meta"
        );
        assert_eq!(kept_tags(&w).len(), 7);
    }
    // DICM at offset 0: no preamble.
    let f = file("1.2.840.10008.1.2.1", Encoding::ExplicitLittle, 16);
    let w = run(&f[128..]).unwrap();
    assert_eq!(kept_tags(&w).len(), 7);
}

#[test]
fn a_meta_without_transfer_syntax_or_naming_the_wrong_one_is_read_by_guessing() {
    let mut f = meta("1.2.840.10008.1.2.1");
    f.extend(data_set(Encoding::ImplicitLittle, 0));
    let w = run(&f).unwrap();
    assert_eq!((w.encoding, w.guessed), (Encoding::ImplicitLittle, true));
}

#[test]
fn an_undefined_length_un_element_holds_implicit_vr_items() {
    // As pydicom's UN_sequence.dcm: explicit VR LE, a UN of undefined length whose
    // item holds implicit VR elements. Read as explicit VR, the item tag's bytes
    // would be a 3.7 GB length.
    let mut inner = Writer::new(Encoding::ImplicitLittle);
    inner
        .text(0x0008, 0x0100, b"SH", "T-1234")
        .text(0x0008, 0x0104, b"LO", "meaning");
    let mut w = Writer::new(Encoding::ExplicitLittle);
    w.text(0x0008, 0x0060, b"CS", "MR")
        .open(0x0009, 0x1001, b"UN");
    w.item_tag(0xE000, UNDEFINED);
    w.out.extend(inner.out);
    w.item_tag(0xE00D, 0).item_tag(0xE0DD, 0);
    w.text(0x0020, 0x000D, b"UI", "1.2.3");
    let mut f = meta("1.2.840.10008.1.2.1");
    f.extend(w.out);
    let walked = run(&f).unwrap();
    assert_eq!(kept_tags(&walked), ["Modality", "StudyInstanceUID"]);
}

#[test]
fn nested_sequences_of_both_lengths_are_stepped_through() {
    let mut item = Writer::new(Encoding::ExplicitLittle);
    item.text(0x0008, 0x0100, b"SH", "X");
    let mut w = Writer::new(Encoding::ExplicitLittle);
    w.open(0x0008, 0x1140, b"SQ").item_tag(0xE000, UNDEFINED);
    w.open(0x0008, 0x1150, b"SQ")
        .item_tag(0xE000, item.out.len() as u32);
    w.out.extend(&item.out);
    w.item_tag(0xE0DD, 0)
        .item_tag(0xE00D, 0)
        .item_tag(0xE0DD, 0);
    let mut defined = Writer::new(Encoding::ExplicitLittle);
    defined.item_tag(0xE000, item.out.len() as u32);
    defined.out.extend(&item.out);
    w.element(0x0008, 0x1155, b"SQ", &defined.out, None);
    w.text(0x0020, 0x000D, b"UI", "1.2.3");
    let walked = run(&w.out).unwrap();
    assert_eq!(kept_tags(&walked), ["StudyInstanceUID"]);
}

#[test]
fn a_length_past_the_end_is_a_truncated_file_whatever_it_declares() {
    for declared in [100u32, 0x7FFF_FFFF, 0xFFFF_FFF0] {
        let mut w = Writer::new(Encoding::ExplicitLittle);
        w.text(0x0008, 0x0060, b"CS", "CT")
            .element(0x0009, 0x0010, b"OB", &[1, 2], Some(declared));
        let mut f = meta("1.2.840.10008.1.2.1");
        f.extend(w.out);
        let failure = run(&f).unwrap_err();
        assert_eq!(failure.stage, Stage::DataSet, "{declared}");
        assert!(
            failure.reason.starts_with("truncated"),
            "{}",
            failure.reason
        );
    }
    // Pixel data that declares more than the file holds: the header is indexed,
    // the problem named.
    let mut f = file("1.2.840.10008.1.2.1", Encoding::ExplicitLittle, 4096);
    assert_eq!(run(&f).unwrap().pixel_data_problem, None);
    f.truncate(f.len() - 10);
    let problem = run(&f).unwrap().pixel_data_problem.unwrap();
    assert!(problem.starts_with("truncated: pixel data"), "{problem}");
}

#[test]
fn every_prefix_of_a_file_is_read_or_rejected() {
    let f = file("1.2.840.10008.1.2.1", Encoding::ExplicitLittle, 64);
    let whole = run(&f).unwrap();
    for cut in 0..f.len() {
        match run(&f[..cut]) {
            Ok(w) => assert!(w.elements.len() <= whole.elements.len(), "cut at {cut}"),
            Err(failure) => assert!(!failure.reason.is_empty()),
        }
    }
    assert_eq!(run(&[]).unwrap_err().stage, Stage::Recognise);
}

#[test]
fn objects_that_are_not_dicom_are_recognised_as_such() {
    for junk in [
        &b"Sample MR series exported for the DICOM job.\n"[..],
        &[0u8; 1000][..],
        &[0xFFu8; 300][..],
        b"%PDF-1.7 ...",
    ] {
        let failure = run(junk).unwrap_err();
        assert_eq!(failure.stage, Stage::Recognise, "{junk:?}: {failure:?}");
    }
}

#[test]
fn sequences_nested_too_deep_are_refused() {
    let mut w = Writer::new(Encoding::ExplicitLittle);
    for _ in 0..(MAX_DEPTH + 2) {
        w.open(0x0008, 0x1140, b"SQ").item_tag(0xE000, UNDEFINED);
    }
    let mut f = meta("1.2.840.10008.1.2.1");
    f.extend(&w.out);
    let failure = run(&f).unwrap_err();
    assert!(failure.reason.contains("nested"), "{failure:?}");
}

#[test]
fn a_header_that_does_not_end_within_the_budget_is_refused() {
    let mut w = Writer::new(Encoding::ExplicitLittle);
    w.text(0x0008, 0x0060, b"CS", "CT")
        .open(0x0008, 0x1140, b"SQ");
    for _ in 0..2000 {
        w.item_tag(0xE000, UNDEFINED);
        w.text(0x0008, 0x0100, b"SH", "0123456789");
        w.item_tag(0xE00D, 0);
    }
    w.item_tag(0xE0DD, 0);
    let mut f = meta("1.2.840.10008.1.2.1");
    f.extend(&w.out);
    assert!(run(&f).is_ok());
    let failure = run_budget(&f, 4096).unwrap_err();
    assert_eq!(failure.stage, Stage::HeaderLimit);
}

#[test]
fn encapsulated_pixel_data_is_checked_by_its_end_or_its_fragments() {
    let mut w = Writer::new(Encoding::ExplicitLittle);
    w.text(0x0008, 0x0060, b"CS", "CT")
        .open(0x7FE0, 0x0010, b"OB");
    w.item_tag(0xE000, 0).item_tag(0xE000, 100);
    w.out.extend([9u8; 100]);
    w.item_tag(0xE0DD, 0);
    let mut f = meta("1.2.840.10008.1.2.4.50");
    f.extend(&w.out);
    let walked = run(&f).unwrap();
    assert!(walked.pixel_data.unwrap().encapsulated);
    assert_eq!(walked.pixel_data_problem, None);
    // Trailing padding after the delimiter: the fragments are walked instead.
    let mut padded = f.clone();
    padded.extend([0u8; 6]);
    assert!(run(&padded).is_ok());
    // Cut inside the fragment; no delimiter; no fragment item.
    let cut = &f[..f.len() - 50];
    let problem = run(cut).unwrap().pixel_data_problem.unwrap();
    assert!(problem.contains("fragment at offset"), "{problem}");
    let undelimited = &f[..f.len() - 8];
    let problem = run(undelimited).unwrap().pixel_data_problem.unwrap();
    assert!(
        problem.contains("before its sequence delimiter"),
        "{problem}"
    );
    let mut stray = f[..f.len() - 8].to_vec();
    stray.extend([0x08, 0, 0x60, 0, b'C', b'S', 2, 0]);
    let problem = run(&stray).unwrap().pixel_data_problem.unwrap();
    assert!(problem.contains("no fragment item"), "{problem}");
}

#[test]
fn past_the_cap_of_invalid_vrs_nothing_counts_as_read_whole() {
    let mut w = Writer::new(Encoding::ExplicitLittle);
    w.text(0x0008, 0x0060, b"CS", "CT");
    for e in 0..(MAX_INVALID_VRS as u16 + 6) {
        w.element(0x0009, 0x1000 + e, b"ZZ", b"ab", None);
    }
    w.element(0x0010, 0x0010, b"ZZ", b"Doe^", None);
    let mut f = meta("1.2.840.10008.1.2.1");
    f.extend(&w.out);
    let walked = run(&f).unwrap();
    assert_eq!(walked.invalid_vrs.len(), MAX_INVALID_VRS);
    assert!(walked.invalid_vrs_overflow);
    assert!(!walked.kept.windows(3).any(|b| b == b"Doe"));
}

#[test]
fn dicm_at_128_with_no_meta_is_a_data_set_after_it_or_a_coincidence() {
    // A preamble, DICM, and the data set at once (no meta): read from 132.
    let mut f = vec![0u8; 128];
    f.extend(b"DICM");
    f.extend(data_set(Encoding::ExplicitLittle, 0));
    let w = run(&f).unwrap();
    assert_eq!((w.encoding, w.guessed), (Encoding::ExplicitLittle, true));
    assert_eq!(kept_tags(&w).len(), 7);
    // A file without preamble whose bytes at 128 spell DICM: read from 0.
    let mut f = data_set(Encoding::ImplicitLittle, 0);
    let mut w = Writer::new(Encoding::ImplicitLittle);
    w.element(0x0009, 0x0010, b"LO", &[b'x'; 200], None);
    f.extend(&w.out);
    f[128..132].copy_from_slice(b"DICM");
    let walked = run(&f).unwrap();
    assert_eq!(walked.encoding, Encoding::ImplicitLittle);
    assert_eq!(kept_tags(&walked).len(), 7);
}

#[test]
fn bytes_that_are_no_vr_are_read_as_pydicom_reads_them() {
    // Two letters that are no VR: a 2-byte length, as an unknown VR.
    let mut w = Writer::new(Encoding::ExplicitLittle);
    w.text(0x0008, 0x0060, b"CS", "CT")
        .element(0x0018, 0x0050, b"ZZ", b"2.5 ", None)
        .text(0x0020, 0x0011, b"IS", "7");
    let mut f = meta("1.2.840.10008.1.2.1");
    f.extend(&w.out);
    let walked = run(&f).unwrap();
    assert_eq!(walked.invalid_vrs, [Tag(0x0018, 0x0050)]);
    assert_eq!(kept_tags(&walked), ["Modality", "SeriesNumber"]);
    // Anything else (a NUL, a digit): this element in implicit VR, a 4-byte
    // length after the tag; the next one explicit again.
    let mut w = Writer::new(Encoding::ExplicitLittle);
    w.text(0x0008, 0x0060, b"CS", "CT");
    w.out.extend([0x18, 0x00, 0x15, 0x00, 4, 0, 0, 0]);
    w.out.extend(b"HEAD");
    w.text(0x0020, 0x0011, b"IS", "7");
    let mut f = meta("1.2.840.10008.1.2.1");
    f.extend(&w.out);
    let walked = run(&f).unwrap();
    assert_eq!(walked.invalid_vrs, [Tag(0x0018, 0x0015)]);
    assert_eq!(kept_tags(&walked), ["Modality", "SeriesNumber"]);
    // A guessed encoding gets no such leniency: there it means a wrong guess.
    let failure = run(&w.out).map(|w| w.encoding);
    assert_ne!(failure, Ok(Encoding::ExplicitLittle));
}

#[test]
fn a_deflated_data_set_is_inflated_as_far_as_the_header_goes() {
    use std::io::Write;
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&data_set(Encoding::ExplicitLittle, 0)).unwrap();
    let mut f = meta(DEFLATED);
    f.extend(z.finish().unwrap());
    let w = run(&f).unwrap();
    assert!(w.deflated);
    assert_eq!(kept_tags(&w).len(), 7);
    // A stream cut short is a truncated data set.
    assert!(run(&f[..f.len() - 20]).is_err());
}

#[test]
fn bad_vrs_are_explained_or_named_with_no_value() {
    // After the first element: read leniently, named, its value not kept.
    let mut w = Writer::new(Encoding::ExplicitLittle);
    w.text(0x0008, 0x0060, b"CS", "CT");
    w.tag(0x0010, 0x0010);
    w.out.extend(b"\x00\x01\x04\x00Doe^");
    let mut f = meta("1.2.840.10008.1.2.1");
    f.extend(&w.out);
    let walked = run(&f).unwrap();
    assert_eq!(walked.invalid_vrs, [Tag(0x0010, 0x0010)]);
    assert!(!walked.kept.windows(3).any(|b| b == b"Doe"));
    // The first element decides the encoding: a bad VR there is a reason that
    // names the tag, never the value.
    let mut f = meta("1.2.840.10008.1.2.1");
    f.extend(&w.out[10..]);
    let failure = run(&f).unwrap_err();
    assert!(
        failure.reason.contains("(0010,0010)") && !failure.reason.contains("Doe"),
        "{failure:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Any bytes: the walk ends, reads within its budget, and never panics.
    #[test]
    fn any_bytes_end_in_a_header_or_a_reason(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut w = window(&data, 4096);
        prop_assert!(!matches!(walk(&mut w, 4096), Err(Outcome::Io(_))));
        prop_assert!(w.fetched() <= 4096);
    }

    /// A real header with bytes flipped: the same.
    #[test]
    fn a_corrupted_header_ends_in_a_header_or_a_reason(
        flips in proptest::collection::vec((0usize..4000, any::<u8>()), 1..8)
    ) {
        let mut f = file("1.2.840.10008.1.2.1", Encoding::ExplicitLittle, 32);
        for (at, b) in flips {
            let at = at % f.len();
            f[at] = b;
        }
        let mut w = window(&f, 1 << 16);
        prop_assert!(!matches!(walk(&mut w, 1 << 16), Err(Outcome::Io(_))));
        prop_assert!(w.fetched() <= 1 << 16);
    }
}

#[test]
fn a_meta_with_no_transfer_syntax_is_read_by_guessing() {
    let mut m = Writer::new(Encoding::ExplicitLittle);
    m.text(0x0002, 0x0002, b"UI", "1.2.840.10008.5.1.4.1.1.2");
    let mut f = vec![0u8; 128];
    f.extend(b"DICM");
    f.extend(m.out);
    f.extend(data_set(Encoding::ImplicitLittle, 0));
    let w = run(&f).unwrap();
    assert_eq!((w.encoding, w.guessed), (Encoding::ImplicitLittle, true));
    assert_eq!(w.meta.unwrap().transfer_syntax, None);
}

#[test]
fn an_icon_image_with_encapsulated_pixel_data_is_stepped_through() {
    let mut w = Writer::new(Encoding::ExplicitLittle);
    w.text(0x0008, 0x0060, b"CS", "CT")
        .open(0x0088, 0x0200, b"SQ")
        .item_tag(0xE000, UNDEFINED);
    w.element(0x0028, 0x0010, b"US", &64u16.to_le_bytes(), None);
    w.open(0x7FE0, 0x0010, b"OB")
        .item_tag(0xE000, 0)
        .item_tag(0xE000, 4);
    w.out.extend([1, 2, 3, 4]);
    w.item_tag(0xE0DD, 0)
        .item_tag(0xE00D, 0)
        .item_tag(0xE0DD, 0);
    w.text(0x0020, 0x000D, b"UI", "1.2.3");
    let mut f = meta("1.2.840.10008.1.2.4.50");
    f.extend(&w.out);
    let walked = run(&f).unwrap();
    assert_eq!(kept_tags(&walked), ["Modality", "StudyInstanceUID"]);
    assert!(walked.pixel_data.is_none());
}

#[test]
fn many_fragments_and_trailing_padding_do_not_exhaust_the_budget() {
    let mut w = Writer::new(Encoding::ExplicitLittle);
    w.text(0x0008, 0x0060, b"CS", "US")
        .open(0x7FE0, 0x0010, b"OB");
    w.item_tag(0xE000, 0);
    for _ in 0..400 {
        w.item_tag(0xE000, 20_000);
        w.out.extend(std::iter::repeat_n(0u8, 20_000));
    }
    w.item_tag(0xE0DD, 0);
    w.element(0xFFFC, 0xFFFC, b"OB", &[0u8; 64], None);
    let mut f = meta("1.2.840.10008.1.2.4.50");
    f.extend(&w.out);
    let mut window = window(&f, 256 * 1024);
    let walked = walk(&mut window, 256 * 1024).unwrap();
    assert!(walked.pixel_data.unwrap().encapsulated);
    assert!(window.fetched() <= 256 * 1024);
}

#[test]
fn large_skipped_elements_do_not_use_up_the_budget_on_read_ahead() {
    let mut w = Writer::new(Encoding::ExplicitLittle);
    w.text(0x0008, 0x0060, b"CS", "MR");
    for i in 0..40u16 {
        w.element(0x0029, 0x1000 + i, b"OB", &vec![0u8; 100_000], None);
    }
    w.text(0x0020, 0x000D, b"UI", "1.2.3");
    let mut f = meta("1.2.840.10008.1.2.1");
    f.extend(&w.out);
    let mut window = window(&f, 1 << 20);
    let walked = walk(&mut window, 1 << 20).unwrap();
    assert_eq!(kept_tags(&walked), ["Modality", "StudyInstanceUID"]);
    assert!(window.fetched() < 64 * 1024, "{}", window.fetched());
}

#[test]
fn a_reason_never_shows_a_tag_that_could_be_value_bytes() {
    // Out of step: value bytes read as a tag and a length.
    let mut w = Writer::new(Encoding::ExplicitLittle);
    w.text(0x0008, 0x0060, b"CS", "CT");
    w.out.extend(b"Doe^Jane");
    let mut f = meta("1.2.840.10008.1.2.1");
    f.extend(&w.out);
    let failure = run(&f).unwrap_err();
    assert!(
        !failure.reason.contains("6F44") && !failure.reason.contains("5E65"),
        "{failure:?}"
    );
}

#[test]
fn every_two_bytes_are_a_vr_exactly_when_the_standard_lists_them() {
    // All 65 536 pairs against a scan of the list: the bit table is built from it.
    for pair in 0..=u16::MAX {
        let b = pair.to_be_bytes();
        assert_eq!(is_vr(&b), VRS.iter().any(|v| **v == b), "{b:?}");
    }
    assert!(!is_vr(b"A") && !is_vr(b"AEX"));
}
