//! Who the process runs as, for error messages a sysadmin can act on:
//! an MTA runs `oxidesk pipe` as another user (Postfix: `nobody`, in
//! `/var/spool/postfix`), and "permission denied" without the path and
//! the user sends them hunting.

use std::path::{Path, PathBuf};

/// The effective user: `nobody (uid 65534)`.
pub fn effective_user() -> String {
    #[cfg(target_os = "linux")]
    {
        let uid = rustix::process::geteuid().as_raw();
        match user_name(uid) {
            Some(name) => format!("{name} (uid {uid})"),
            None => format!("uid {uid}"),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        std::env::var("USER").unwrap_or_else(|_| "an unknown user".into())
    }
}

/// The name of `uid` in `/etc/passwd`, when it is there.
#[cfg(target_os = "linux")]
fn user_name(uid: u32) -> Option<String> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd_name(&passwd, uid)
}

/// `name:x:uid:…` lines: the first name with `uid`.
fn passwd_name(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        let name = f.next()?;
        let _password = f.next()?;
        (f.next()?.parse::<u32>().ok()? == uid).then(|| name.to_string())
    })
}

/// `path` made absolute against the working directory (without touching
/// the file system beyond it), so a message says where a relative path
/// actually led.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_names_are_found_by_uid() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
        assert_eq!(passwd_name(passwd, 65534).as_deref(), Some("nobody"));
        assert_eq!(passwd_name(passwd, 0).as_deref(), Some("root"));
        assert_eq!(passwd_name(passwd, 1000), None);
        assert_eq!(passwd_name("garbage\n::x\n", 0), None);
    }

    #[test]
    fn relative_paths_are_made_absolute() {
        assert!(absolute(Path::new("oxidesk-data/x.db")).is_absolute());
        assert_eq!(absolute(Path::new("/a/b")), PathBuf::from("/a/b"));
    }
}
