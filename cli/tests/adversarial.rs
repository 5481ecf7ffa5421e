//! Issue 13, "nothing clobbered, nothing lost": one test per finding, driven through the binary
//! as an attacker or a careless user would. Devices are tested through FIFOs made here (and
//! /dev/null only in stream mode, checked to still be a character device afterwards); memory
//! limits through NABLA_MEMORY_LIMIT; big inputs as sparse files or small crafted ones.

mod common;
use common::{err, nabla_in, ok, temp_dir, tiny_csv, tiny_model};

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn nabla() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nabla"))
}

fn run(dir: &Path, args: &[&OsStr]) -> Output {
    nabla()
        .current_dir(dir)
        .args(args)
        .output()
        .expect("nabla runs")
}

fn mkfifo(path: &Path) {
    let s = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(s.success());
}

/// Reads everything written into the FIFO `path` on a thread.
fn drain(path: &Path) -> std::thread::JoinHandle<usize> {
    let path = path.to_path_buf();
    std::thread::spawn(move || std::fs::read(&path).map(|b| b.len()).unwrap_or(0))
}

/// Rewrites a safetensors file's header with `edit`, keeping the tensor bytes.
fn edit_header(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    edit(&mut header);
    let h = serde_json::to_vec(&header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&bytes[8 + n..]);
    std::fs::write(path, out).unwrap();
}

/// Edits the JSON inside the metadata entry `key`.
fn edit_meta(path: &Path, key: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    edit_header(path, |h| {
        let entry = &mut h["__metadata__"][key];
        let mut v: serde_json::Value = serde_json::from_str(entry.as_str().unwrap()).unwrap();
        edit(&mut v);
        *entry = serde_json::Value::String(v.to_string());
    });
}

fn signal(child: &Child, name: &str) {
    let s = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(s.success());
}

/// Waits until `path` exists or existed (checkpoints are pruned as the run goes on: a folder's
/// first checkpoint is seen as "some checkpoint in its folder").
fn wait_for(path: &Path, child: &mut Child) {
    let start = Instant::now();
    let seen = || {
        path.exists()
            || path.parent().is_some_and(|d| {
                std::fs::read_dir(d).is_ok_and(|mut e| {
                    e.any(|f| {
                        f.is_ok_and(|f| f.file_name().to_string_lossy().starts_with("epoch-"))
                    })
                })
            })
    };
    while !seen() {
        let late = start.elapsed() > Duration::from_secs(60);
        let ended = child.try_wait().unwrap().is_some();
        if late || ended {
            // Never leave a run of 4294967295 epochs behind.
            let _ = child.kill();
            let _ = child.wait();
            panic!("{path:?} never appeared (ended early: {ended})");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

// 1. Devices, FIFOs and symlinks are written through, never replaced.
#[test]
fn f01_outputs_stream_into_fifos_and_devices_and_follow_symlinks() {
    let dir = temp_dir("f01");
    let model = tiny_model(&dir);
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    let reader = drain(&fifo);
    let out = nabla_in(
        &dir,
        &[
            "train",
            "--data",
            "tiny.csv",
            "--epochs",
            "1",
            "--hidden",
            "4",
            "--no-save",
            "--save",
            "fifo",
        ],
    );
    ok(&out);
    assert!(
        reader.join().unwrap() > 1000,
        "the model went through the FIFO"
    );
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());

    // predict --out FIFO, and /dev/null in stream mode (it must stay a character device).
    let reader = drain(&fifo);
    ok(&nabla_in(
        &dir,
        &[
            "predict",
            "--model",
            "m.safetensors",
            "--data",
            "tiny.csv",
            "--out",
            "fifo",
        ],
    ));
    assert!(reader.join().unwrap() > 100);
    let null = Path::new("/dev/null");
    if std::fs::metadata(null).is_ok_and(|m| m.file_type().is_char_device()) {
        ok(&nabla_in(
            &dir,
            &[
                "predict",
                "--model",
                "m.safetensors",
                "--data",
                "tiny.csv",
                "--out",
                "/dev/null",
            ],
        ));
        assert!(
            std::fs::metadata(null)
                .unwrap()
                .file_type()
                .is_char_device()
        );
    }

    // A symlink stays a link; the file it points to gets the new content.
    std::fs::write(dir.join("target.csv"), "old").unwrap();
    std::os::unix::fs::symlink("target.csv", dir.join("link.csv")).unwrap();
    ok(&nabla_in(
        &dir,
        &[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--data",
            "tiny.csv",
            "--out",
            "link.csv",
        ],
    ));
    let link = std::fs::symlink_metadata(dir.join("link.csv")).unwrap();
    assert!(link.file_type().is_symlink());
    assert!(
        std::fs::read_to_string(dir.join("target.csv"))
            .unwrap()
            .starts_with("prediction")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// 2. --name is a name; run folders are never shared or silently reused.
#[test]
fn f02_run_names_stay_under_runs_and_folders_are_never_reused_silently() {
    let dir = temp_dir("f02");
    tiny_csv(&dir, "tiny.csv", 60);
    let base = [
        "train",
        "--data",
        "tiny.csv",
        "--epochs",
        "1",
        "--hidden",
        "4",
        "--threads",
        "1",
    ];
    for name in ["../../escape", "/tmp/x", "..", "", ".", "a/b"] {
        let mut args = base.to_vec();
        args.extend(["--name", name]);
        let out = nabla_in(&dir, &args);
        assert_eq!(out.status.code(), Some(2), "--name {name:?}: {}", err(&out));
        assert!(err(&out).contains("plain folder name"), "{}", err(&out));
    }
    assert!(!dir.join("escape").exists() && !dir.join("runs").join("model.safetensors").exists());

    let mut args = base.to_vec();
    args.extend(["--name", "dup"]);
    ok(&nabla_in(&dir, &args));
    let first = std::fs::read(dir.join("runs/dup/model.safetensors")).unwrap();
    let out = nabla_in(&dir, &args);
    assert_eq!(out.status.code(), Some(2));
    assert!(err(&out).contains("--overwrite"), "{}", err(&out));
    assert_eq!(
        std::fs::read(dir.join("runs/dup/model.safetensors")).unwrap(),
        first
    );

    // --overwrite replaces the run and leaves no stale file of the old one (a regression run
    // has no confusion matrix).
    let mut s = String::from("a,b,v\n");
    for i in 0..40 {
        s += &format!("{i},{},{}.5\n", i % 7, i * 3);
    }
    std::fs::write(dir.join("reg.csv"), s).unwrap();
    let out = nabla_in(
        &dir,
        &[
            "train",
            "--data",
            "reg.csv",
            "--epochs",
            "1",
            "--hidden",
            "4",
            "--name",
            "dup",
            "--overwrite",
        ],
    );
    ok(&out);
    assert!(!dir.join("runs/dup/confusion_matrix.svg").exists());

    // A folder locked by a live process (this test) is refused even with --overwrite.
    std::fs::create_dir_all(dir.join("runs/busy")).unwrap();
    std::fs::write(
        dir.join("runs/busy/.nabla-run.lock"),
        std::process::id().to_string(),
    )
    .unwrap();
    let mut args = base.to_vec();
    args.extend(["--name", "busy", "--overwrite"]);
    let out = nabla_in(&dir, &args);
    assert_eq!(out.status.code(), Some(2));
    assert!(err(&out).contains("another nabla run"), "{}", err(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

// 3. No output may overwrite an input of the same command.
#[test]
fn f03_outputs_never_overwrite_the_inputs() {
    let dir = temp_dir("f03");
    tiny_model(&dir);
    let before = std::fs::read(dir.join("tiny.csv")).unwrap();
    let base = ["train", "--data", "tiny.csv", "--epochs", "1", "--no-save"];
    for (flag, value) in [("--save", "tiny.csv"), ("--metrics-out", "./tiny.csv")] {
        let mut args = base.to_vec();
        args.extend([flag, value]);
        let out = nabla_in(&dir, &args);
        assert_eq!(out.status.code(), Some(2), "{flag}: {}", err(&out));
        assert!(err(&out).contains("input of this command"), "{}", err(&out));
    }
    let out = nabla_in(
        &dir,
        &[
            "predict",
            "--model",
            "m.safetensors",
            "--data",
            "tiny.csv",
            "--out",
            "tiny.csv",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let out = nabla_in(
        &dir,
        &[
            "predict",
            "--model",
            "m.safetensors",
            "--data",
            "tiny.csv",
            "--out",
            "m.safetensors",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(std::fs::read(dir.join("tiny.csv")).unwrap(), before);
    let _ = std::fs::remove_dir_all(&dir);
}

// 4. A bad output path is found before the data is loaded: exit 2 in under a second.
#[test]
fn f04_bad_output_paths_fail_before_training() {
    let dir = temp_dir("f04");
    tiny_csv(&dir, "tiny.csv", 60);
    std::fs::create_dir_all(dir.join("adir")).unwrap();
    std::fs::write(dir.join("afile"), "x").unwrap();
    let base = [
        "train", "--data", "tiny.csv", "--epochs", "50", "--hidden", "4",
    ];
    let cases: [(&[&str], &str); 6] = [
        (&["--no-save", "--save", "adir"], "adir"),
        (
            &["--no-save", "--save", "missing/parent/m.safetensors"],
            "missing/parent",
        ),
        (&["--no-save", "--metrics-out", "adir"], "adir"),
        (&["--run-dir", "afile/run"], "afile"),
        (&["--no-save", "--checkpoint-dir", "afile/ck"], "afile/ck"),
        (&["--no-save", "--save", "gone/"], "gone/"),
    ];
    for (extra, named) in cases {
        let mut args = base.to_vec();
        args.extend(extra);
        let started = Instant::now();
        let out = nabla_in(&dir, &args);
        let took = started.elapsed();
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", err(&out));
        assert!(err(&out).contains(named), "{extra:?}: {}", err(&out));
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("epoch"),
            "{extra:?} trained first"
        );
        assert!(took < Duration::from_secs(1), "{extra:?} took {took:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// 5. SIGINT / SIGTERM: the run is saved, marked interrupted, and the exit code says which.
#[test]
fn f05_signals_save_an_interrupted_run() {
    let dir = temp_dir("f05");
    tiny_csv(&dir, "tiny.csv", 60);
    for (sig, code) in [("INT", 130), ("TERM", 143)] {
        let name = format!("sig{sig}");
        let mut child = nabla()
            .current_dir(&dir)
            .args([
                "train",
                "--data",
                "tiny.csv",
                "--epochs",
                "4294967295",
                "--hidden",
                "4",
                "--threads",
                "1",
                "--quiet",
                "--name",
                &name,
                "--checkpoint-dir",
                &format!("ck{sig}"),
                "--save",
                &format!("{name}.safetensors"),
                "--metrics-out",
                &format!("{name}.json"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for(
            &dir.join(format!("ck{sig}/epoch-00002.safetensors")),
            &mut child,
        );
        signal(&child, sig);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{}", err(&out));
        assert!(err(&out).contains(&format!("ck{sig}")), "{}", err(&out));
        let history =
            std::fs::read_to_string(dir.join(format!("runs/{name}/history.json"))).unwrap();
        assert!(history.contains("\"status\": \"interrupted\""), "{history}");
        let metrics = std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap();
        assert!(metrics.contains("\"status\": \"interrupted\""));
        let model = nabla::io::load(dir.join(format!("{name}.safetensors"))).unwrap();
        assert_eq!(model.training["status"], "interrupted");
        assert!(!dir.join(format!("runs/{name}/.nabla-run.lock")).exists());
    }
    // A second Ctrl-C ends the process at once.
    let mut child = nabla()
        .current_dir(&dir)
        .args([
            "train",
            "--data",
            "tiny.csv",
            "--epochs",
            "4294967295",
            "--hidden",
            "4",
            "--quiet",
            "--no-save",
            "--checkpoint-dir",
            "ck2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&dir.join("ck2/epoch-00001.safetensors"), &mut child);
    signal(&child, "INT");
    signal(&child, "INT");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let _ = std::fs::remove_dir_all(&dir);
}

// 6. Checkpoints belong to one run: a folder of another run's is refused, a finished run says so.
#[test]
fn f06_checkpoints_belong_to_one_run() {
    let dir = temp_dir("f06");
    tiny_csv(&dir, "tiny.csv", 60);
    let run_a = [
        "train",
        "--data",
        "tiny.csv",
        "--epochs",
        "6",
        "--hidden",
        "4",
        "--threads",
        "1",
        "--no-save",
        "--checkpoint-dir",
        "ck",
    ];
    ok(&nabla_in(&dir, &run_a));
    let files = |d: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir.join(d))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    let kept = files("ck");
    assert!(
        kept.contains(&"epoch-00006.safetensors".to_string()),
        "{kept:?}"
    );
    // Another run into the same folder is refused and prunes nothing.
    let out = nabla_in(
        &dir,
        &[
            "train",
            "--data",
            "tiny.csv",
            "--epochs",
            "2",
            "--hidden",
            "4",
            "--no-save",
            "--checkpoint-dir",
            "ck",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(err(&out).contains("another run"), "{}", err(&out));
    assert_eq!(files("ck"), kept);
    // Resuming the finished run says so and writes nothing.
    let out = nabla_in(&dir, &["train", "--resume", "ck", "--no-save"]);
    ok(&out);
    assert!(err(&out).contains("already finished"), "{}", err(&out));
    assert_eq!(files("ck"), kept);
    // --epochs extends it.
    let out = nabla_in(
        &dir,
        &["train", "--resume", "ck", "--epochs", "8", "--no-save"],
    );
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("epoch 8/8"));
    assert!(dir.join("ck/epoch-00008.safetensors").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

// 7. Temporary files of killed writes are cleaned (only those whose process is gone); plots are
//    written atomically (no temporary file is left, every plot is complete).
#[test]
fn f07_stale_temporary_files_are_removed() {
    let dir = temp_dir("f07");
    tiny_csv(&dir, "tiny.csv", 60);
    std::fs::create_dir_all(dir.join("ck")).unwrap();
    // 4194304 is above Linux's pid limit: never a live process.
    let dead = dir.join("ck/.epoch-00001.safetensors.tmp4194304");
    let live = dir.join(format!(
        "ck/.epoch-00001.safetensors.tmp{}",
        std::process::id()
    ));
    std::fs::write(&dead, vec![0u8; 4096]).unwrap();
    std::fs::write(&live, b"x").unwrap();
    let out = nabla_in(
        &dir,
        &[
            "train",
            "--data",
            "tiny.csv",
            "--epochs",
            "1",
            "--hidden",
            "4",
            "--name",
            "r",
            "--checkpoint-dir",
            "ck",
        ],
    );
    ok(&out);
    assert!(!dead.exists(), "the dead writer's temporary file is gone");
    assert!(live.exists(), "a live writer's temporary file is kept");
    for entry in std::fs::read_dir(dir.join("runs/r")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp"), "left behind: {name}");
    }
    let svg = std::fs::read_to_string(dir.join("runs/r/learning_curves.svg")).unwrap();
    assert!(svg.trim_end().ends_with("</svg>"));
    let _ = std::fs::remove_dir_all(&dir);
}

// 8. A 300,000-column header: the duplicate check is linear.
#[test]
fn f08_a_wide_header_is_checked_in_linear_time() {
    let dir = temp_dir("f08");
    let mut header: Vec<String> = (0..300_000).map(|i| format!("c{i}")).collect();
    header.push("c0".into());
    std::fs::write(dir.join("wide.csv"), header.join(",") + "\n").unwrap();
    let started = Instant::now();
    let out = nabla_in(
        &dir,
        &["train", "--data", "wide.csv", "--no-save", "--epochs", "1"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err(&out).contains("duplicate header name \"c0\""),
        "{}",
        err(&out)
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// 9. Line-length and decompression limits, named; a sparse model file is refused unread.
#[test]
fn f09_line_decompression_and_trailing_limits() {
    let dir = temp_dir("f09");
    let sparse = std::fs::File::create(dir.join("sparse.csv")).unwrap();
    sparse.set_len(80 << 20).unwrap();
    let out = nabla_in(
        &dir,
        &[
            "train",
            "--data",
            "sparse.csv",
            "--no-save",
            "--epochs",
            "1",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(err(&out).contains("MAX_LINE_BYTES"), "{}", err(&out));

    // A gzip of 80 MB of blank lines: far beyond the ratio a CSV compresses by.
    {
        use std::io::Write;
        let f = std::fs::File::create(dir.join("bomb.csv.gz")).unwrap();
        let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::best());
        gz.write_all(b"a,b\n").unwrap();
        let blank = vec![b'\n'; 1 << 20];
        for _ in 0..80 {
            gz.write_all(&blank).unwrap();
        }
        gz.finish().unwrap();
    }
    let out = nabla_in(
        &dir,
        &[
            "train",
            "--data",
            "bomb.csv.gz",
            "--no-save",
            "--epochs",
            "1",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(err(&out).contains("MAX_GZIP_RATIO"), "{}", err(&out));

    // A valid model followed by 1 GB of (sparse) zeros is refused before it is read.
    let model = tiny_model(&dir);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&model)
        .unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len + (1 << 30)).unwrap();
    let started = Instant::now();
    let out = nabla_in(&dir, &["inspect", "--model", "m.safetensors"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(err(&out).contains("after the last tensor"), "{}", err(&out));
    assert!(started.elapsed() < Duration::from_secs(2));
    let _ = std::fs::remove_dir_all(&dir);
}

// 10. A spec is checked against the file's tensors before anything is allocated for it.
#[test]
fn f10_model_spec_sizes_are_checked_before_allocation() {
    let dir = temp_dir("f10");
    let model = tiny_model(&dir);
    for out_width in [4_000_000_000u64, 1 << 62] {
        std::fs::copy(&model, dir.join("big.safetensors")).unwrap();
        edit_meta(&dir.join("big.safetensors"), "spec", |spec| {
            spec["layers"][0]["out"] = out_width.into();
            spec["layers"][2]["in"] = out_width.into();
        });
        let out = nabla_in(&dir, &["inspect", "--model", "big.safetensors"]);
        assert_eq!(out.status.code(), Some(2), "{}", err(&out));
        assert!(
            err(&out).contains("need") || err(&out).contains("spec"),
            "{}",
            err(&out)
        );
    }
    // 2 million layers: the header is over its limit before it is parsed.
    std::fs::copy(&model, dir.join("deep.safetensors")).unwrap();
    edit_meta(&dir.join("deep.safetensors"), "spec", |spec| {
        let layers = spec["layers"].as_array_mut().unwrap();
        let relu = serde_json::json!({"kind": "relu"});
        layers.extend(std::iter::repeat_n(relu, 2_000_000));
    });
    let out = nabla_in(&dir, &["inspect", "--model", "deep.safetensors"]);
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

// 11. Memory is estimated before allocation; history grows as epochs run.
#[test]
fn f11_oversized_networks_are_refused_with_an_estimate() {
    let dir = temp_dir("f11");
    tiny_csv(&dir, "tiny.csv", 60);
    let out = nabla()
        .current_dir(&dir)
        .env("NABLA_MEMORY_LIMIT", "23G")
        .args([
            "train",
            "--data",
            "tiny.csv",
            "--hidden",
            "65536,65536",
            "--epochs",
            "1",
            "--no-save",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));
    let e = err(&out);
    assert!(
        e.contains("--hidden 65536,65536 needs ~69 GB for weights, gradients and Adam state"),
        "{e}"
    );
    assert!(e.contains("25 GB are available"), "{e}");
    // A small network fits the same limit; --epochs 4294967295 allocates nothing per epoch
    // up front (the run is stopped by a signal).
    let mut child = nabla()
        .current_dir(&dir)
        .env("NABLA_MEMORY_LIMIT", "23G")
        .args([
            "train",
            "--data",
            "tiny.csv",
            "--hidden",
            "4",
            "--epochs",
            "4294967295",
            "--no-save",
            "--quiet",
            "--checkpoint-dir",
            "ck",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(&dir.join("ck/epoch-00001.safetensors"), &mut child);
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", err(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

// 12. Config files are bounded in size and nesting; many classes give small plots and history.
#[test]
fn f12_config_nesting_and_many_classes_stay_small() {
    let dir = temp_dir("f12");
    let deep: String = "[".to_string() + &vec!["a"; 3000].join(".") + "]\nx = 1\n";
    std::fs::write(dir.join("deep.toml"), deep).unwrap();
    let big = "# padding\n".repeat(200_000);
    std::fs::write(dir.join("big.toml"), big).unwrap();
    for file in ["deep.toml", "big.toml"] {
        let started = Instant::now();
        let out = nabla_in(&dir, &["train", "--config", file, "--no-save"]);
        assert_eq!(out.status.code(), Some(2), "{file}: {}", err(&out));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    // 60 classes: no confusion-matrix plot, and history.json leaves the matrix out.
    let mut s = String::from("a,b,y\n");
    for i in 0..240 {
        s += &format!("{},{},k{}\n", i % 60, (i * 7) % 13, i % 60);
    }
    std::fs::write(dir.join("many.csv"), s).unwrap();
    let out = nabla_in(
        &dir,
        &[
            "train",
            "--data",
            "many.csv",
            "--epochs",
            "1",
            "--hidden",
            "4",
            "--task",
            "classification",
            "--name",
            "many",
            "--test-split",
            "0.5",
        ],
    );
    ok(&out);
    assert!(!dir.join("runs/many/confusion_matrix.svg").exists());
    let history = std::fs::metadata(dir.join("runs/many/history.json"))
        .unwrap()
        .len();
    assert!(history < 20_000, "{history} bytes");
    ok(&nabla_in(&dir, &["plot", "runs/many"]));
    let _ = std::fs::remove_dir_all(&dir);
}

// 13. Non-UTF-8 arguments never panic, in any subcommand.
#[test]
fn f13_non_utf8_arguments_never_panic() {
    let dir = temp_dir("f13");
    tiny_model(&dir);
    let bad = OsStr::from_bytes(b"bad\xff.csv");
    std::fs::copy(dir.join("tiny.csv"), dir.join(bad)).unwrap();
    let s = |t: &'static str| OsStr::new(t);
    let cases: Vec<Vec<&OsStr>> = vec![
        vec![
            s("train"),
            s("--data"),
            bad,
            s("--epochs"),
            s("1"),
            s("--hidden"),
            s("4"),
            s("--no-save"),
        ],
        vec![
            s("train"),
            s("--data"),
            bad,
            s("--epochs"),
            s("1"),
            s("--hidden"),
            s("4"),
        ],
        vec![
            s("train"),
            s("--data"),
            s("tiny.csv"),
            s("--epochs"),
            s("1"),
            s("--hidden"),
            s("4"),
            s("--no-save"),
            s("--save"),
            OsStr::from_bytes(b"m\xff.safetensors"),
        ],
        vec![
            s("train"),
            s("--data"),
            s("tiny.csv"),
            s("--epochs"),
            s("1"),
            s("--hidden"),
            s("4"),
            s("--run-dir"),
            OsStr::from_bytes(b"r\xff"),
        ],
        vec![
            s("train"),
            s("--data"),
            s("tiny.csv"),
            s("--epochs"),
            s("1"),
            s("--hidden"),
            s("4"),
            s("--no-save"),
            s("--metrics-out"),
            OsStr::from_bytes(b"x\xff.json"),
        ],
        vec![s("train"), s("--resume"), OsStr::from_bytes(b"ck\xff")],
        vec![s("train"), s("--config"), OsStr::from_bytes(b"c\xff.toml")],
        vec![s("train"), s("--name"), OsStr::from_bytes(b"n\xff")],
        vec![
            s("predict"),
            s("--model"),
            s("m.safetensors"),
            s("--data"),
            bad,
        ],
        vec![
            s("evaluate"),
            s("--model"),
            OsStr::from_bytes(b"m\xff"),
            s("--data"),
            bad,
        ],
        vec![s("inspect"), s("--model"), OsStr::from_bytes(b"m\xff")],
        vec![s("plot"), OsStr::from_bytes(b"r\xff")],
        vec![
            s("compare"),
            OsStr::from_bytes(b"a\xff"),
            OsStr::from_bytes(b"b\xff"),
        ],
        vec![s("explain"), s("--model"), OsStr::from_bytes(b"m\xff")],
        vec![s("lr-find"), s("--data"), bad],
        vec![OsStr::from_bytes(b"\xff")],
    ];
    for args in cases {
        let out = run(&dir, &args);
        assert_ne!(
            out.status.code(),
            Some(101),
            "{args:?} panicked: {}",
            err(&out)
        );
        assert!(!err(&out).contains("panicked"), "{args:?}: {}", err(&out));
    }
    // Written where a UTF-8 name was not needed.
    assert!(dir.join(OsStr::from_bytes(b"m\xff.safetensors")).exists());
    let _ = std::fs::remove_dir_all(&dir);
}

// 14. Non-finite weights, preprocessing outside f32 and overlapping tensors are refused at load.
#[test]
fn f14_model_values_are_checked_at_load() {
    let dir = temp_dir("f14");
    let model = tiny_model(&dir);
    let bytes = std::fs::read(&model).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let begin = header["layers.0.weight"]["data_offsets"][0]
        .as_u64()
        .unwrap() as usize;
    let mut nan = bytes.clone();
    nan[8 + n + begin..8 + n + begin + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    std::fs::write(dir.join("nan.safetensors"), nan).unwrap();
    let out = nabla_in(
        &dir,
        &[
            "evaluate",
            "--model",
            "nan.safetensors",
            "--data",
            "tiny.csv",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));
    assert!(
        err(&out).contains("layers.0.weight") && err(&out).contains("NaN"),
        "{}",
        err(&out)
    );

    for (key, value) in [("scale", 1e-300), ("center", 1e300)] {
        std::fs::copy(&model, dir.join("pre.safetensors")).unwrap();
        edit_meta(&dir.join("pre.safetensors"), "preprocess", |p| {
            p[key][0] = value.into();
        });
        let out = nabla_in(
            &dir,
            &[
                "predict",
                "--model",
                "pre.safetensors",
                "--data",
                "tiny.csv",
            ],
        );
        assert_eq!(out.status.code(), Some(2), "{key}: {}", err(&out));
        assert!(err(&out).contains("f32"), "{}", err(&out));
    }

    std::fs::copy(&model, dir.join("overlap.safetensors")).unwrap();
    edit_header(&dir.join("overlap.safetensors"), |h| {
        let w = h["layers.0.bias"]["data_offsets"].clone();
        let len = w[1].as_u64().unwrap() - w[0].as_u64().unwrap();
        // layers.0.bias now reads the first bytes of layers.0.weight.
        let start = h["layers.0.weight"]["data_offsets"][0].as_u64().unwrap();
        h["layers.0.bias"]["data_offsets"] = serde_json::json!([start, start + len]);
    });
    let out = nabla_in(&dir, &["inspect", "--model", "overlap.safetensors"]);
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));
    assert!(err(&out).contains("overlap"), "{}", err(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

// 15. predict and evaluate refuse the values train refuses.
#[test]
fn f15_predict_and_evaluate_apply_trains_value_rules() {
    let dir = temp_dir("f15");
    tiny_model(&dir);
    for cell in ["inf", "-infinity", "1e39"] {
        std::fs::write(
            dir.join("new.csv"),
            format!("a,b,c,y\n{cell},1,0.5,p\n1,1,0.5,q\n"),
        )
        .unwrap();
        for cmd in ["predict", "evaluate"] {
            let out = nabla_in(
                &dir,
                &[cmd, "--model", "m.safetensors", "--data", "new.csv"],
            );
            assert_eq!(out.status.code(), Some(2), "{cmd} {cell}: {}", err(&out));
            assert!(
                err(&out).contains("finite") || err(&out).contains("f32"),
                "{}",
                err(&out)
            );
        }
        let out = nabla_in(
            &dir,
            &["train", "--data", "new.csv", "--epochs", "1", "--no-save"],
        );
        assert_eq!(out.status.code(), Some(2), "train {cell}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// 16. Resume trusts nothing: typed settings only, buffer sizes checked, the data fingerprinted.
#[test]
fn f16_resume_checks_buffers_and_data() {
    let dir = temp_dir("f16");
    tiny_csv(&dir, "tiny.csv", 60);
    let train = [
        "train",
        "--data",
        "tiny.csv",
        "--epochs",
        "3",
        "--hidden",
        "4",
        "--threads",
        "1",
        "--no-save",
        "--checkpoint-dir",
        "ck",
    ];
    ok(&nabla_in(&dir, &train));
    // Make epoch 2 the latest: a run stopped after it.
    std::fs::remove_file(dir.join("ck/epoch-00003.safetensors")).unwrap();
    let latest = dir.join("ck/epoch-00002.safetensors");
    let pristine = std::fs::read(&latest).unwrap();

    // Optimizer buffers that do not fit the network.
    edit_meta(&latest, "checkpoint", |c| {
        c["optimizer_buffers"] = 1.into();
    });
    let out = nabla_in(&dir, &["train", "--resume", "ck", "--no-save"]);
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));
    assert!(err(&out).contains("optimizer buffers"), "{}", err(&out));
    std::fs::write(&latest, &pristine).unwrap();

    // As many buffers as parameters, but two of them swapped: each of the wrong size.
    edit_header(&latest, |h| {
        let h = h.as_object_mut().unwrap();
        let a = h.remove("checkpoint.optimizer.0").unwrap();
        let b = h.remove("checkpoint.optimizer.1").unwrap();
        h.insert("checkpoint.optimizer.0".into(), b);
        h.insert("checkpoint.optimizer.1".into(), a);
    });
    let out = nabla_in(&dir, &["train", "--resume", "ck", "--no-save"]);
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));
    assert!(
        err(&out).contains("optimizer buffer 0 holds"),
        "{}",
        err(&out)
    );
    std::fs::write(&latest, &pristine).unwrap();

    // The data changed (labels permuted): refused unless the user says so.
    let text = std::fs::read_to_string(dir.join("tiny.csv")).unwrap();
    std::fs::write(
        dir.join("tiny.csv"),
        text.replace(",p\n", ",x\n")
            .replace(",q\n", ",p\n")
            .replace(",x\n", ",q\n"),
    )
    .unwrap();
    let out = nabla_in(&dir, &["train", "--resume", "ck", "--no-save"]);
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));
    assert!(err(&out).contains("data changed"), "{}", err(&out));
    let out = nabla_in(
        &dir,
        &[
            "train",
            "--resume",
            "ck",
            "--no-save",
            "--accept-changed-data",
        ],
    );
    ok(&out);

    // Flags other than outputs and --epochs do not change a resumed run; it says so.
    std::fs::write(&latest, &pristine).unwrap();
    std::fs::remove_file(dir.join("ck/epoch-00003.safetensors")).unwrap();
    let out = nabla_in(
        &dir,
        &[
            "train",
            "--resume",
            "ck",
            "--no-save",
            "--accept-changed-data",
            "--lr",
            "5",
        ],
    );
    ok(&out);
    assert!(err(&out).contains("ignored: --lr"), "{}", err(&out));
    let _ = std::fs::remove_dir_all(&dir);
}
