//! Helpers shared by the integration tests (`mod common;` in each test file).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `nabla` binary in the system temp folder, so the run folders it writes (`runs/...`)
/// never land in the source tree.
pub fn nabla(args: &[&str]) -> Output {
    nabla_in(&std::env::temp_dir(), args)
}

/// Runs the `nabla` binary in `dir`.
pub fn nabla_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nabla"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the nabla binary runs")
}

/// Runs `nabla ARGS` (see [`nabla`]) and returns its standard output; a failure fails the test
/// with the command's standard error.
pub fn stdout(args: &[&str]) -> String {
    let out = nabla(args);
    assert!(
        out.status.success(),
        "nabla {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("nabla writes UTF-8")
}

/// A fresh, empty folder for one test: `nabla-<test file>-<name>-<pid>` in the temp folder.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "nabla-{}-{name}-{}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the temp folder is writable");
    dir
}

/// An IDX file: the 4-byte magic (`0x803`: unsigned bytes, 3 dimensions), each dimension as a
/// big-endian u32, then the data.
pub fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut v = magic.to_be_bytes().to_vec();
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(data);
    v
}

/// The standard error of `out`, as text.
pub fn err(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts `out` succeeded, showing its standard error otherwise.
pub fn ok(out: &Output) {
    assert!(out.status.success(), "{}", err(out));
}

/// A small 3-class CSV (`a,b,c,y`), `rows` rows, in `dir/name`.
pub fn tiny_csv(dir: &Path, name: &str, rows: usize) -> PathBuf {
    let mut s = String::from("a,b,c,y\n");
    for i in 0..rows {
        let k = i % 3;
        let x = (i * 7 % 11) as f64 / 11.0;
        s += &format!(
            "{},{},{x},{}\n",
            k as f64 + x,
            2.0 - k as f64,
            ["p", "q", "r"][k]
        );
    }
    let path = dir.join(name);
    std::fs::write(&path, s).unwrap();
    path
}

/// Trains a one-epoch model on `tiny.csv` in `dir` and returns the model's path.
pub fn tiny_model(dir: &Path) -> PathBuf {
    tiny_csv(dir, "tiny.csv", 60);
    let out = nabla_in(
        dir,
        &[
            "train",
            "--data",
            "tiny.csv",
            "--epochs",
            "1",
            "--hidden",
            "8",
            "--no-save",
            "--save",
            "m.safetensors",
            "--threads",
            "1",
        ],
    );
    ok(&out);
    dir.join("m.safetensors")
}
