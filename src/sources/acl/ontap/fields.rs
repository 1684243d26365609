//! A string field of an ONTAP record, as the tables may hold it: a value with
//! a control character is an error naming the field, not a silent gap, for the
//! permissions and for the shares and groups alike.

use serde_json::Value;

/// `key`'s string, `None` when absent or null; an error when it is not a
/// string or holds a control character.
pub fn text<'a>(v: &'a Value, key: &str) -> Result<Option<&'a str>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().any(char::is_control) => {
            Err(format!("{key} holds a control character"))
        }
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{key} is not a string")),
    }
}
