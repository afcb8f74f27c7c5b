//! The 600-line rule: `cargo xtask lines`, and the same check as a `#[test]`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use xshell::{cmd, Shell};

/// Longest a Rust source file may be.
pub(crate) const LIMIT: usize = 600;

/// A file over the limit.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Offender {
    pub(crate) path: PathBuf,
    pub(crate) lines: usize,
}

pub(crate) fn run() -> anyhow::Result<()> {
    let root = crate::project_root();
    let files = rust_files(&root)?;
    let offenders = check(&root, &files)?;
    report(&offenders, files.len())
}

/// Prints one `path: N lines (limit 600)` line per offender; fails if any.
pub(crate) fn report(offenders: &[Offender], checked: usize) -> anyhow::Result<()> {
    for o in offenders {
        println!("{}: {} lines (limit {LIMIT})", o.path.display(), o.lines);
    }
    if offenders.is_empty() {
        println!("lines: {checked} Rust files, none over {LIMIT} lines");
        Ok(())
    } else {
        anyhow::bail!(
            "{} file(s) over {LIMIT} lines: split them by responsibility (a module per concern)",
            offenders.len()
        )
    }
}

/// Files over the limit among `files` (paths relative to `root`).
pub(crate) fn check(root: &Path, files: &[PathBuf]) -> anyhow::Result<Vec<Offender>> {
    let mut offenders = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(root.join(path))
            .with_context(|| format!("reading {}", path.display()))?;
        let lines = text.lines().count();
        if lines > LIMIT {
            offenders.push(Offender {
                path: path.clone(),
                lines,
            });
        }
    }
    Ok(offenders)
}

/// Tracked and new-but-not-ignored `.rs` files, from git; a directory walk
/// (skipping `target/`) when this is not a git checkout.
pub(crate) fn rust_files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let sh = Shell::new()?;
    sh.change_dir(root);
    let listed = cmd!(
        sh,
        "git ls-files --cached --others --exclude-standard -- *.rs"
    )
    .quiet()
    .ignore_stderr()
    .read();
    match listed {
        Ok(text) => Ok(text
            .lines()
            .map(PathBuf::from)
            .filter(|p| root.join(p).is_file())
            .collect()),
        Err(_) => {
            let mut files = Vec::new();
            walk(root, root, &mut files)?;
            Ok(files)
        }
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if name != "target" && !name.starts_with('.') {
                walk(root, &path, out)?;
            }
        } else if name.ends_with(".rs") {
            out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_source_file_over_the_limit() {
        let root = crate::project_root();
        let files = rust_files(&root).unwrap();
        assert!(
            files.iter().any(|f| f.ends_with("lines.rs")),
            "the walk found this file"
        );
        let offenders = check(&root, &files).unwrap();
        assert!(
            offenders.is_empty(),
            "files over {LIMIT} lines (split them by responsibility):\n{}",
            offenders
                .iter()
                .map(|o| format!("{}: {} lines", o.path.display(), o.lines))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    #[test]
    fn a_601_line_file_fails_and_600_passes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("long.rs"), "//\n".repeat(LIMIT + 1)).unwrap();
        std::fs::write(dir.path().join("ok.rs"), "//\n".repeat(LIMIT)).unwrap();
        let files = vec![PathBuf::from("long.rs"), PathBuf::from("ok.rs")];
        let offenders = check(dir.path(), &files).unwrap();
        assert_eq!(
            offenders,
            vec![Offender {
                path: PathBuf::from("long.rs"),
                lines: LIMIT + 1
            }]
        );
        let err = report(&offenders, 2).unwrap_err().to_string();
        assert!(err.contains("split them"), "{err}");
        assert!(report(&[], 2).is_ok());
    }
}
