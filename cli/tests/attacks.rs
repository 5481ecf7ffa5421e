//! Issue 30's hostile inputs ("the attacks of this round"), one test per item, driven through
//! the binary. Each names the item it proves; every attack must end in a one-line error (exit 2
//! for bad input) or correct behaviour, with nothing clobbered and no model lost.

mod common;
use common::{err, nabla_in, ok, temp_dir, tiny_csv, tiny_model};

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn nabla() -> Command {
    Command::new(env!("CARGO_BIN_EXE_nabla"))
}

/// Asserts exit 2 with a one-line message containing `needle`.
fn refused(out: &Output, needle: &str) {
    let e = err(out);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(e.contains(needle), "expected {needle:?} in: {e}");
    assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
}

/// `train` on tiny.csv with `extra` flags (one epoch, 4 hidden units).
fn train(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
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
    args.extend(extra);
    nabla_in(dir, &args)
}

/// A run of 4294967295 epochs in `dir` with `extra` flags (killed by the test).
fn endless(dir: &Path, extra: &[&str]) -> Child {
    nabla()
        .current_dir(dir)
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
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, name: &str) {
    let s = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(s.success());
}

/// Waits until `ready()` (at most 60 s; the child is killed on failure).
fn wait_until(child: &mut Child, what: &str, ready: impl Fn() -> bool) {
    let start = Instant::now();
    while !ready() {
        let ended = child.try_wait().unwrap().is_some();
        if ended || start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} never happened (ended early: {ended})");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Ends an endless run with SIGTERM and returns its output.
fn stop(mut child: Child) -> Output {
    signal(&child, "TERM");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

fn is_model(path: &Path) -> bool {
    nabla::io::load(path).is_ok()
}

// 14. Outputs onto inputs or onto each other: refused before any work, through links too.
#[test]
fn i14_outputs_never_land_on_inputs_or_on_each_other() {
    let dir = temp_dir("i14");
    let model = tiny_model(&dir);
    std::os::unix::fs::symlink("m.safetensors", dir.join("link.safetensors")).unwrap();
    std::fs::hard_link(&model, dir.join("hard.safetensors")).unwrap();
    for out in ["m.safetensors", "link.safetensors", "hard.safetensors"] {
        let run = nabla_in(
            &dir,
            &[
                "export",
                "--model",
                "m.safetensors",
                "--format",
                "onnx",
                "--out",
                out,
            ],
        );
        refused(&run, "is an input of this command");
        assert!(is_model(&model), "export --out {out} clobbered the model");
    }
    let data = std::fs::read(dir.join("tiny.csv")).unwrap();
    let run = nabla_in(
        &dir,
        &["lr-find", "--data", "tiny.csv", "--metrics-out", "tiny.csv"],
    );
    refused(&run, "is an input of this command");
    assert_eq!(std::fs::read(dir.join("tiny.csv")).unwrap(), data);
    let cases: [&[&str]; 4] = [
        &["--no-save", "--save", "x", "--metrics-out", "x"],
        &["--run-dir", "r1", "--save", "r1/metrics.csv"],
        &["--run-dir", "r2", "--metrics-out", "r2/model.safetensors"],
        &[
            "--no-save",
            "--checkpoint-dir",
            "c",
            "--save",
            "c/epoch-00002.safetensors",
        ],
    ];
    for case in cases {
        let run = train(&dir, case);
        refused(&run, "would write");
    }
    // The run folder's own model is the --save target: allowed (the same model).
    std::fs::create_dir_all(dir.join("r3")).unwrap();
    ok(&train(
        &dir,
        &["--run-dir", "r3", "--save", "r3/model.safetensors"],
    ));
    assert!(is_model(&dir.join("r3/model.safetensors")));
    let _ = std::fs::remove_dir_all(&dir);
}

// 15. Files that are not ours are not replaced without --overwrite; a concurrent writer of the
//     same --save is refused.
#[test]
fn i15_files_of_another_kind_and_concurrent_writers_are_refused() {
    let dir = temp_dir("i15");
    let model = tiny_model(&dir);
    tiny_csv(&dir, "other.csv", 10);
    let csv = std::fs::read(dir.join("other.csv")).unwrap();
    refused(
        &train(&dir, &["--no-save", "--save", "other.csv"]),
        "is not a nabla model file",
    );
    assert_eq!(std::fs::read(dir.join("other.csv")).unwrap(), csv);
    refused(
        &train(&dir, &["--no-save", "--metrics-out", "m.safetensors"]),
        "is not a JSON file",
    );
    std::fs::copy(&model, dir.join("m2.safetensors")).unwrap();
    let run = nabla_in(
        &dir,
        &[
            "predict",
            "--model",
            "m.safetensors",
            "--data",
            "tiny.csv",
            "--out",
            "m2.safetensors",
        ],
    );
    refused(&run, "is not a predictions CSV");
    assert!(is_model(&dir.join("m2.safetensors")));
    // A model over a model, predictions over predictions: the normal case.
    ok(&train(&dir, &["--no-save", "--save", "m2.safetensors"]));
    // --overwrite says yes.
    ok(&train(
        &dir,
        &["--no-save", "--save", "other.csv", "--overwrite"],
    ));
    assert!(is_model(&dir.join("other.csv")));
    // Two runs with one --save: the second is refused while the first runs.
    let mut first = endless(&dir, &["--no-save", "--save", "shared.safetensors"]);
    let lock = dir.join(".shared.safetensors.nabla-lock");
    wait_until(&mut first, "the --save lock", || lock.exists());
    let second = train(&dir, &["--no-save", "--save", "shared.safetensors"]);
    refused(&second, "another nabla run");
    let out = stop(first);
    assert_eq!(out.status.code(), Some(143), "{}", err(&out));
    assert!(is_model(&dir.join("shared.safetensors")));
    assert!(!lock.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

// 21. A checkpoint folder is locked while a run writes into it.
#[test]
fn i21_checkpoint_folders_are_locked() {
    let dir = temp_dir("i21");
    tiny_csv(&dir, "tiny.csv", 60);
    let mut first = endless(
        &dir,
        &["--no-save", "--checkpoint-dir", "ck", "--seed", "1"],
    );
    let lock = dir.join("ck/.nabla-checkpoints.lock");
    let ck = dir.join("ck");
    wait_until(&mut first, "the lock and a checkpoint", || {
        lock.exists()
            && std::fs::read_dir(&ck).is_ok_and(|mut d| {
                d.any(|f| f.is_ok_and(|f| f.file_name().to_string_lossy().starts_with("epoch-")))
            })
    });
    let second = train(
        &dir,
        &["--no-save", "--checkpoint-dir", "ck", "--seed", "2"],
    );
    assert_eq!(second.status.code(), Some(2), "{}", err(&second));
    assert!(
        err(&second).contains("another nabla run") || err(&second).contains("another run"),
        "{}",
        err(&second)
    );
    let out = stop(first);
    assert_eq!(out.status.code(), Some(143), "{}", err(&out));
    assert!(!lock.exists());
    // Every checkpoint left is the first run's.
    let ids: std::collections::BTreeSet<String> = std::fs::read_dir(dir.join("ck"))
        .unwrap()
        .flatten()
        .filter_map(|e| nabla::train::checkpoint::run_id(&e.path()))
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    // A stale lock of a dead process, or of pid 1 (never a nabla run), is cleared.
    for (i, pid) in ["4194304", "1"].into_iter().enumerate() {
        let ck = format!("ck-stale{i}");
        std::fs::create_dir_all(dir.join(&ck)).unwrap();
        std::fs::write(dir.join(&ck).join(".nabla-checkpoints.lock"), pid).unwrap();
        ok(&train(&dir, &["--no-save", "--checkpoint-dir", &ck]));
    }
    // A lock that cannot be cleared says how to clear it.
    std::fs::write(&lock, std::process::id().to_string()).unwrap();
    let out = train(&dir, &["--no-save", "--checkpoint-dir", "ck"]);
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

fn mkfifo(path: &Path) {
    let s = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(s.success());
}

/// Runs nabla with `args` in `dir`, killed (and the test failed) after 20 s.
fn bounded(dir: &Path, args: &[&str]) -> Output {
    let mut child = nabla()
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("nabla {args:?} still running after 20 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

// 23. Devices, FIFOs and symlinks to them are refused as inputs before a byte is read.
#[test]
fn i23_inputs_must_be_regular_files() {
    let dir = temp_dir("i23");
    tiny_model(&dir);
    refused(
        &bounded(&dir, &["train", "--config", "/dev/zero"]),
        "character device",
    );
    refused(
        &bounded(
            &dir,
            &[
                "evaluate",
                "--model",
                "m.safetensors",
                "--data",
                "/dev/zero",
            ],
        ),
        "character device",
    );
    refused(
        &bounded(
            &dir,
            &["predict", "--model", "/dev/zero", "--data", "tiny.csv"],
        ),
        "character device",
    );
    // A checkpoint entry that is a symlink to /dev/zero, and one that is a FIFO.
    std::fs::create_dir_all(dir.join("ck1")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join("ck1/epoch-00009.safetensors")).unwrap();
    refused(
        &bounded(&dir, &["train", "--resume", "ck1", "--no-save"]),
        "character device",
    );
    std::fs::create_dir_all(dir.join("ck2")).unwrap();
    mkfifo(&dir.join("ck2/epoch-00001.safetensors"));
    refused(
        &bounded(&dir, &["train", "--resume", "ck2", "--no-save"]),
        "FIFO",
    );
    mkfifo(&dir.join("data.csv"));
    refused(
        &bounded(&dir, &["train", "--data", "data.csv", "--no-save"]),
        "data.csv",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// 24. A gzip bomb named .csv is refused by every command that reads data.
#[test]
fn i24_gzip_bombs_are_refused_by_every_command() {
    let dir = temp_dir("i24");
    tiny_model(&dir);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(b"a,b,c,y\n").unwrap();
    let row = b"1,2,3,p\n".repeat(1 << 17);
    // 80 MiB of rows in about 100 KB.
    for _ in 0..80 {
        gz.write_all(&row).unwrap();
    }
    std::fs::write(dir.join("bomb.csv"), gz.finish().unwrap()).unwrap();
    let commands: [&[&str]; 3] = [
        &["predict", "--model", "m.safetensors", "--data", "bomb.csv"],
        &["evaluate", "--model", "m.safetensors", "--data", "bomb.csv"],
        &["explain", "--model", "m.safetensors", "--data", "bomb.csv"],
    ];
    for args in commands {
        refused(&bounded(&dir, args), "decompression bomb");
    }
    refused(
        &bounded(&dir, &["train", "--data", "bomb.csv", "--no-save"]),
        "decompression bomb",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A CSV of `rows` rows, `features` numeric columns and a target of `classes` classes.
fn wide_csv(dir: &Path, name: &str, rows: usize, features: usize, classes: usize) {
    let mut s: String = (0..features).map(|j| format!("x{j},")).collect();
    s += "y\n";
    for i in 0..rows {
        let k = i % classes;
        for j in 0..features {
            s += &format!("{},", ((i * 31 + j * 17 + k) % 97) as f64 / 97.0);
        }
        s += &format!("c{k}\n");
    }
    std::fs::write(dir.join(name), s).unwrap();
}

// 20. A checkpoint that cannot be written (a full disk: a 200 KB tmpfs) never loses the model:
//     training goes on, every other output is written, the message names what failed.
//     Needs root to mount the tmpfs; elsewhere the test says so and passes.
#[test]
fn i20_a_failed_checkpoint_write_keeps_the_model() {
    let dir = temp_dir("i20");
    tiny_csv(&dir, "tiny.csv", 60);
    let full = dir.join("full");
    std::fs::create_dir_all(&full).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=200k", "tmpfs"])
        .arg(&full)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here (not root?)");
        return;
    }
    let out = nabla_in(
        &dir,
        &[
            "train",
            "--data",
            "tiny.csv",
            "--epochs",
            "3",
            "--hidden",
            "4096",
            "--threads",
            "1",
            "--checkpoint-dir",
            "full/ck",
            "--save",
            "m.safetensors",
            "--metrics-out",
            "m.json",
            "--name",
            "r",
        ],
    );
    let _ = Command::new("umount").arg(&full).status();
    let e = err(&out);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(e.contains("cannot write the checkpoint"), "{e}");
    assert!(e.contains("every other output was written"), "{e}");
    assert!(is_model(&dir.join("m.safetensors")), "{e}");
    assert!(is_model(&dir.join("runs/r/model.safetensors")), "{e}");
    let metrics = std::fs::read_to_string(dir.join("m.json")).unwrap();
    assert!(metrics.contains("\"status\": \"finished\""), "{metrics}");
    let _ = std::fs::remove_dir_all(&dir);
}

// 22. SIGHUP is handled like SIGTERM (exit 129, model saved, no stale lock); the model is saved
//     before the baselines, and a signal during them skips them and exits with its code.
#[test]
fn i22_hangups_and_signals_after_training_keep_the_model() {
    let dir = temp_dir("i22");
    tiny_csv(&dir, "tiny.csv", 60);
    let mut child = endless(
        &dir,
        &[
            "--name",
            "hup",
            "--save",
            "hup.safetensors",
            "--checkpoint-dir",
            "ck",
        ],
    );
    let ck = dir.join("ck");
    wait_until(&mut child, "a checkpoint", || {
        std::fs::read_dir(&ck).is_ok_and(|mut d| {
            d.any(|f| f.is_ok_and(|f| f.file_name().to_string_lossy().starts_with("epoch-")))
        })
    });
    signal(&child, "HUP");
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(129), "{}", err(&out));
    let model = nabla::io::load(dir.join("hup.safetensors")).unwrap();
    assert_eq!(model.training["status"], "interrupted");
    assert!(!dir.join("runs/hup/.nabla-run.lock").exists());
    assert!(!ck.join(".nabla-checkpoints.lock").exists());

    // 1,000 classes: the logistic baseline takes seconds; a TERM once the model is saved.
    wide_csv(&dir, "many.csv", 3000, 50, 1000);
    let mut child = nabla()
        .current_dir(&dir)
        .args([
            "train",
            "--data",
            "many.csv",
            "--epochs",
            "1",
            "--hidden",
            "4",
            "--threads",
            "1",
            "--no-save",
            "--save",
            "many.safetensors",
            "--metrics-out",
            "many.json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let saved = dir.join("many.safetensors");
    wait_until(&mut child, "the model saved before the baselines", || {
        saved.exists()
    });
    signal(&child, "TERM");
    let out = child.wait_with_output().unwrap();
    let e = err(&out);
    assert_eq!(out.status.code(), Some(143), "{e}");
    assert!(e.contains("the baselines were skipped"), "{e}");
    assert!(is_model(&saved));
    assert!(dir.join("many.json").exists(), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

// 26. Messages say what happened: no checkpoint promised before one exists, no plots listed
//     that were not drawn, no TensorBoard warning for a matrix not drawn, exit 2 for bad paths.
#[test]
fn i26_messages_say_what_happened() {
    let dir = temp_dir("i26");
    tiny_model(&dir);
    // An epoch long enough to interrupt: 100,000 rows at batch 1 through 256 × 256 units.
    tiny_csv(&dir, "big.csv", 100_000);
    let mut child = nabla()
        .current_dir(&dir)
        .args([
            "train",
            "--data",
            "big.csv",
            "--epochs",
            "2",
            "--batch-size",
            "1",
            "--hidden",
            "256,256",
            "--threads",
            "1",
            "--name",
            "early",
            "--checkpoint-dir",
            "ck3",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lock = dir.join("ck3/.nabla-checkpoints.lock");
    wait_until(&mut child, "the checkpoint lock", || lock.exists());
    // After the data is loaded and the handlers are installed, long before epoch 1 ends.
    std::thread::sleep(Duration::from_millis(1000));
    signal(&child, "INT");
    let out = child.wait_with_output().unwrap();
    let (e, o) = (err(&out), String::from_utf8_lossy(&out.stdout).into_owned());
    assert_eq!(out.status.code(), Some(130), "{e}");
    assert!(e.contains("before any checkpoint was written"), "{e}");
    assert!(!e.contains("--resume"), "{e}");
    assert!(!o.contains("plots ("), "{o}");
    assert!(!e.contains("TensorBoard"), "{e}");
    // 60 classes: no confusion matrix drawn, and no TensorBoard warning about it.
    wide_csv(&dir, "sixty.csv", 240, 3, 60);
    let out = nabla_in(
        &dir,
        &[
            "train",
            "--data",
            "sixty.csv",
            "--epochs",
            "1",
            "--name",
            "sixty",
        ],
    );
    ok(&out);
    assert!(!err(&out).contains("TensorBoard"), "{}", err(&out));
    // Bad paths are the user's error, said before any work.
    let export = nabla_in(
        &dir,
        &["export", "--model", "m.safetensors", "--out", "nope/x.onnx"],
    );
    refused(&export, "nope");
    refused(
        &nabla_in(&dir, &["train", "--resume", "tiny.csv"]),
        "is not a folder",
    );
    refused(
        &nabla_in(
            &dir,
            &["compare", "runs/sixty", "runs/sixty", "--out", "tiny.csv"],
        ),
        "not a folder",
    );
    let lr = nabla_in(
        &dir,
        &[
            "lr-find",
            "--data",
            "tiny.csv",
            "--metrics-out",
            "nope/sweep.json",
        ],
    );
    refused(&lr, "nope");
    assert!(lr.stdout.is_empty(), "the sweep ran first");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Rewrites the JSON inside a safetensors file's metadata entry `key` with `edit`.
fn edit_meta(path: &Path, key: &str, edit: impl FnOnce(&mut serde_json::Value)) {
    let bytes = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let entry = &mut header["__metadata__"][key];
    let mut v: serde_json::Value = serde_json::from_str(entry.as_str().unwrap()).unwrap();
    edit(&mut v);
    *entry = serde_json::Value::String(v.to_string());
    let h = serde_json::to_vec(&header).unwrap();
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&bytes[8 + n..]);
    std::fs::write(path, out).unwrap();
}

// 25. A checkpoint's stored settings are checked like flags: exit 2 naming the file and key.
#[test]
fn i25_checkpoint_settings_are_validated_like_flags() {
    let dir = temp_dir("i25");
    tiny_csv(&dir, "tiny.csv", 60);
    ok(&train(
        &dir,
        &["--no-save", "--epochs", "2", "--checkpoint-dir", "ck"],
    ));
    let latest = dir.join("ck/epoch-00002.safetensors");
    let pristine = std::fs::read(&latest).unwrap();
    for (key, value) in [
        ("lr", serde_json::json!(-1.0)),
        ("threads", serde_json::json!(1_000_000)),
    ] {
        std::fs::write(&latest, &pristine).unwrap();
        edit_meta(&latest, "checkpoint", |m| m["config"][key] = value.clone());
        let out = bounded(
            &dir,
            &["train", "--resume", "ck", "--epochs", "3", "--no-save"],
        );
        refused(&out, &format!("key '{key}'"));
        assert!(
            err(&out).contains("epoch-00002.safetensors"),
            "{}",
            err(&out)
        );
    }
    std::fs::write(&latest, &pristine).unwrap();
    ok(&nabla_in(
        &dir,
        &["train", "--resume", "ck", "--epochs", "3", "--no-save"],
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

// 19. What nabla writes it can read: a model whose header would pass the reader's 16 MiB limit
//     (2,000 classes with 5 KB names) is refused before training, not saved unreadable.
#[test]
fn i19_a_model_nabla_cannot_read_is_refused_before_training() {
    let dir = temp_dir("i19");
    let mut s = String::from("a,y\n");
    for i in 0..4000 {
        let class = i % 2000;
        s += &format!("{},{class:04}{}\n", i % 7, "n".repeat(5000));
    }
    std::fs::write(dir.join("long.csv"), s).unwrap();
    let out = bounded(
        &dir,
        &[
            "train",
            "--data",
            "long.csv",
            "--epochs",
            "1",
            "--hidden",
            "4",
            "--threads",
            "1",
            "--name",
            "long",
        ],
    );
    refused(&out, "refusing before training");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("epoch 1"));
    assert!(!dir.join("runs/long/model.safetensors").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

// 27. predict/evaluate schema: a class name with a comma is one quoted header field, predict
//     ignores the target column, a duplicate header name is refused, a stale lock names its
//     file, an ONNX file as --model is called what it is.
#[test]
fn i27_predict_schema_and_messages() {
    let dir = temp_dir("i27");
    let mut s = String::from("a,b,y\n");
    for i in 0..60 {
        let class = ["big, red", "small", "\"odd\""][i % 3];
        let quoted = format!("\"{}\"", class.replace('"', "\"\""));
        s += &format!("{},{},{quoted}\n", i % 3, (i * 7) % 5);
    }
    std::fs::write(dir.join("comma.csv"), s).unwrap();
    ok(&train(
        &dir,
        &[
            "--data",
            "comma.csv",
            "--no-save",
            "--save",
            "c.safetensors",
        ],
    ));
    let out = nabla_in(
        &dir,
        &["predict", "--model", "c.safetensors", "--data", "comma.csv"],
    );
    ok(&out);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let header = text.lines().next().unwrap();
    assert_eq!(
        header, "prediction,\"p_\"\"odd\"\"\",\"p_big, red\",p_small",
        "{header}"
    );
    // A target value that is no class: predict ignores the column.
    std::fs::write(dir.join("new.csv"), "a,b,y\n1,2,purple\n").unwrap();
    ok(&nabla_in(
        &dir,
        &["predict", "--model", "c.safetensors", "--data", "new.csv"],
    ));
    // A header naming a column twice is refused, as train refuses it.
    std::fs::write(dir.join("dup.csv"), "a,b,a\n1,2,3\n").unwrap();
    refused(
        &nabla_in(
            &dir,
            &["predict", "--model", "c.safetensors", "--data", "dup.csv"],
        ),
        "appears twice",
    );
    // An ONNX file given as a model.
    ok(&nabla_in(
        &dir,
        &["export", "--model", "c.safetensors", "--out", "c.onnx"],
    ));
    refused(
        &nabla_in(&dir, &["inspect", "--model", "c.onnx"]),
        "not a nabla model file",
    );
    // A lock that blocks a folder says how to clear it.
    std::fs::create_dir_all(dir.join("runs/busy")).unwrap();
    std::fs::write(
        dir.join("runs/busy/.nabla-run.lock"),
        std::process::id().to_string(),
    )
    .unwrap();
    let out = train(&dir, &["--data", "comma.csv", "--name", "busy"]);
    refused(&out, "remove that file");
    let _ = std::fs::remove_dir_all(&dir);
}

// 27. A model naming one class twice is refused at load (not ten `p_a` columns).
#[test]
fn i27_duplicate_class_names_in_a_model_are_refused() {
    let dir = temp_dir("i27dup");
    let model = tiny_model(&dir);
    edit_meta(&model, "spec", |spec| {
        spec["classes"] = serde_json::json!(["p", "p", "r"]);
    });
    edit_meta(&model, "preprocess", |pre| {
        pre["target"]["classes"] = serde_json::json!(["p", "p", "r"]);
    });
    for cmd in ["inspect", "predict"] {
        let mut args = vec![cmd, "--model", "m.safetensors"];
        if cmd == "predict" {
            args.extend(["--data", "tiny.csv"]);
        }
        refused(&nabla_in(&dir, &args), "named twice");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// 27. A category never seen in training is warned about once per column (the column, the value
// cut to 80 characters, the number of rows); the rows are still predicted and evaluated.
#[test]
fn i27_unseen_categories_are_warned_once_per_column() {
    let dir = temp_dir("i27unseen");
    let mut s = String::from("a,color,y\n");
    for i in 0..60 {
        let color = ["red", "blue"][i % 2];
        s += &format!("{},{color},{}\n", i % 5, ["p", "q"][i % 2]);
    }
    std::fs::write(dir.join("train.csv"), s).unwrap();
    ok(&train(
        &dir,
        &[
            "--data",
            "train.csv",
            "--no-save",
            "--save",
            "u.safetensors",
        ],
    ));
    let long = "g".repeat(500);
    std::fs::write(
        dir.join("new.csv"),
        format!("a,color,y\n1,{long},p\n2,red,q\n3,green,p\n"),
    )
    .unwrap();
    for cmd in ["predict", "evaluate"] {
        let out = nabla_in(
            &dir,
            &[cmd, "--model", "u.safetensors", "--data", "new.csv"],
        );
        ok(&out);
        let e = err(&out);
        let warned: Vec<&str> = e.lines().filter(|l| l.contains("never seen")).collect();
        assert_eq!(warned.len(), 1, "{cmd}: once per column: {e}");
        let w = warned[0];
        assert!(
            w.contains("\"color\"") && w.contains("2 rows"),
            "{cmd}: {w}"
        );
        assert!(w.contains(&format!("{}…", "g".repeat(80))), "{cmd}: {w}");
        assert!(!w.contains(&"g".repeat(81)), "{cmd}: cut to 80: {w}");
    }
    let out = nabla_in(
        &dir,
        &["predict", "--model", "u.safetensors", "--data", "new.csv"],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 4);
    let _ = std::fs::remove_dir_all(&dir);
}

// 27. One IDX label of 255 among 0s and 1s would make 256 classes: refused, naming the label,
// its count and its file.
#[test]
fn i27_sparse_idx_labels_are_refused() {
    let dir = temp_dir("i27idx");
    let files = [
        (
            "train-images-idx3-ubyte",
            common::idx(0x803, &[4, 2, 2], &[7; 16]),
        ),
        (
            "train-labels-idx1-ubyte",
            common::idx(0x801, &[4], &[0, 1, 255, 1]),
        ),
        (
            "t10k-images-idx3-ubyte",
            common::idx(0x803, &[2, 2, 2], &[9; 8]),
        ),
        ("t10k-labels-idx1-ubyte", common::idx(0x801, &[2], &[1, 0])),
    ];
    for (file, bytes) in files {
        std::fs::write(dir.join(file), bytes).unwrap();
    }
    let out = nabla_in(
        &dir,
        &["train", "--data", ".", "--epochs", "1", "--no-save"],
    );
    refused(&out, "label 255 (1 row) makes 256 classes");
    assert!(
        err(&out).contains("train-labels-idx1-ubyte"),
        "{}",
        err(&out)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

// 27. Nearly one class per row: the advice is that the target looks like an identifier or a
// regression target, not "add rows".
#[test]
fn i27_one_row_classes_are_not_told_to_add_rows() {
    let dir = temp_dir("i27ids");
    let mut s = String::from("a,b,id\n");
    for i in 0..200 {
        s += &format!("{},{},user{i}\n", i % 7, i % 3);
    }
    std::fs::write(dir.join("ids.csv"), s).unwrap();
    let out = train(&dir, &["--data", "ids.csv", "--no-save"]);
    refused(&out, "looks like an identifier or a regression target");
    assert!(!err(&out).contains("add rows"), "{}", err(&out));
    let _ = std::fs::remove_dir_all(&dir);
}

// 27. A huge class name is shown cut to 80 characters in warnings and errors.
#[test]
fn i27_long_class_names_are_cut_in_messages() {
    let dir = temp_dir("i27long");
    let long = "z".repeat(100_000);
    let mut s = String::from("a,b,y\n");
    for i in 0..60 {
        s += &format!("{},{},{}\n", i % 5, i % 3, ["p", "q"][i % 2]);
    }
    std::fs::write(dir.join("test.csv"), format!("{s}1,1,{long}\n")).unwrap();
    s += &format!("1,1,{long}\n");
    std::fs::write(dir.join("train.csv"), &s).unwrap();
    let cut = format!("\"{}…\"", "z".repeat(80));
    // A warning: the class with a single sample.
    let out = train(&dir, &["--data", "train.csv", "--no-save"]);
    ok(&out);
    assert!(err(&out).contains(&cut), "{}", err(&out));
    assert!(!err(&out).contains(&"z".repeat(81)), "cut to 80");
    // An error: a test class that training never saw.
    std::fs::write(dir.join("train2.csv"), s.replace(&long, "p")).unwrap();
    let out = train(
        &dir,
        &[
            "--data",
            "train2.csv",
            "--test-data",
            "test.csv",
            "--no-save",
        ],
    );
    refused(&out, &cut);
    assert!(!err(&out).contains(&"z".repeat(81)), "cut to 80");
    let _ = std::fs::remove_dir_all(&dir);
}
