//! README.md's commands, run against the built binary so the README cannot drift from it.
//!
//! The convention (README's "Contributing" section says the same):
//! - Every ```` ```sh ```` block is run, line by line (a trailing `\` continues a line, `#`
//!   starts a comment), and so is every `$ ` line of a ```` ```text ```` block (a transcript:
//!   the command runs and must succeed; its output is not compared).
//! - `nabla ARGS` and `cargo run --release -- ARGS` run the built `nabla` with ARGS. All blocks
//!   run in order in one fresh folder holding a copy of the repository's `data/` (so later
//!   blocks may use run folders and model files of earlier ones); `../shared/datasets` from
//!   there is the shared datasets folder.
//! - `<!-- readme-test: skip (reason) -->` on the line before a block: not run. The reason is
//!   required: installs, long training recipes, `mpirun`, the test suite itself.
//! - `<!-- readme-test: needs-shared -->`: the block reads `../shared/datasets`. Plain
//!   `cargo test` skips it (a fresh clone has no shared folder); .ci/run runs it with
//!   `NABLA_README_SHARED=1 cargo test --release -p nabla-cli --test readme`.
//! - Any other command (`cargo test`, `pip`, a pipe) in a block that is run fails this test:
//!   mark the block instead.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

/// How a block is treated, from the marker on the line before it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mark {
    Run,
    NeedsShared,
    Skip,
}

/// One command found in the README: where, how it is marked, and its words.
#[derive(Debug)]
struct Found {
    line: usize,
    mark: Mark,
    words: Vec<String>,
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli/ sits in the repository")
        .to_path_buf()
}

/// The marker before a block: `<!-- readme-test: skip (reason) -->` or `needs-shared`.
fn mark(previous: &str, line: usize) -> Mark {
    let Some(inner) = previous
        .trim()
        .strip_prefix("<!-- readme-test:")
        .and_then(|r| r.strip_suffix("-->"))
    else {
        return Mark::Run;
    };
    let inner = inner.trim();
    if inner == "needs-shared" {
        Mark::NeedsShared
    } else if let Some(reason) = inner.strip_prefix("skip") {
        let reason = reason.trim();
        assert!(
            reason.starts_with('(') && reason.ends_with(')') && reason.len() > 4,
            "README.md line {line}: a skipped block needs its reason: <!-- readme-test: skip (why) -->"
        );
        Mark::Skip
    } else {
        panic!(
            "README.md line {line}: unknown marker {previous:?} (skip (reason) or needs-shared)"
        );
    }
}

/// Splits a command line into words: blanks separate, single and double quotes group.
fn words(line: &str, at: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => out.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    assert!(
        quote.is_none(),
        "README.md line {at}: unbalanced quote in {line:?}"
    );
    out.extend(word);
    out
}

/// Every command of README.md, in order.
fn commands(readme: &str) -> Vec<Found> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i].trim_start();
        let kind = match fence.strip_prefix("```") {
            Some(k) => k.trim().to_string(),
            None => {
                i += 1;
                continue;
            }
        };
        let block_mark = mark(if i > 0 { lines[i - 1] } else { "" }, i + 1);
        let mut j = i + 1;
        let mut pending = String::new();
        let mut start = j;
        while j < lines.len() && !lines[j].trim_start().starts_with("```") {
            let line = lines[j];
            let command = match kind.as_str() {
                "sh" | "bash" | "shell" => Some(line),
                "text" | "" => line.strip_prefix("$ "),
                _ => None,
            };
            if let Some(command) = command {
                if pending.is_empty() {
                    start = j + 1;
                }
                let command = command.split(" #").next().unwrap_or("").trim_end();
                if let Some(cont) = command.strip_suffix('\\') {
                    pending += cont;
                    pending.push(' ');
                } else {
                    pending += command;
                    let text = pending.trim().to_string();
                    pending.clear();
                    if !text.is_empty() && !text.starts_with('#') {
                        found.push(Found {
                            line: start,
                            mark: block_mark,
                            words: words(&text, start),
                        });
                    }
                }
            }
            j += 1;
        }
        i = j + 1;
    }
    found
}

/// The arguments for the binary, or a failure naming the line for any other command.
fn nabla_args(f: &Found) -> Vec<String> {
    let w = &f.words;
    if w.first().map(String::as_str) == Some("nabla") {
        return w[1..].to_vec();
    }
    if w.len() >= 3 && w[..3] == ["cargo", "run", "--release"] {
        let rest = &w[3..];
        let rest = rest.strip_prefix(&["--".to_string()]).unwrap_or(rest);
        return rest.to_vec();
    }
    panic!(
        "README.md line {}: `{}` is not a nabla command; mark its block \
         <!-- readme-test: skip (reason) --> if it should not run",
        f.line,
        w.join(" ")
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn every_readme_command_runs() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let found = commands(&readme);
    assert!(found.len() >= 10, "README.md should show its commands");
    let shared = std::env::var_os("NABLA_README_SHARED").is_some_and(|v| v == "1");
    let root = common::temp_dir("readme");
    let work = root.join("work");
    copy_dir(&repo().join("data"), &work.join("data"));
    if shared {
        let datasets = repo().join("../shared/datasets");
        assert!(
            datasets.is_dir(),
            "NABLA_README_SHARED=1 needs {}",
            datasets.display()
        );
        std::fs::create_dir_all(root.join("shared")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(
            std::fs::canonicalize(&datasets).unwrap(),
            root.join("shared/datasets"),
        )
        .unwrap();
    }
    let (mut ran, mut skipped) = (0, 0);
    for f in &found {
        let run = match f.mark {
            Mark::Run => true,
            Mark::NeedsShared => shared,
            Mark::Skip => false,
        };
        if !run {
            skipped += 1;
            continue;
        }
        let args = nabla_args(f);
        let started = std::time::Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_nabla"))
            .current_dir(&work)
            .args(&args)
            .output()
            .expect("the nabla binary runs");
        assert!(
            out.status.success(),
            "README.md line {}: `nabla {}` failed ({}):\n{}",
            f.line,
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "README.md line {}: nabla {} ({:.2}s)",
            f.line,
            args.join(" "),
            started.elapsed().as_secs_f64()
        );
        ran += 1;
    }
    eprintln!("{ran} README commands ran, {skipped} marked not to run here");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn markers_and_words_are_read_as_documented() {
    let text = "intro\n```sh\nnabla train --delimiter ';' \\\n  --epochs 2  # a comment\n```\n\
                <!-- readme-test: skip (installs) -->\n```sh\ncargo install --path cli\n```\n\
                <!-- readme-test: needs-shared -->\n```text\n$ nabla train --data ../shared/datasets/mnist\noutput\n```\n";
    let found = commands(text);
    assert_eq!(found.len(), 3);
    assert_eq!(
        found[0].words,
        ["nabla", "train", "--delimiter", ";", "--epochs", "2"]
    );
    assert_eq!(found[0].mark, Mark::Run);
    assert_eq!(found[1].mark, Mark::Skip);
    assert_eq!(found[2].mark, Mark::NeedsShared);
    assert_eq!(nabla_args(&found[2])[0], "train");
}
