//! `--set KEY=VALUE` overrides of a job spec, and `${param}` substitution in its SQL.
//!
//! Overrides are applied to the parsed TOML document before it is checked, so an
//! override is validated exactly like a value written in the file.

use indexmap::IndexMap;

/// Applies `a.b.c=VALUE` to a TOML document. VALUE is read as a TOML value when it
/// is one (`3.5`, `true`, `["a"]`, `"quoted"`), else as a plain string.
pub fn apply_override(doc: &mut toml::Table, assignment: &str) -> std::result::Result<(), String> {
    let (key, raw) = assignment
        .split_once('=')
        .ok_or("expected KEY=VALUE, e.g. --set params.zscore_threshold=2.5")?;
    let path: Vec<&str> = key.trim().split('.').collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(format!("`{key}` is not a dotted key path"));
    }
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let (last, parents) = path.split_last().expect("path is not empty");
    let mut table = doc;
    for p in parents {
        let entry = table
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        table = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{p}` in `{key}` is not a table"))?;
    }
    table.insert(last.to_string(), value);
    Ok(())
}

/// Replaces `${name}` in SQL with the param's SQL literal.
pub fn substitute_params(
    sql: &str,
    params: &IndexMap<String, toml::Value>,
) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "unterminated `${` in SQL".to_string())?;
        let name = &after[..end];
        let value = params
            .get(name)
            .ok_or_else(|| format!("SQL uses `${{{name}}}` but no param `{name}` is set"))?;
        out.push_str(&sql_literal(value).map_err(|e| format!("param `{name}`: {e}"))?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn sql_literal(v: &toml::Value) -> std::result::Result<String, String> {
    Ok(match v {
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) if f.is_finite() => {
            let s = f.to_string();
            // Keep floats typed as floating point in SQL (`3` would be an integer).
            if s.contains(['.', 'e', 'E']) {
                s
            } else {
                format!("{s}.0")
            }
        }
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::String(s) => format!("'{}'", s.replace('\'', "''")),
        other => return Err(format!("{other} cannot be used in SQL")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_parse_values_and_create_tables() {
        let mut doc: toml::Table = toml::from_str("[params]\nz = 3.0").unwrap();
        apply_override(&mut doc, "params.z=2.5").unwrap();
        apply_override(&mut doc, "sources.long.prefix=logs/2024").unwrap();
        assert_eq!(doc["params"]["z"].as_float(), Some(2.5));
        assert_eq!(doc["sources"]["long"]["prefix"].as_str(), Some("logs/2024"));
        assert!(apply_override(&mut doc, "params.z.x=1").is_err());
        assert!(apply_override(&mut doc, "novalue").is_err());
    }

    #[test]
    fn params_become_sql_literals() {
        let mut p = IndexMap::new();
        p.insert("t".to_string(), toml::Value::Float(3.0));
        p.insert("s".to_string(), toml::Value::String("it's".into()));
        assert_eq!(
            substitute_params("a > ${t} AND b = ${s}", &p).unwrap(),
            "a > 3.0 AND b = 'it''s'"
        );
        assert!(
            substitute_params("${missing}", &p)
                .unwrap_err()
                .contains("missing")
        );
    }
}
