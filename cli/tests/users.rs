//! Issue 30, the bugs a user hits in the first hour: the interrupted run's advice that works as
//! printed, per-iteration warm-up, `--limit-train` that means N, a verdict that waits for a
//! curve, run folders for export, a quiet `--quiet`, and models a user's modules make.

mod common;
use common::{nabla_in, temp_dir};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nabla");

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data")
        .join(name)
}

fn err(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn out(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn spawn(dir: &Path, args: &[&str]) -> Child {
    Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn interrupt(child: &Child) {
    let s = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(s.success());
}

/// The highest epoch number among `dir`'s checkpoints.
fn latest_checkpoint(dir: &Path) -> u32 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.strip_prefix("epoch-")?
                        .strip_suffix(".safetensors")?
                        .parse()
                        .ok()
                })
                .max()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// Waits until `dir` holds a checkpoint of an epoch after `after`.
fn wait_for_checkpoint(dir: &Path, after: u32, child: &mut Child) {
    let start = Instant::now();
    while latest_checkpoint(dir) <= after {
        let ended = child.try_wait().unwrap().is_some();
        if ended || start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
            }
            panic!("no checkpoint after epoch {after}: {stderr}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

// 1. The advice printed after Ctrl-C works as printed: the resumed run writes into its own
// folder without --overwrite.
#[test]
fn the_resume_advice_after_ctrl_c_works_as_printed() {
    let dir = temp_dir("resume-advice");
    let digits = data("digits.csv");
    let mut child = spawn(
        &dir,
        &[
            "train",
            "--data",
            digits.to_str().unwrap(),
            "--epochs",
            "100000",
            "--hidden",
            "8",
            "--threads",
            "1",
            "--name",
            "x",
            "--checkpoint-dir",
            "ck",
        ],
    );
    wait_for_checkpoint(&dir.join("ck"), 1, &mut child);
    interrupt(&child);
    let first = child.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(130), "{}", err(&first));
    let advice = err(&first)
        .lines()
        .find_map(|l| l.split("continue with ").nth(1).map(str::to_string))
        .unwrap_or_else(|| panic!("no advice: {}", err(&first)));
    let args: Vec<&str> = advice.split_whitespace().collect();
    assert_eq!(args[..2], ["nabla", "train"], "{advice}");
    let done = latest_checkpoint(&dir.join("ck"));
    let mut child = spawn(&dir, &args[1..]);
    wait_for_checkpoint(&dir.join("ck"), done, &mut child);
    interrupt(&child);
    let second = child.wait_with_output().unwrap();
    assert_eq!(second.status.code(), Some(130), "{}", err(&second));
    assert!(err(&second).contains("resuming from"), "{}", err(&second));
    let history = std::fs::read_to_string(dir.join("runs/x/history.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&history).unwrap();
    let epochs = json["epochs"].as_array().map_or(0, Vec::len) as u32;
    assert!(epochs > done, "{epochs} epochs after resuming at {done}");
    // Another run's folder is still refused.
    let out = nabla_in(
        &dir,
        &[
            "train",
            "--data",
            digits.to_str().unwrap(),
            "--epochs",
            "1",
            "--name",
            "x",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", err(&out));
    assert!(err(&out).contains("already holds a run"), "{}", err(&out));
}

/// `nabla train ARGS --metrics-out m.json` in `dir`: the metrics JSON.
fn metrics(dir: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["--metrics-out", "m.json", "--no-save"]);
    let out = nabla_in(dir, &all);
    assert!(out.status.success(), "{}", err(&out));
    serde_json::from_str(&std::fs::read_to_string(dir.join("m.json")).unwrap()).unwrap()
}

// 2. `--warmup 1` warms up over epoch 1's iterations: epoch 1 trains at lower rates than without
// it, and ends at the base rate.
#[test]
fn one_warm_up_epoch_changes_the_first_epoch() {
    let dir = temp_dir("warmup");
    let iris = data("iris.csv");
    let args = [
        "train",
        "--data",
        iris.to_str().unwrap(),
        "--epochs",
        "1",
        "--hidden",
        "8",
        "--lr",
        "0.01",
    ];
    let plain = metrics(&dir, &args);
    let mut warm_args = args.to_vec();
    warm_args.extend(["--warmup", "1"]);
    let warm = metrics(&dir, &warm_args);
    let epoch = |m: &serde_json::Value, key: &str| m["epochs"][0][key].as_f64().unwrap();
    assert_ne!(
        epoch(&plain, "train_loss"),
        epoch(&warm, "train_loss"),
        "--warmup 1 trained epoch 1 exactly as without it"
    );
    // The smaller rates of the warm-up learn less in the first epoch.
    assert!(epoch(&warm, "train_loss") > epoch(&plain, "train_loss"));
    assert_eq!(epoch(&warm, "learning_rate"), 0.01);
}

// 3. `--limit-train N` keeps exactly N rows, and the validation split is carved from them.
#[test]
fn limit_train_keeps_exactly_n_rows_and_validation_comes_from_them() {
    let dir = temp_dir("limit");
    let digits = data("digits.csv");
    let base = ["train", "--data", digits.to_str().unwrap(), "--epochs", "1"];
    for n in [500u64, 999, 1000] {
        let mut args = base.to_vec();
        let n_text = n.to_string();
        args.extend(["--limit-train", &n_text, "--val-split", "0"]);
        let m = metrics(&dir, &args);
        assert_eq!(
            m["train_samples"].as_u64(),
            Some(n),
            "{n}: {}",
            m["train_samples"]
        );
    }
    let mut args = base.to_vec();
    args.extend(["--limit-train", "500", "--val-split", "0.1"]);
    let m = metrics(&dir, &args);
    assert_eq!(m["train_samples"].as_u64(), Some(450), "{m}");
    assert_eq!(m["val_samples"].as_u64(), Some(50), "{m}");
}

// 4. One epoch is no curve: the verdict says so, and what to run.
#[test]
fn after_one_epoch_the_verdict_waits_for_a_curve() {
    let dir = temp_dir("one-epoch");
    let houses = data("houses.csv");
    let args = [
        "train",
        "--data",
        houses.to_str().unwrap(),
        "--impute",
        "mean",
        "--epochs",
        "1",
        "--no-save",
    ];
    let run = nabla_in(&dir, &args);
    assert!(run.status.success(), "{}", err(&run));
    let line = out(&run)
        .lines()
        .find(|l| l.starts_with("diagnosis:"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no diagnosis:\n{}", out(&run)));
    assert!(!line.contains("good"), "{line}");
    assert!(
        line.contains("too little history") && line.contains("--epochs"),
        "{line}"
    );
    let m = metrics(&dir, &args[..args.len() - 1]);
    assert_eq!(m["diagnosis"]["verdict"], "undecided", "{}", m["diagnosis"]);
}

// 5. `export --model RUN_FOLDER` exports the folder's model, as every other command reads it.
#[test]
fn export_takes_a_run_folder() {
    let dir = temp_dir("export-folder");
    let iris = data("iris.csv");
    let run = nabla_in(
        &dir,
        &[
            "train",
            "--data",
            iris.to_str().unwrap(),
            "--epochs",
            "2",
            "--hidden",
            "8",
            "--name",
            "r",
        ],
    );
    assert!(run.status.success(), "{}", err(&run));
    let export = nabla_in(
        &dir,
        &[
            "export", "--model", "runs/r", "--format", "onnx", "--out", "r.onnx",
        ],
    );
    assert!(export.status.success(), "{}", err(&export));
    assert!(std::fs::metadata(dir.join("r.onnx")).unwrap().len() > 100);
    // A folder without a model is the user's error, named.
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    let export = nabla_in(&dir, &["export", "--model", "empty", "--out", "e.onnx"]);
    assert_eq!(export.status.code(), Some(2), "{}", err(&export));
    assert!(
        err(&export).contains("model.safetensors"),
        "{}",
        err(&export)
    );
}

// 6. `--quiet` prints the final line only (errors and warnings go to standard error).
#[test]
fn quiet_prints_the_final_line_only() {
    let dir = temp_dir("quiet");
    let iris = data("iris.csv");
    let run = nabla_in(
        &dir,
        &[
            "train",
            "--data",
            iris.to_str().unwrap(),
            "--epochs",
            "3",
            "--hidden",
            "8",
            "--quiet",
            "--name",
            "q",
            "--save",
            "q.safetensors",
        ],
    );
    assert!(run.status.success(), "{}", err(&run));
    let stdout = out(&run);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert!(lines[0].starts_with("done: test accuracy"), "{stdout}");
    assert!(dir.join("runs/q/model.safetensors").exists() && dir.join("q.safetensors").exists());
    // An error still says why.
    let bad = nabla_in(&dir, &["train", "--data", "missing.csv", "--quiet"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(err(&bad).contains("missing.csv"), "{}", err(&bad));
}

/// The `nabla train` command of README.md's block that contains `marker`, as words (double
/// quotes group).
fn readme_command(marker: &str) -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("nabla train") && l.contains(marker))
        .unwrap_or_else(|| panic!("README.md has no `nabla train ... {marker}` line"));
    line.split('"')
        .enumerate()
        .flat_map(|(i, part)| match i % 2 {
            1 => vec![part.to_string()],
            _ => part.split_whitespace().map(str::to_string).collect(),
        })
        .collect()
}

/// `(network, linear baseline)` test accuracy from a run's `baselines (accuracy, ...)` line.
fn network_and_linear(stdout: &str) -> (f64, f64) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("baselines (accuracy"))
        .unwrap_or_else(|| panic!("no baselines line:\n{stdout}"));
    let after = |word: &str| -> f64 {
        let rest = &line[line.find(word).unwrap() + word.len()..];
        rest.trim_start()
            .split(|c: char| c == ';' || c == ',' || c.is_whitespace())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (after("network"), after("linear"))
}

// 7. The README's `--augment` example trains a good model: at least the linear baseline.
#[test]
fn the_readme_augment_example_beats_the_linear_baseline() {
    let dir = temp_dir("readme-augment");
    let words = readme_command("--augment");
    assert!(!words.iter().any(|w| w.contains("../shared")), "{words:?}");
    let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    let run = nabla_in(&dir, &args);
    assert!(run.status.success(), "{}", err(&run));
    let (network, linear) = network_and_linear(&out(&run));
    assert!(
        network >= 0.95 && network >= linear,
        "{words:?}: test accuracy {network}, linear baseline {linear}\n{}",
        out(&run)
    );
}

// 8. The README says what mpirun needs on a small machine and how long the first build takes.
#[test]
fn the_readme_says_what_mpirun_needs_and_how_long_the_first_build_takes() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    // The paragraph (list item) holding the mpirun command.
    let item = readme
        .split("\n- ")
        .find(|p| p.contains("mpirun -np 4"))
        .expect("README.md has the mpirun command");
    assert!(
        item.contains("--oversubscribe") && item.contains("--allow-run-as-root"),
        "{item}"
    );
    let setup = readme
        .split("\n## ")
        .find(|s| s.starts_with("Set up"))
        .expect("README.md has a set-up section");
    assert!(
        setup.contains("first build") && setup.contains("minutes"),
        "{setup}"
    );
}

/// A user's module: `y = x + relu(W·x + b)` after a linear layer.
struct Residual {
    input: nabla::nn::Linear,
    inner: nabla::nn::Linear,
}

impl nabla::nn::Module for Residual {
    fn forward(
        &self,
        tape: &mut nabla::Tape,
        x: nabla::Var,
        ctx: &mut nabla::nn::Ctx,
    ) -> Result<nabla::Var, nabla::NablaError> {
        let h = self.input.forward(tape, x, ctx)?;
        let z = self.inner.forward(tape, h, ctx)?;
        let a = tape.relu(z);
        tape.add(h, a)
    }
}

// 12. A state file of a user's modules: every command that reads models names the module and
// says what to do, instead of a format message.
#[test]
fn a_state_file_of_user_modules_is_refused_with_the_module_named() {
    use nabla::nn::{Init, Linear, Network};
    let dir = temp_dir("state-file");
    let net = Network::build(4, 3, 1, |b| {
        Ok(Residual {
            input: Linear::new(&mut b.pp("input"), 4, 3, Init::HeNormal),
            inner: Linear::new(&mut b.pp("inner"), 3, 3, Init::HeNormal),
        })
    })
    .unwrap();
    let state = dir.join("residual.safetensors");
    nabla::io::save_state(&state, &net).unwrap();
    let iris = data("iris.csv");
    let iris = iris.to_str().unwrap();
    let model = state.to_str().unwrap();
    for args in [
        vec!["inspect", "--model", model],
        vec!["predict", "--model", model, "--data", iris],
        vec!["evaluate", "--model", model, "--data", iris],
        vec!["export", "--model", model, "--out", "r.onnx"],
    ] {
        let run = nabla_in(&dir, &args);
        let e = err(&run);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {e}");
        assert!(
            e.contains("Residual"),
            "{args:?} does not name the module: {e}"
        );
        assert!(
            e.contains("load_state") && e.contains("save_network"),
            "{args:?} does not say what to do: {e}"
        );
        assert_eq!(e.trim().lines().count(), 1, "{e}");
    }
    assert!(!dir.join("r.onnx").exists());
}
