//! `dropPrivileges`: the core's chroot_uid() for the daemon's start-up (Node has no chroot or
//! process-wide setuid of its own). Errors carry Postfix's fatal text.

use std::path::Path;

use napi::bindgen_prelude::*;
use napi_derive::napi;

/// Drops to `user` (its group and supplementary groups too) and/or enters the `root` jail.
#[napi]
pub fn drop_privileges(user: Option<String>, root: Option<String>) -> Result<()> {
    scache_core::privileges::drop_privileges(user.as_deref(), root.as_deref().map(Path::new))
        .map_err(|error| Error::from_reason(error.0))
}
