//! `nabla train --resume DIR`: continue the run whose checkpoints are in DIR with the typed
//! settings the checkpoint stores (never a command line), its optimizer state checked buffer by
//! buffer and its data checked against the fingerprint (size and hash) it was trained on.
//!
//! `--resume DIR --epochs N` with N beyond the finished epochs extends the run; a schedule is
//! then computed over the new total of N epochs from the resumed epoch on (a cosine schedule
//! continues along the longer curve; step, exponential and plateau schedules are unaffected).
//! Resuming a run that already finished says so and changes nothing. The output flags given
//! with `--resume` (`--save`, `--run-dir`, `--name`, `--metrics-out`, `--no-save`, `--quiet`,
//! `--verbose`) replace the stored ones; other flags are ignored with a warning.

use std::path::Path;

use anyhow::{Context, Result};
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory};

use nabla::NablaError;
use nabla::config::RunConfig;
use nabla::nn::{ModelSpec, Network};
use nabla::optim::Optimizer;
use nabla::train::FitState;
use nabla::train::checkpoint::{self, DataFingerprint, ModelCheckpoint, RunIdentity};

use super::train::TrainArgs;

/// Flags that may be given with --resume (the rest are the run's settings, taken from the
/// checkpoint).
const WITH_RESUME: [&str; 11] = [
    "resume",
    "epochs",
    "save",
    "run_dir",
    "name",
    "metrics_out",
    "no_save",
    "quiet",
    "verbose",
    "overwrite",
    "accept_changed_data",
];

/// The settings of the run whose checkpoints are in `dir`, and its latest checkpoint; `None`
/// when the run has finished already (said on standard error).
pub fn resumed(
    dir: &Path,
    args: &TrainArgs,
    matches: &ArgMatches,
) -> Result<Option<(RunConfig, ModelCheckpoint)>> {
    if !dir.is_dir() {
        let what = match dir.exists() {
            true => "is not a folder: --resume takes the --checkpoint-dir folder of a run",
            false => "no such folder: --resume takes the --checkpoint-dir folder of a run",
        };
        anyhow::bail!(NablaError::data(dir, "path", what));
    }
    let ckpt = checkpoint::load_latest(dir).context("reading the checkpoint")?;
    let Some(stored) = ckpt.config.clone() else {
        anyhow::bail!(NablaError::data(
            &ckpt.path,
            "__metadata__.checkpoint",
            "written by an older nabla: it holds the command line that started the run, not its settings, and a command line is never replayed; start the run again",
        ));
    };
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let command = super::Cli::command();
    // The stored settings pass the flags' own checks, as a config file's do.
    if let Some(train) = command.find_subcommand("train") {
        super::config::check_settings(train, &stored, &ckpt.path)?;
    }
    let ignored: Vec<String> = command
        .find_subcommand("train")
        .map(|train| {
            train
                .get_arguments()
                .map(|a| a.get_id().as_str().to_string())
                .filter(|id| given(id) && !WITH_RESUME.contains(&id.as_str()) && id != "config")
                .collect()
        })
        .unwrap_or_default();
    if !ignored.is_empty() || given("config") {
        eprintln!(
            "warning: --resume continues with the settings the run was started with; ignored: {}",
            ignored
                .iter()
                .map(|id| format!("--{}", id.replace('_', "-")))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut config = stored;
    // The checkpoints stay where they are: the folder resumed from.
    config.output.checkpoint_dir = Some(dir.to_path_buf());
    let flags = args.config().output;
    let out = &mut config.output;
    if given("save") {
        out.save = flags.save;
    }
    if given("metrics_out") {
        out.metrics_out = flags.metrics_out;
    }
    if given("run_dir") || given("name") || given("no_save") {
        (out.run_dir, out.name, out.no_save) = (flags.run_dir, flags.name, flags.no_save);
    }
    (out.quiet, out.verbose) = (flags.quiet || out.quiet, flags.verbose || out.verbose);
    let done = ckpt.state.epoch;
    if given("epochs") {
        config.epochs = args.epochs;
    }
    let epochs = config.epochs.unwrap_or(done);
    if done >= epochs || stopped_early(&config, &ckpt.state) {
        eprintln!(
            "the run in {} already finished ({done} of {epochs} epochs{}); nothing to do. Extend it with --resume {} --epochs N (N > {done})",
            dir.display(),
            if done < epochs { ", stopped early" } else { "" },
            dir.display()
        );
        return Ok(None);
    }
    eprintln!(
        "resuming from {} (epoch {done} done, {epochs} in all)",
        ckpt.path.display()
    );
    Ok(Some((config, ckpt)))
}

/// Whether early stopping ended the run at the checkpoint's epoch.
fn stopped_early(config: &RunConfig, state: &FitState) -> bool {
    match (config.early_stopping, &state.best) {
        (Some(patience), Some((_, best, _))) => state.epoch - best >= patience,
        _ => false,
    }
}

/// A new run's checkpoint folder must not hold another run's checkpoints.
pub fn fresh_checkpoint_dir(dir: &Path) -> Result<()> {
    let Ok(files) = checkpoint::files(dir) else {
        return Ok(());
    };
    if let Some(first) = files.first() {
        anyhow::bail!(NablaError::data(
            dir,
            "--checkpoint-dir",
            format!(
                "holds checkpoints of another run ({}); continue that run with --resume {}, or give this run a folder of its own",
                first
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                dir.display()
            ),
        ));
    }
    Ok(())
}

/// Puts the checkpoint's network and optimizer state in place after checking them against the
/// network the settings build, the optimizer, and the data. Returns the run's identity (kept:
/// its checkpoints stay its own) and the state to continue from.
pub fn restore(
    ckpt: ModelCheckpoint,
    (spec, data, accept_changed): (&ModelSpec, &DataFingerprint, bool),
    model: &mut Network,
    optimizer: &mut Optimizer,
) -> Result<(RunIdentity, FitState)> {
    let path = ckpt.path.clone();
    let bad = |m: String| NablaError::data(&path, "__metadata__.checkpoint", m);
    if ckpt.model.spec() != spec {
        anyhow::bail!(NablaError::data(
            &path,
            "__metadata__.spec",
            "the checkpoint's network differs from the one its settings build (different data?)"
        ));
    }
    let mut identity = ckpt.checkpoint.identity.clone();
    match &identity.data {
        Some(saved) if saved != data && !accept_changed => anyhow::bail!(bad(format!(
            "the data changed since the checkpoint (then {} bytes, hash {}; now {} bytes, hash {}); resume with --accept-changed-data to continue anyway",
            saved.size, saved.hash, data.size, data.hash
        ))),
        Some(_) => {}
        None => eprintln!(
            "warning: the checkpoint predates data fingerprints; the data cannot be checked"
        ),
    }
    identity.data = Some(data.clone());
    optimizer
        .check_state(&ckpt.checkpoint.optimizer, ckpt.model.params().tensors())
        .map_err(bad)?;
    *model = ckpt.model;
    optimizer.set_state(ckpt.checkpoint.optimizer);
    Ok((identity, ckpt.checkpoint.state))
}
