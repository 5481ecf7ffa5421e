//! `mpirun -np N nabla train …` (a build with `--features mpi`): the model file and per-epoch
//! metrics are bit-identical to one process with the same seed for N = 1, 2, 4 and any thread
//! count; a rank that dies or hangs stops the run within seconds naming it; the last
//! checkpoint resumes with a different N to the same bits. Needs OpenMPI's `mpirun` (.ci/run
//! installs it); without the feature, a binary started under mpirun says how to build one.

mod common;
use common::temp_dir;

use std::path::Path;
use std::process::Command;

/// Built-in digits (1,437 training rows) in batches of 512: 8 micro-batches per full batch (2
/// per rank for 4 ranks) and a partial last batch of 413 rows; batch norm, dropout and a
/// validation split, so every piece of state crosses ranks.
fn flags(dir: &Path, tag: &str, threads: usize) -> Vec<String> {
    let mut f: Vec<String> = [
        "train",
        "--epochs",
        "4",
        "--batch-size",
        "512",
        "--hidden",
        "64,32",
        "--batch-norm",
        "--dropout",
        "0.1",
        "--val-split",
        "0.1",
        "--seed",
        "5",
        "--no-save",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let path = |name: &str| dir.join(name).display().to_string();
    f.extend(["--threads".into(), threads.to_string()]);
    f.extend(["--save".into(), path(&format!("{tag}.safetensors"))]);
    f.extend(["--metrics-out".into(), path(&format!("{tag}.json"))]);
    f
}

/// The runs under `mpirun` (a build with `--features mpi`).
#[cfg(feature = "mpi")]
mod ranks {
    use super::*;
    use std::process::{Output, Stdio};
    use std::time::{Duration, Instant};

    fn mpirun(ranks: usize, args: &[String]) -> Command {
        let mut c = Command::new("mpirun");
        c.args(["--oversubscribe", "-np", &ranks.to_string()])
            .arg(env!("CARGO_BIN_EXE_nabla"))
            .args(args)
            .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
            .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
            .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
            .env("OMPI_MCA_mpi_yield_when_idle", "1")
            .env("OMPI_MCA_rmaps_base_oversubscribe", "1");
        c
    }

    fn ok(out: Output, what: &str) -> String {
        assert!(
            out.status.success(),
            "{what}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The model's tensor bytes: the file after its JSON header, which holds the timings.
    fn tensors(path: &Path) -> Vec<u8> {
        let bytes = std::fs::read(path).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        bytes[8 + n..].to_vec()
    }

    /// The per-epoch metrics without the timings.
    fn epochs(path: &Path) -> Vec<serde_json::Value> {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        v["epochs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let mut e = e.clone();
                e.as_object_mut().unwrap().remove("seconds");
                e
            })
            .collect()
    }

    fn single(dir: &Path) -> (Vec<u8>, Vec<serde_json::Value>) {
        let out = Command::new(env!("CARGO_BIN_EXE_nabla"))
            .args(flags(dir, "single", 2))
            .current_dir(dir)
            .output()
            .unwrap();
        ok(out, "one process");
        (
            tensors(&dir.join("single.safetensors")),
            epochs(&dir.join("single.json")),
        )
    }

    #[test]
    fn one_two_and_four_ranks_train_the_one_process_bits() {
        let dir = temp_dir("ranks");
        let (weights, history) = single(&dir);
        let runs = [(1, 2), (2, 1), (2, 2), (4, 1)].into_iter();
        let both = runs.flat_map(|r| ["auto", "messages"].map(|how| (r, how)));
        for ((ranks, threads), how) in both.filter(|&((n, _), how)| n > 1 || how == "auto") {
            let tag = format!("np{ranks}t{threads}{how}");
            let mut args = flags(&dir, &tag, threads);
            args.extend(["--mpi-transport".into(), how.into()]);
            let out = mpirun(ranks, &args).current_dir(&dir).output().unwrap();
            let stdout = ok(out, &tag);
            if ranks > 1 {
                assert!(
                    stdout.contains(&format!("{ranks} MPI ranks × {threads} thread")),
                    "{stdout}"
                );
                // On one machine the ranks share memory unless told to use messages.
                let shared = stdout.contains("combined through shared memory");
                assert_eq!(shared, how == "auto", "{stdout}");
            }
            let file = dir.join(format!("{tag}.safetensors"));
            assert!(tensors(&file) == weights, "{tag}: the weights differ");
            assert_eq!(epochs(&dir.join(format!("{tag}.json"))), history, "{tag}");
            // Only rank 0 prints: one "done" line.
            assert_eq!(stdout.matches("done:").count(), 1, "{stdout}");
        }
    }

    /// Batches of 128 rows (2 micro-batches): one gradient term per rank with 2 ranks, none on
    /// ranks 2 and 3 of 4, so the gradient takes the direct reduce-scatter + all-gather (with
    /// `--mpi-transport messages`; overlapping backward, or after it with `--mpi-overlap off`)
    /// or the sharded step (shared memory).
    #[test]
    fn the_direct_reduction_trains_the_one_process_bits() {
        let dir = temp_dir("direct");
        let small = |tag: &str, threads: usize| {
            let mut f = flags(&dir, tag, threads);
            f.extend(["--batch-size".into(), "128".into()]);
            if tag.starts_with("direct") || tag.starts_with("after") {
                f.extend(["--mpi-transport".into(), "messages".into()]);
            }
            if tag.starts_with("after") {
                f.extend(["--mpi-overlap".into(), "off".into()]);
            }
            f
        };
        ok(
            Command::new(env!("CARGO_BIN_EXE_nabla"))
                .args(small("one", 2))
                .current_dir(&dir)
                .output()
                .unwrap(),
            "one process",
        );
        let weights = tensors(&dir.join("one.safetensors"));
        let history = epochs(&dir.join("one.json"));
        let kinds = [
            (2, "direct"),
            (4, "direct"),
            (2, "after"),
            (2, "shared"),
            (4, "shared"),
        ];
        for (ranks, kind) in kinds {
            let tag = format!("{kind}{ranks}");
            let out = mpirun(ranks, &small(&tag, 1))
                .current_dir(&dir)
                .output()
                .unwrap();
            ok(out, &tag);
            let file = dir.join(format!("{tag}.safetensors"));
            assert!(tensors(&file) == weights, "{tag}: the weights differ");
            assert_eq!(epochs(&dir.join(format!("{tag}.json"))), history, "{tag}");
        }
    }

    /// The pid of rank `rank` among the processes whose command line holds `marker`.
    fn rank_pid(marker: &str, rank: usize) -> Option<u32> {
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let env = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            if cmd.contains(marker)
                && !cmd.contains("mpirun")
                && String::from_utf8_lossy(&env).contains(&format!("OMPI_COMM_WORLD_RANK={rank}\0"))
            {
                return Some(pid);
            }
        }
        None
    }

    /// Starts `ranks` ranks checkpointing into `dir/ckpt`, waits for the first checkpoint, sends
    /// `signal` to rank 1 and returns how long the run took to end and what it printed.
    fn break_a_rank(dir: &Path, ranks: usize, signal: &str, extra: &[&str]) -> (Duration, String) {
        let mut args = flags(dir, "broken", 1);
        args.extend([
            "--checkpoint-dir".into(),
            dir.join("ckpt").display().to_string(),
        ]);
        args.extend([
            "--batch-size".into(),
            "128".into(),
            "--epochs".into(),
            "100".into(),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = mpirun(ranks, &args)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let marker = dir.join("broken.safetensors").display().to_string();
        let started = Instant::now();
        // A checkpoint file, not any entry: the folder also holds the run's lock from the start.
        let checkpoint = |d: std::fs::ReadDir| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".safetensors"))
        };
        while !std::fs::read_dir(dir.join("ckpt")).is_ok_and(checkpoint) {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "no checkpoint"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let pid = rank_pid(&marker, 1).expect("rank 1 is running");
        let hit = Instant::now();
        Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success());
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (hit.elapsed(), text)
    }

    #[test]
    fn a_dead_rank_stops_the_run_and_its_checkpoint_resumes_with_other_ranks() {
        let dir = temp_dir("dead");
        let (elapsed, text) = break_a_rank(&dir, 2, "-KILL", &[]);
        assert!(elapsed < Duration::from_secs(10), "{elapsed:?}: {text}");
        assert!(text.contains("rank 1"), "{text}");

        // The reference: the same 100 epochs in one process.
        let mut args = flags(&dir, "whole", 2);
        args.extend([
            "--batch-size".into(),
            "128".into(),
            "--epochs".into(),
            "100".into(),
        ]);
        ok(
            Command::new(env!("CARGO_BIN_EXE_nabla"))
                .args(&args)
                .output()
                .unwrap(),
            "whole",
        );
        let resumed = mpirun(
            4,
            &[
                "train".into(),
                "--resume".into(),
                dir.join("ckpt").display().to_string(),
            ],
        )
        .current_dir(&dir)
        .output()
        .unwrap();
        ok(resumed, "resume with 4 ranks");
        assert!(
            tensors(&dir.join("broken.safetensors")) == tensors(&dir.join("whole.safetensors")),
            "the resumed weights differ"
        );
    }

    #[test]
    fn ctrl_c_on_one_rank_stops_every_rank_after_the_same_step() {
        let dir = temp_dir("sigint");
        let (elapsed, text) = break_a_rank(&dir, 2, "-INT", &[]);
        assert!(elapsed < Duration::from_secs(10), "{elapsed:?}: {text}");
        // No rank waited for another (that would be a timeout naming a rank): all stopped
        // after the same step, and rank 0 saved the run as a single process does.
        assert!(!text.contains("did not"), "{text}");
        assert!(text.contains("interrupted after epoch"), "{text}");
        let metrics: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("broken.json")).unwrap()).unwrap();
        assert_eq!(metrics["status"], "interrupted", "{metrics}");
        assert!(dir.join("broken.safetensors").exists());
        // The checkpoint it left resumes in one process.
        let resumed = Command::new(env!("CARGO_BIN_EXE_nabla"))
            .args(["train", "--resume", &dir.join("ckpt").display().to_string()])
            .current_dir(&dir)
            .output()
            .unwrap();
        ok(resumed, "resume in one process");
        let metrics: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("broken.json")).unwrap()).unwrap();
        assert_eq!(metrics["status"], "finished", "{metrics}");
    }

    #[test]
    fn a_hung_rank_is_noticed_within_the_timeout() {
        let dir = temp_dir("hung");
        let (elapsed, text) = break_a_rank(&dir, 2, "-STOP", &["--mpi-timeout", "3"]);
        assert!(elapsed < Duration::from_secs(15), "{elapsed:?}: {text}");
        assert!(text.contains("rank 1 did not"), "{text}");
    }

    #[test]
    fn rank_zero_checks_the_outputs_before_anyone_loads_data() {
        let dir = temp_dir("preflight");
        let mut args = flags(&dir, "x", 1);
        args.extend(["--run-dir".into(), "/proc/forbidden/run".into()]);
        args.retain(|a| a != "--no-save");
        let started = Instant::now();
        let out = mpirun(2, &args).current_dir(&dir).output().unwrap();
        assert!(!out.status.success());
        assert!(started.elapsed() < Duration::from_secs(20));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("/proc/forbidden/run"), "{err}");
    }
}

#[cfg(not(feature = "mpi"))]
#[test]
fn a_build_without_mpi_says_how_to_get_one() {
    let dir = temp_dir("nompi");
    let out = Command::new(env!("CARGO_BIN_EXE_nabla"))
        .args(flags(&dir, "x", 1))
        .env("OMPI_COMM_WORLD_SIZE", "2")
        .env("OMPI_COMM_WORLD_RANK", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--features mpi"), "{err}");
}
