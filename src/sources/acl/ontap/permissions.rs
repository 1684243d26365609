//! One answer of `GET /api/protocols/file-security/permissions/{svm}/{path}` as
//! an [`ObjectAcl`]. Fields ONTAP leaves out are NULL; a field present with the
//! wrong shape makes the path a reject (the answer is not what the API documents),
//! never a guess.
//!
//! `rights` is ONTAP's basic right; `advanced_rights` (15 booleans) the mask. An
//! entry with both keeps ONTAP's name and the advanced mask; with only `rights`,
//! the mask is that right's. `mode_bits` is the octal mode written in decimal
//! digits (755). An object of unix effective style without NTFS entries has the
//! three entries its mode is, as from a POSIX file system.

use serde_json::Value;

use super::super::entry::{Ace, ApplyTo, EntryType, ObjectAcl, mode_entries};
use super::super::principals::{Kind, NtfsNames, Principal};
use super::super::rights::{ADVANCED, FULL_CONTROL, Rights};
use super::fields::text;

/// Entries of one object read at most (NTFS allows about 1,820 in 64 KiB).
const MAX_ENTRIES: usize = 4096;

pub fn parse(
    path: &str,
    object_type: &str,
    v: &Value,
    names: &NtfsNames,
) -> Result<ObjectAcl, String> {
    if !v.is_object() {
        return Err("the answer is not a JSON object".into());
    }
    let owner = text(v, "owner")?.map(|s| names.principal(s));
    let group = text(v, "group")?.map(|s| names.principal(s));
    let user_id = id(v, "user_id")?;
    let group_id = id(v, "group_id")?;
    let owner = with_id(owner, user_id, names);
    let group = with_id(group, group_id, names);
    let control_flags = match v.get("control_flags") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            parse_hex(s)
                .ok_or_else(|| format!("control_flags `{}` is not a hex number", clip(s)))?,
        ),
        Some(Value::Number(n)) => Some(
            n.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or("control_flags out of range")?,
        ),
        Some(_) => return Err("control_flags is neither a string nor a number".into()),
    };
    let mode = match v.get("mode_bits") {
        None | Some(Value::Null) => None,
        Some(m) => Some(octal_digits(m).ok_or("mode_bits is not an octal mode")?),
    };
    let acls = match v.get("acls") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) if a.len() <= MAX_ENTRIES => a.as_slice(),
        Some(Value::Array(a)) => {
            return Err(format!(
                "{} entries (at most {MAX_ENTRIES} are read)",
                a.len()
            ));
        }
        Some(_) => return Err("acls is not an array".into()),
    };
    let mut entries = acls
        .iter()
        .enumerate()
        .map(|(i, a)| ace(a, names).map_err(|e| format!("acls[{i}]: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let effective = text(v, "effective_style")?.map(str::to_string);
    if entries.is_empty()
        && effective.as_deref() == Some("unix")
        && let (Some(m), Some(o), Some(g)) = (mode, &owner, &group)
    {
        entries = mode_entries(m, o, g);
    }
    Ok(ObjectAcl {
        path: path.to_string(),
        object_type: object_type.to_string(),
        owner,
        group,
        security_style: text(v, "security_style")?.map(str::to_string),
        effective_style: effective,
        control_flags,
        mode,
        entries,
    })
}

fn ace(a: &Value, names: &NtfsNames) -> Result<Ace, String> {
    let user = text(a, "user")?.ok_or("no user")?;
    let access = text(a, "access")?.ok_or("no access")?;
    let named = text(a, "rights")?.map(str::to_string);
    let mask = match a.get("advanced_rights") {
        None | Some(Value::Null) => None,
        Some(Value::Object(adv)) => {
            let mut mask = 0;
            if flag(adv.get("full_control"))? {
                mask = FULL_CONTROL;
            }
            for (name, bit) in ADVANCED {
                if flag(adv.get(name))? {
                    mask |= bit;
                }
            }
            Some(mask)
        }
        Some(_) => return Err("advanced_rights is not an object".into()),
    };
    let rights = match (mask, named) {
        (Some(mask), named) => Rights {
            mask,
            named: named.filter(|n| Rights::mask_of_basic(n).is_some()),
        },
        (None, Some(n)) => Rights {
            mask: Rights::mask_of_basic(&n)
                .ok_or_else(|| format!("rights `{}` is not a basic right", clip(&n)))?,
            named: Some(if n == "no_access" { "none".into() } else { n }),
        },
        (None, None) => return Err("neither rights nor advanced_rights".into()),
    };
    let apply_to = match a.get("apply_to") {
        None | Some(Value::Null) => ApplyTo::THIS,
        Some(Value::Object(o)) => ApplyTo {
            this_folder: flag(o.get("this_folder"))?,
            sub_folders: flag(o.get("sub_folders"))?,
            files: flag(o.get("files"))?,
        },
        Some(_) => return Err("apply_to is not an object".into()),
    };
    Ok(Ace {
        principal: names.principal(user),
        entry_type: EntryType::from_ontap(access),
        rights,
        apply_to,
        inherited: flag(a.get("inherited"))?,
    })
}

fn flag(v: Option<&Value>) -> Result<bool, String> {
    match v {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err("a flag that is not true or false".into()),
    }
}

/// `user_id` / `group_id`: ONTAP sends them as strings of digits.
fn id(v: &Value, key: &str) -> Result<Option<u32>, String> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| format!("{key} is not a number")),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| format!("{key} out of range")),
        Some(_) => Err(format!("{key} is not a number")),
    }
}

fn with_id(p: Option<Principal>, id: Option<u32>, names: &NtfsNames) -> Option<Principal> {
    match (p, id) {
        (Some(p), id) => Some(Principal {
            id: p.id.or(id),
            ..p
        }),
        (None, Some(id)) => Some(Principal {
            given: id.to_string(),
            sid: None,
            id: Some(id),
            kind: Kind::User,
            resolved: names.unnamed(),
        }),
        (None, None) => None,
    }
}

fn parse_hex(s: &str) -> Option<u32> {
    let s = s.trim();
    let digits = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    u32::from_str_radix(digits, 16).ok()
}

/// 755 (a number or a string of digits) as 0o755.
fn octal_digits(v: &Value) -> Option<u32> {
    let s = match v {
        Value::Number(n) => n.as_u64()?.to_string(),
        Value::String(s) => s.clone(),
        _ => return None,
    };
    if s.is_empty() || s.len() > 4 {
        return None;
    }
    u32::from_str_radix(&s, 8).ok()
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn names() -> NtfsNames {
        NtfsNames::new(&[], true).unwrap()
    }

    #[test]
    fn an_ntfs_answer_as_the_api_documents_it() {
        let v = json!({
            "svm": {"uuid": "s", "name": "vs1"},
            "path": "/parent",
            "owner": "BUILTIN\\Administrators",
            "group": "BUILTIN\\Administrators",
            "control_flags": "0x9014",
            "acls": [
                {"user": "BUILTIN\\Administrators", "access": "access_allow", "rights": "full_control",
                 "apply_to": {"files": true, "sub_folders": true, "this_folder": true}, "inherited": false},
                {"user": "Everyone", "access": "access_allow",
                 "advanced_rights": {"read_data": true, "write_perm": true, "synchronize": true},
                 "apply_to": {"files": false, "sub_folders": false, "this_folder": true}, "inherited": true},
                {"user": "S-1-5-21-1-2-3-1107", "access": "access_deny", "rights": "write"}
            ],
            "inode": 64, "security_style": "ntfs", "effective_style": "ntfs",
            "user_id": "0", "group_id": "1", "mode_bits": 777, "text_mode_bits": "rwxrwxrwx"
        });
        let o = parse("/parent", "directory", &v, &names()).unwrap();
        assert_eq!(o.control_flags, Some(0x9014));
        assert_eq!(o.dacl_protected(), Some(true));
        assert_eq!(o.mode, Some(0o777));
        assert_eq!(
            o.owner.as_ref().unwrap().sid.as_deref(),
            Some("S-1-5-32-544")
        );
        assert_eq!(o.owner.as_ref().unwrap().id, Some(0));
        assert_eq!(o.entries.len(), 3);
        assert_eq!(o.entries[0].rights.basic(), "full_control");
        assert_eq!(
            o.entries[0].apply_to.names(),
            ["this_folder", "sub_folders", "files"]
        );
        let e = &o.entries[1];
        assert_eq!(e.principal.sid.as_deref(), Some("S-1-1-0"));
        assert_eq!(e.rights.basic(), "special");
        assert_eq!(
            e.rights.advanced(),
            ["read_data", "write_perm", "synchronize"]
        );
        assert!(e.inherited);
        assert_eq!(o.entries[2].entry_type, EntryType::Deny);
        assert_eq!(o.entries[2].principal.resolved, Some(false));
        assert_eq!(o.entries[2].rights.basic(), "write");
    }

    #[test]
    fn a_unix_answer_gets_its_mode_entries() {
        let v = json!({"owner": "root", "group": "wheel", "security_style": "unix",
                       "effective_style": "unix", "mode_bits": 1777, "user_id": "0", "group_id": "0"});
        let o = parse("/tmp", "directory", &v, &names()).unwrap();
        assert_eq!(o.mode, Some(0o1777));
        assert_eq!(o.entries.len(), 3);
        assert_eq!(o.entries[2].principal.kind, Kind::Everyone);
        assert_eq!(o.entries[2].rights.basic(), "modify");
    }

    #[test]
    fn answers_of_the_wrong_shape_are_errors() {
        for bad in [
            json!([]),
            json!({"control_flags": "0xZZ"}),
            json!({"control_flags": true}),
            json!({"mode_bits": 999}),
            json!({"acls": {"user": "x"}}),
            json!({"acls": [{"access": "access_allow", "rights": "read"}]}),
            json!({"acls": [{"user": "x", "access": "access_allow"}]}),
            json!({"acls": [{"user": "x", "access": "access_allow", "rights": "lots"}]}),
            json!({"acls": [{"user": "x", "access": "access_allow", "rights": "read", "inherited": "yes"}]}),
            json!({"owner": "a\u{0}b"}),
            json!({"user_id": "-1"}),
        ] {
            assert!(parse("/x", "file", &bad, &names()).is_err(), "{bad}");
        }
        let o = parse("/x", "file", &json!({}), &names()).unwrap();
        assert!(o.entries.is_empty() && o.owner.is_none() && o.mode.is_none());
    }
}
