//! Giving up root the way Postfix's chroot_uid() does (spec §7.8): look the user up, set the group
//! and the supplementary groups, enter the jail, then set the user — in that order, because each
//! step needs the privileges the next one removes.
//!
//! The process is multi-threaded (Node has a thread pool; the server has its loop), and the kernel
//! changes credentials per thread. glibc's setgid()/setuid()/initgroups() apply the change to every
//! thread, which is why these go through libc and not raw system calls. chroot() and chdir() act on
//! the filesystem context all threads share. Call this once, after everything the process will ever
//! load is loaded: nothing outside the jail can be opened afterwards.

use std::ffi::CString;
use std::fmt;
use std::io;
use std::path::Path;

/// A failure, with the text Postfix logs after `fatal: `.
#[derive(Debug)]
pub struct PrivilegeError(pub String);

impl fmt::Display for PrivilegeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PrivilegeError {}

/// Drops to `user` (with its primary group and its supplementary groups) and/or confines the
/// process to `root`. Either may be absent, as with master.cf's unprivileged and chroot fields.
pub fn drop_privileges(user: Option<&str>, root: Option<&Path>) -> Result<(), PrivilegeError> {
    let identity = match user {
        Some(name) => Some(become_group_member(name)?),
        None => None,
    };
    if let Some(root) = root {
        rustix::process::chroot(root)
            .map_err(|error| PrivilegeError(format!("chroot({}): {}", root.display(), text(error))))?;
        rustix::process::chdir("/").map_err(|error| PrivilegeError(format!("chdir(/): {}", text(error))))?;
    }
    if let Some((uid, _)) = identity {
        // SAFETY: setuid has no memory-safety preconditions.
        if unsafe { libc::setuid(uid) } < 0 {
            return Err(PrivilegeError(format!("setuid({uid}): {}", last_error_text())));
        }
    }
    Ok(())
}

/// Looks `name` up and sets its group and supplementary groups; returns its uid and gid.
fn become_group_member(name: &str) -> Result<(u32, u32), PrivilegeError> {
    let unknown = || PrivilegeError(format!("unknown user: {name}"));
    let (uid, gid) = lookup_user(name).map_err(|_| unknown())?.ok_or_else(unknown)?;
    let c_name = CString::new(name).map_err(|_| unknown())?;
    // SAFETY: setgid has no memory-safety preconditions.
    if unsafe { libc::setgid(gid) } < 0 {
        return Err(PrivilegeError(format!("setgid({gid}): {}", last_error_text())));
    }
    // SAFETY: `c_name` is a valid NUL-terminated string for the duration of the call.
    if unsafe { libc::initgroups(c_name.as_ptr(), gid) } < 0 {
        return Err(PrivilegeError(format!("initgroups: {}", last_error_text())));
    }
    Ok((uid, gid))
}

/// The uid and gid of the user called `name`, if there is one.
pub fn lookup_user(name: &str) -> io::Result<Option<(u32, u32)>> {
    let c_name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: an all-zero passwd is a valid value for getpwnam_r to overwrite.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and `buffer` outlives the reads of `entry` below.
    let status =
        unsafe { libc::getpwnam_r(c_name.as_ptr(), &mut entry, buffer.as_mut_ptr(), buffer.len(), &mut found) };
    if status != 0 {
        return Err(io::Error::from_raw_os_error(status));
    }
    Ok((!found.is_null()).then_some((entry.pw_uid, entry.pw_gid)))
}

fn text(error: rustix::io::Errno) -> String {
    crate::server::strerror(&io::Error::from(error))
}

/// `%m` for the call that just failed.
fn last_error_text() -> String {
    crate::server::strerror(&io::Error::last_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_root_and_not_a_stranger() {
        assert_eq!(lookup_user("root").unwrap(), Some((0, 0)));
        assert_eq!(lookup_user("no-such-user-here").unwrap(), None);
    }

    #[test]
    fn an_unknown_user_is_postfix_fatal_text() {
        let error = drop_privileges(Some("no-such-user-here"), None).unwrap_err();
        assert_eq!(error.0, "unknown user: no-such-user-here");
    }
}
