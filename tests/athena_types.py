"""Athena's strict check of Parquet files against the catalog, written independently
of naslake: for each Glue column type, the Parquet physical and logical types
Athena (Trino's Hive connector) reads without error. Used by the tests on every
table naslake writes, read from the local catalog and from Glue."""
import json
import re

import pyarrow.parquet as pq

# Glue type -> (physical type, logical type check) for primitive columns.
PRIMITIVE = {
    "boolean": ("BOOLEAN", lambda l: l is None),
    "tinyint": ("INT32", lambda l: l == {"Type": "Int", "bitWidth": 8, "isSigned": True}),
    "smallint": ("INT32", lambda l: l == {"Type": "Int", "bitWidth": 16, "isSigned": True}),
    "int": ("INT32", lambda l: l is None or l == {"Type": "Int", "bitWidth": 32, "isSigned": True}),
    "bigint": ("INT64", lambda l: l is None or l == {"Type": "Int", "bitWidth": 64, "isSigned": True}),
    "float": ("FLOAT", lambda l: l is None),
    "double": ("DOUBLE", lambda l: l is None),
    "string": ("BYTE_ARRAY", lambda l: l is not None and l["Type"] == "String"),
    "binary": ("BYTE_ARRAY", lambda l: l is None),
    "date": ("INT32", lambda l: l is not None and l["Type"] == "Date"),
    # Athena reads INT64 millis or micros; nanos and INT96 are refused.
    "timestamp": ("INT64", lambda l: l is not None and l["Type"] == "Timestamp"
                  and l["timeUnit"] in ("milliseconds", "microseconds")),
}


def logical(col):
    text = col.logical_type.to_json()
    parsed = json.loads(text) if text else None
    return None if not parsed or parsed.get("Type") == "None" else parsed


def check_column(glue_type, col):
    """Problems of one leaf column (pyarrow ColumnSchema) against a primitive Glue type."""
    t = glue_type.strip().lower()
    l = logical(col)
    m = re.fullmatch(r"decimal\((\d+),\s*(\d+)\)", t)
    if m:
        p, s = int(m.group(1)), int(m.group(2))
        ok = (col.physical_type in ("INT32", "INT64", "FIXED_LEN_BYTE_ARRAY", "BYTE_ARRAY")
              and l is not None and l["Type"] == "Decimal" and l["precision"] == p and l["scale"] == s)
        return [] if ok and p <= 38 else [f"{col.path}: {col.physical_type} {l} is not {t}"]
    if t not in PRIMITIVE:
        return [f"{col.path}: unknown Glue type {t}"]
    physical, logical_ok = PRIMITIVE[t]
    if col.physical_type != physical or not logical_ok(l):
        return [f"{col.path}: {col.physical_type} {l} is not Athena's {t}"]
    return []


def split_top(s):
    parts, depth, start = [], 0, 0
    for i, c in enumerate(s):
        if c in "<(":
            depth += 1
        elif c in ">)":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(s[start:i].strip())
            start = i + 1
    parts.append(s[start:].strip())
    return parts


def leaf_types(name, glue_type):
    """(leaf path prefix, primitive Glue type) pairs of a possibly nested Glue type."""
    t = glue_type.strip().lower()
    if t.startswith("array<"):
        return leaf_types(f"{name}.list.element", t[6:-1])
    if t.startswith("map<"):
        k, v = split_top(t[4:-1])
        return leaf_types(f"{name}.key_value.key", k) + leaf_types(f"{name}.key_value.value", v)
    if t.startswith("struct<"):
        out = []
        for part in split_top(t[7:-1]):
            field, ftype = part.split(":", 1)
            out += leaf_types(f"{name}.{field.strip()}", ftype)
        return out
    return [(name, t)]


# The encodings trino-parquet (Athena engine 3) decodes, by physical type
# (io.trino.parquet.reader.decoders.ValueDecoders): RLE and BIT_PACKED are the
# levels', PLAIN_DICTIONARY / RLE_DICTIONARY the dictionary pages' and indices'.
# BYTE_STREAM_SPLIT is left out: Trino reads it only since 2024, Athena may not.
LEVELS_AND_DICTIONARY = {"PLAIN", "RLE", "BIT_PACKED", "PLAIN_DICTIONARY", "RLE_DICTIONARY"}
TRINO_ENCODINGS = {
    "INT32": LEVELS_AND_DICTIONARY | {"DELTA_BINARY_PACKED"},
    "INT64": LEVELS_AND_DICTIONARY | {"DELTA_BINARY_PACKED"},
    "BYTE_ARRAY": LEVELS_AND_DICTIONARY | {"DELTA_LENGTH_BYTE_ARRAY", "DELTA_BYTE_ARRAY"},
}
ATHENA_COMPRESSION = {"SNAPPY", "ZSTD", "GZIP", "UNCOMPRESSED"}


def encoding_problems(path, metadata):
    """Column chunks written with an encoding or codec Athena's reader does not decode."""
    found = []
    for rg in range(metadata.num_row_groups):
        for i in range(metadata.num_columns):
            c = metadata.row_group(rg).column(i)
            allowed = TRINO_ENCODINGS.get(c.physical_type, LEVELS_AND_DICTIONARY)
            bad = set(c.encodings) - allowed
            if bad:
                found.append(f"{path}: {c.path_in_schema} ({c.physical_type}) uses {sorted(bad)}")
            if c.compression not in ATHENA_COMPRESSION:
                found.append(f"{path}: {c.path_in_schema} is compressed with {c.compression}")
    return found


def problems(path, glue_columns):
    """Every mismatch between one Parquet file and the Glue columns [(name, type)]."""
    f = pq.ParquetFile(path)
    found = encoding_problems(path, f.metadata)
    schema = f.schema
    leaves = {schema.column(i).path: schema.column(i) for i in range(len(schema))}
    names = {n.split(".")[0] for n in leaves}
    want = {n for n, _ in glue_columns}
    if names != want:
        found.append(f"{path}: file columns {sorted(names)} != catalog columns {sorted(want)}")
    for name, glue_type in glue_columns:
        for leaf, t in leaf_types(name, glue_type):
            col = leaves.get(leaf)
            if col is None:
                # parquet-rs names list items `item` or `element`; match by position.
                alt = [c for p, c in leaves.items() if p.startswith(leaf.split(".list.")[0] + ".")]
                if len(alt) != 1:
                    found.append(f"{path}: no leaf {leaf}")
                    continue
                col = alt[0]
            found += [f"{path}: {p}" for p in check_column(t, col)]
    return found
