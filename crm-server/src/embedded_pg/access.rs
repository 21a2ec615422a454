//! Whether PostgreSQL's account can reach the data folder, and what to tell a root user when it
//! cannot.
//!
//! As root, `initdb` and `postgres` run as `postgres` (or `nobody`) with the working directory in
//! the data folder. When a folder on the way is closed to that account (`/root` is 0700, as is a
//! `mktemp -d`), the child's chdir fails with a bare "Permission denied" that names neither the
//! folder nor the account: [`explain`] names both, and the ways out.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid, User};

use super::RunAs;

/// The default data folder of root, which the message offers.
const ROOT_DEFAULT: &str = "/var/lib/freshplan/crm-server";

/// A folder `account` may not enter.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Blocked {
    pub path: PathBuf,
    /// The permission bits.
    pub mode: u32,
    pub owner: u32,
}

/// The first folder on the way to `path` (itself included) that the account `uid`/`gid` may not
/// enter (search, the `x` bit), judged by the mode bits the way the kernel does for a process with
/// that uid, that gid and no supplementary groups (what std's `Command::uid` leaves it). `None`
/// when every folder lets it in, or when one cannot be read.
pub(super) fn blocked_folder(path: &Path, uid: Uid, gid: Gid) -> Option<Blocked> {
    let path = fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    let mut current = PathBuf::new();
    for component in path.components() {
        current.push(component);
        let meta = fs::metadata(&current).ok()?;
        let mode = meta.mode();
        let may_enter = if meta.uid() == uid.as_raw() {
            mode & 0o100 != 0
        } else if meta.gid() == gid.as_raw() {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !may_enter {
            return Some(Blocked { path: current, mode: mode & 0o7777, owner: meta.uid() });
        }
    }
    None
}

/// The message for a start of PostgreSQL as `account` in `root` that failed with `error`
/// (permission denied).
pub(super) fn explain(root: &Path, account: &RunAs, error: &io::Error) -> String {
    let name = account.name;
    let why = match blocked_folder(root, account.uid, account.gid) {
        Some(blocked) => {
            let owner = User::from_uid(Uid::from_raw(blocked.owner))
                .ok()
                .flatten()
                .map_or_else(|| blocked.owner.to_string(), |user| user.name);
            format!(
                "`{name}` cannot enter {} (mode {:04o}, owner {owner}) on the way to it",
                blocked.path.display(),
                blocked.mode
            )
        }
        // Mode bits allow it; an ACL or a security module may not.
        None => format!("`{name}` was refused access to it ({error})"),
    };
    format!(
        "PostgreSQL cannot use the data folder {}: crm-server runs as root, so PostgreSQL (which refuses \
         to run as root) runs as the account `{name}`, and {why}. Choose a data folder `{name}` can enter \
         (--data-dir or CRM_DATA_DIR, e.g. under /var/lib or /srv), let `{name}` through (e.g. `chmod o+x` \
         on the folder named), or leave both unset for root's default, {ROOT_DEFAULT}",
        root.display()
    )
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// An account that owns nothing here and is in none of its groups.
    fn stranger() -> (Uid, Gid) {
        (Uid::from_raw(65_534), Gid::from_raw(65_534))
    }

    #[test]
    fn a_closed_folder_on_the_way_is_found_with_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let closed = dir.path().join("closed");
        let data = closed.join("open/data");
        fs::create_dir_all(&data).unwrap();
        fs::set_permissions(&closed, fs::Permissions::from_mode(0o700)).unwrap();
        let (uid, gid) = stranger();
        let blocked = blocked_folder(&data, uid, gid).expect("the 0700 folder stops it");
        assert_eq!(blocked.path, fs::canonicalize(&closed).unwrap());
        assert_eq!(blocked.mode, 0o700);
        assert_eq!(blocked.owner, Uid::effective().as_raw());

        fs::set_permissions(&closed, fs::Permissions::from_mode(0o701)).unwrap();
        assert_eq!(blocked_folder(&data, uid, gid), None, "the x bit for others is enough");
    }

    #[test]
    fn the_owner_and_the_group_are_judged_by_their_own_bits() {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o710)).unwrap();
        let meta = fs::metadata(dir.path()).unwrap();
        let (owner, group) = (Uid::from_raw(meta.uid()), Gid::from_raw(meta.gid()));
        let (stranger, strangers) = stranger();
        assert_eq!(blocked_folder(dir.path(), owner, strangers), None);
        assert_eq!(blocked_folder(dir.path(), stranger, group), None);
        assert!(blocked_folder(dir.path(), stranger, strangers).is_some());
    }

    #[test]
    fn the_explanation_names_the_folder_the_account_and_the_ways_out() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("crm");
        fs::create_dir(&root).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let (uid, gid) = stranger();
        let account = RunAs { name: "nobody", uid, gid };
        let text = explain(&root, &account, &io::Error::from(io::ErrorKind::PermissionDenied));
        let closed = fs::canonicalize(dir.path()).unwrap();
        for needle in [
            root.display().to_string(),
            format!("`nobody` cannot enter {} (mode 0700", closed.display()),
            "--data-dir or CRM_DATA_DIR".to_owned(),
            ROOT_DEFAULT.to_owned(),
        ] {
            assert!(text.contains(&needle), "{needle:?} missing from: {text}");
        }
    }
}
