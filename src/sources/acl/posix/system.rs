//! The three libc calls the POSIX collector needs and std does not have: reading
//! one extended attribute of a path without following a symlink, and the names of
//! a uid and a gid. Each is a small safe function; nothing else here is unsafe.

use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Largest attribute read (the kernel's limit, XATTR_SIZE_MAX, is 64 KiB).
const MAX_XATTR: usize = 64 * 1024;

/// The value of attribute `name` of `path` (not following a symlink); `None` when
/// the file has no such attribute or its file system keeps none.
pub fn lgetxattr(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    let cpath = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))?;
    let cname = CString::new(name).expect("attribute names are constants without NUL");
    let mut buf = vec![0u8; MAX_XATTR];
    // SAFETY: both strings are NUL-terminated and outlive the call; the buffer is
    // writable for its whole length, which is what is passed.
    let n = unsafe {
        libc::lgetxattr(
            cpath.as_ptr(),
            cname.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => Ok(None),
            _ => Err(e),
        };
    }
    buf.truncate(n as usize);
    Ok(Some(buf))
}

/// A name from `getpwuid_r` / `getgrgid_r`: `Ok(None)` when the id has no
/// entry, an error when the database could not say (an LDAP timeout, say).
fn lookup(
    get: impl Fn(&mut [libc::c_char]) -> Result<Option<*const libc::c_char>, i32>,
) -> io::Result<Option<String>> {
    let mut buf = vec![0 as libc::c_char; 1024];
    loop {
        match get(&mut buf) {
            Ok(Some(name)) if name.is_null() => return Ok(None),
            Ok(Some(name)) => {
                // SAFETY: the C library wrote a NUL-terminated name into `buf`,
                // which is still alive; the pointer is not null.
                return Ok(Some(
                    unsafe { CStr::from_ptr(name) }
                        .to_string_lossy()
                        .into_owned(),
                ));
            }
            Ok(None) => return Ok(None),
            Err(libc::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            // "Not found" is also reported as these by some C libraries.
            Err(libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM) => return Ok(None),
            Err(e) => return Err(io::Error::from_raw_os_error(e)),
        }
    }
}

pub fn user_name(uid: u32) -> io::Result<Option<String>> {
    lookup(|buf| {
        // SAFETY: `pwd` and `out` are valid for writes; `buf` is writable for the
        // length passed, and the name points into it.
        unsafe {
            let mut pwd: libc::passwd = std::mem::zeroed();
            let mut out: *mut libc::passwd = std::ptr::null_mut();
            match libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut out) {
                0 if out.is_null() => Ok(None),
                0 => Ok(Some(pwd.pw_name as *const _)),
                e => Err(e),
            }
        }
    })
}

pub fn group_name(gid: u32) -> io::Result<Option<String>> {
    lookup(|buf| {
        // SAFETY: as in `user_name`.
        unsafe {
            let mut grp: libc::group = std::mem::zeroed();
            let mut out: *mut libc::group = std::ptr::null_mut();
            match libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), buf.len(), &mut out) {
                0 if out.is_null() => Ok(None),
                0 => Ok(Some(grp.gr_name as *const _)),
                e => Err(e),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_has_a_name_and_a_missing_attribute_is_none() {
        assert_eq!(user_name(0).unwrap().as_deref(), Some("root"));
        assert!(group_name(0).unwrap().is_some());
        assert_eq!(user_name(3_999_999_999).unwrap(), None);
        let dir = std::env::temp_dir();
        assert_eq!(lgetxattr(&dir, "user.naslake-none").unwrap(), None);
        assert!(lgetxattr(Path::new("/no/such/path"), "user.x").is_err());
    }
}
