//! What the tests of every step share: sniff a fixture, read the block back.

use encoding_rs::Encoding;
use toml::{Table, Value};

use super::sniff;

/// Sniffs `bytes` as a whole file; checks the block is TOML and returns it parsed.
pub(super) fn sniffed(bytes: &[u8], file: &str) -> (String, Table) {
    let s = sniff(bytes, false, file, None).unwrap_or_else(|e| panic!("{e}"));
    let parsed = toml::from_str::<Table>(&s.block).unwrap_or_else(|e| panic!("{e}\n{}", s.block));
    (s.block, parsed)
}

pub(super) fn source<'a>(t: &'a Table, name: &str) -> &'a Table {
    t["sources"][name]
        .as_table()
        .unwrap_or_else(|| panic!("no sources.{name}"))
}

pub(super) fn csv<'a>(t: &'a Table, name: &str) -> &'a Table {
    source(t, name)["csv"].as_table().expect("a csv table")
}

/// The entries of `columns = [...]` as written, without their braces.
pub(super) fn columns(block: &str) -> Vec<&str> {
    let start = block.find("columns = [\n").expect("columns") + "columns = [\n".len();
    block[start..]
        .lines()
        .take_while(|l| *l != "]")
        .map(|l| l.trim().trim_start_matches("{ ").trim_end_matches(" },"))
        .collect()
}

pub(super) fn encode(encoding: &'static Encoding, text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding.encode(text);
    assert!(!unmappable, "{} cannot encode the fixture", encoding.name());
    bytes.into_owned()
}

pub(super) fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string"))
        .collect()
}

/// The comment lines of a block, without their `# `.
pub(super) fn comments(block: &str) -> Vec<&str> {
    block.lines().filter_map(|l| l.strip_prefix("# ")).collect()
}

pub(super) fn csv_has(t: &Table, name: &str, key: &str) -> bool {
    source(t, name)
        .get("csv")
        .and_then(Value::as_table)
        .is_some_and(|c| c.contains_key(key))
}
