//! Records the git commit the binary is built from, for `--version`.
//! Outside a git checkout (a release tarball, a vendored source) or
//! without git, the commit reads "unknown commit" and the build goes on,
//! unless `OXIDESK_BUILD_COMMIT` names it.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn main() {
    // A build without `.git` (a container, a tarball) may name its commit.
    println!("cargo:rerun-if-env-changed=OXIDESK_BUILD_COMMIT");
    let commit = std::env::var("OXIDESK_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    println!(
        "cargo:rustc-env=OXIDESK_BUILD_COMMIT={}",
        commit
            .as_deref()
            .map_or_else(|| "unknown commit".to_string(), |c| format!("commit {c}"))
    );
    // Build again when HEAD moves: HEAD itself (a checkout) and the ref it
    // names (a commit on the branch). In a worktree both live under the
    // git dirs git names; paths that do not exist are simply watched.
    println!("cargo:rerun-if-changed=build.rs");
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
    }
    if let (Some(common), Some(head)) = (
        git(&["rev-parse", "--git-common-dir"]),
        git(&["symbolic-ref", "-q", "HEAD"]),
    ) {
        println!("cargo:rerun-if-changed={common}/{head}");
        println!("cargo:rerun-if-changed={common}/packed-refs");
    }
}
