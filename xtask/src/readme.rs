//! `cargo xtask readme-check`: every crate README's Rust examples compile,
//! and run, as a user would paste them: in a scratch project that depends
//! on that crate alone (all its features on), outside this workspace.
//!
//! A block fenced ` ```rust ` is built and run; ` ```rust,no_run ` only
//! built; ` ```rust,ignore ` skipped. A block without `fn main` is pasted
//! into one. Hidden doctest lines (`# ...`) are refused: GitHub shows them.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context as _};
use xshell::{cmd, Shell};

use crate::ci::LIBRARY_CRATES;

/// One example from a README.
#[derive(Debug, PartialEq, Eq)]
struct Example {
    /// 1-based line of the opening fence.
    line: usize,
    code: String,
    run: bool,
}

pub(crate) fn run() -> anyhow::Result<()> {
    let root = crate::project_root();
    let sh = Shell::new()?;
    let features = features_by_crate(&sh, &root)?;
    let mut failed = Vec::new();
    for krate in LIBRARY_CRATES {
        let crate_features = features
            .iter()
            .find(|(name, _)| name == krate)
            .map(|(_, f)| f.as_slice())
            .unwrap_or_default();
        match check_crate(&sh, &root, krate, crate_features) {
            Ok(n) => println!("{krate}: {n} README example(s) compile and run"),
            Err(e) => {
                eprintln!("{krate}: {e:#}");
                failed.push(*krate);
            }
        }
    }
    if !failed.is_empty() {
        bail!(
            "README examples that fail as written: {}",
            failed.join(", ")
        );
    }
    Ok(())
}

/// Builds (and runs) one crate's README examples; returns how many.
fn check_crate(sh: &Shell, root: &Path, krate: &str, features: &[String]) -> anyhow::Result<usize> {
    let readme_path = root.join("crates").join(krate).join("README.md");
    let readme = fs::read_to_string(&readme_path)
        .with_context(|| format!("reading {}", readme_path.display()))?;
    let examples = examples(&readme).context("README.md")?;
    if examples.is_empty() {
        return Ok(0);
    }
    let scratch = root.join("target/readme-check");
    let project = scratch.join(krate);
    write_project(root, &project, krate, features, &examples)?;
    let _dir = sh.push_dir(&project);
    let _target = sh.push_env("CARGO_TARGET_DIR", scratch.join("target"));
    cmd!(sh, "cargo build --quiet --bins")
        .run()
        .context("an example does not compile")?;
    for (i, example) in examples.iter().enumerate() {
        if example.run {
            let bin = format!("example_{i}");
            cmd!(sh, "cargo run --quiet --bin {bin}")
                .run()
                .with_context(|| format!("the example at line {} failed when run", example.line))?;
        }
    }
    Ok(examples.len())
}

/// The Rust examples of a README, in order.
fn examples(readme: &str) -> anyhow::Result<Vec<Example>> {
    let mut out = Vec::new();
    let mut open: Option<(usize, bool, String)> = None;
    for (n, line) in readme.lines().enumerate() {
        let trimmed = line.trim_start();
        match open.take() {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let mut tags = info.split(',').map(str::trim);
                    if tags.next() == Some("rust") {
                        let tags: Vec<&str> = tags.collect();
                        if !tags.contains(&"ignore") {
                            open = Some((n + 1, !tags.contains(&"no_run"), String::new()));
                        }
                    }
                }
            }
            Some((start, run, code)) if trimmed.starts_with("```") => {
                out.push(Example {
                    line: start,
                    code,
                    run,
                });
            }
            Some((start, run, mut code)) => {
                if trimmed == "#" || trimmed.starts_with("# ") {
                    bail!(
                        "line {}: a hidden doctest line; GitHub shows it, so write the example out in full",
                        n + 1
                    );
                }
                code.push_str(line);
                code.push('\n');
                open = Some((start, run, code));
            }
        }
    }
    if let Some((start, ..)) = open {
        bail!("line {start}: a code block that never closes");
    }
    Ok(out)
}

/// The example as a program: as written, or pasted into `fn main`.
fn program(example: &Example) -> String {
    if example.code.contains("fn main(") {
        example.code.clone()
    } else {
        let body: String = example.code.lines().map(|l| format!("    {l}\n")).collect();
        format!("fn main() {{\n{body}}}\n")
    }
}

fn write_project(
    root: &Path,
    project: &Path,
    krate: &str,
    features: &[String],
    examples: &[Example],
) -> anyhow::Result<()> {
    let bins = project.join("src/bin");
    if bins.exists() {
        fs::remove_dir_all(&bins)?;
    }
    fs::create_dir_all(&bins)?;
    let path = root.join("crates").join(krate);
    let features: Vec<String> = features.iter().map(|f| format!("{f:?}")).collect();
    let manifest = format!(
        "[package]\nname = \"readme-{krate}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         # Not part of the hive workspace: a user's project.\n[workspace]\n\n\
         [dependencies]\n{krate} = {{ path = {path:?}, features = [{}] }}\n",
        features.join(", "),
        path = path.display().to_string(),
    );
    fs::write(project.join("Cargo.toml"), manifest)?;
    // The workspace's lock file: the versions CI tested, no network surprises.
    fs::copy(root.join("Cargo.lock"), project.join("Cargo.lock"))?;
    for (i, example) in examples.iter().enumerate() {
        fs::write(bins.join(format!("example_{i}.rs")), program(example))?;
    }
    Ok(())
}

/// Each library crate's feature names (from `cargo metadata`).
fn features_by_crate(sh: &Shell, root: &Path) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let _dir = sh.push_dir(root);
    let metadata = cmd!(sh, "cargo metadata --no-deps --format-version 1")
        .quiet()
        .read()?;
    let metadata: serde_json::Value = serde_json::from_str(&metadata)?;
    let packages = metadata
        .get("packages")
        .and_then(|p| p.as_array())
        .context("cargo metadata without packages")?;
    Ok(packages
        .iter()
        .filter_map(|p| {
            let name = p.get("name")?.as_str()?.to_string();
            let features = p
                .get("features")?
                .as_object()?
                .keys()
                .filter(|f| *f != "default")
                .cloned()
                .collect();
            Some((name, features))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_found_with_their_run_mode() {
        let readme = "text\n```rust\nlet a = 1;\n```\n```sh\nls\n```\n```rust,no_run\nfn main() {}\n```\n```rust,ignore\nx\n```\n";
        let found = examples(readme).unwrap();
        assert_eq!(
            found,
            vec![
                Example {
                    line: 2,
                    code: "let a = 1;\n".into(),
                    run: true
                },
                Example {
                    line: 8,
                    code: "fn main() {}\n".into(),
                    run: false
                },
            ]
        );
    }

    #[test]
    fn hidden_lines_are_refused() {
        let err = examples("```rust\n# fn main() {\nlet a = 1;\n# }\n```\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn snippets_are_pasted_into_main() {
        let snippet = Example {
            line: 1,
            code: "let a = 1;\n".into(),
            run: true,
        };
        assert_eq!(program(&snippet), "fn main() {\n    let a = 1;\n}\n");
        let whole = Example {
            line: 1,
            code: "fn main() {}\n".into(),
            run: true,
        };
        assert_eq!(program(&whole), "fn main() {}\n");
    }
}
