//! Who PostgreSQL runs as. It refuses to run as root, so a root process
//! (a container, a CI machine) runs it as a service user instead, and
//! everything PostgreSQL touches must belong to that user.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::Error;

/// The user the cluster's programs run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunAs {
    /// This process's own user (not root).
    CurrentUser,
    /// A service user, because this process runs as root.
    Service {
        /// Its name (`postgres`).
        name: String,
        /// Its user id.
        uid: u32,
        /// Its primary group id.
        gid: u32,
    },
}

/// The output of `id <args>` as a number.
fn id_number(args: &[&str]) -> Option<u32> {
    let out = Command::new("id")
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// True when this process runs as root.
pub fn is_root() -> bool {
    id_number(&["-u"]) == Some(0)
}

impl RunAs {
    /// This process's user, or `service_user` when this process is root.
    pub fn detect(service_user: &str) -> Result<Self, Error> {
        if !is_root() {
            return Ok(Self::CurrentUser);
        }
        let uid = id_number(&["-u", service_user]);
        let gid = id_number(&["-g", service_user]);
        match (uid, gid) {
            (Some(uid), Some(gid)) if uid != 0 => Ok(Self::Service {
                name: service_user.to_owned(),
                uid,
                gid,
            }),
            _ => Err(Error::NoServiceUser {
                user: service_user.to_owned(),
            }),
        }
    }

    /// The user's name, for messages.
    pub fn name(&self) -> &str {
        match self {
            Self::CurrentUser => "the current user",
            Self::Service { name, .. } => name,
        }
    }

    /// A command running `program` as this user. Setting the ids drops
    /// root's supplementary groups too (the standard library does so when
    /// it changes the user).
    pub fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        if let Self::Service { uid, gid, .. } = self {
            cmd.uid(*uid).gid(*gid);
        }
        cmd
    }

    /// Hands `path` to this user (nothing to do for the current user).
    pub fn own(&self, path: &Path) -> std::io::Result<()> {
        match self {
            Self::CurrentUser => Ok(()),
            Self::Service { uid, gid, .. } => {
                std::os::unix::fs::chown(path, Some(*uid), Some(*gid))
            }
        }
    }

    /// True when this user can enter and write `dir`: every parent must be
    /// searchable by it, which a private home directory (mode 700) is not.
    pub fn can_use(&self, dir: &Path) -> bool {
        let mut cmd = self.command(Path::new("/bin/sh"));
        cmd.args([
            "-c",
            r#"test -d "$1" && test -w "$1" && test -x "$1""#,
            "sh",
        ])
        .arg(dir)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        cmd.status().is_ok_and(|s| s.success())
    }
}
