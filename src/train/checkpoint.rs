//! Checkpoints: after each epoch, one model file (loadable by `nabla predict` like any other)
//! holding, beside the network, the optimizer's state, the best epoch's weights and, in the
//! `checkpoint` metadata entry, the epoch, the step counter, the schedule's state, the history
//! and the command line that started the run. Written atomically as
//! `DIR/epoch-NNNNN.safetensors`; the newest few and the best are kept.
//!
//! Restoring these is enough for an exact resume: shuffles are per-epoch streams of the seed and
//! dropout masks are named by the step counter (see [`crate::train::Trainer::resume`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::Preprocess;
use crate::error::NablaError;
use crate::io::model_file::{self, EXTRA_PREFIX, Extras};
use crate::nn::{RunningStats, Sequential};
use crate::optim::OptimizerState;
use crate::train::{EpochMetrics, FitState};

/// Checkpoints kept besides the best one.
pub const KEEP: usize = 3;

#[derive(Serialize, Deserialize)]
struct Meta {
    epoch: usize,
    steps: u64,
    history: Vec<EpochMetrics>,
    /// (monitored loss as f64 bits, epoch) of the best epoch, when the run keeps it.
    best: Option<(u64, usize)>,
    /// Plateau schedule: (rate bits, best loss bits, epochs without improvement).
    scheduler: (u64, u64, usize),
    optimizer_counter: u64,
    optimizer_buffers: usize,
    argv: Vec<String>,
}

/// A checkpoint read back: what [`crate::train::Trainer::resume`] needs to continue.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    /// The file it came from.
    pub path: PathBuf,
    /// The run's state after its last completed epoch.
    pub state: FitState,
    /// The network at that moment.
    pub model: Sequential,
    /// The optimizer's state at that moment.
    pub optimizer: OptimizerState,
    /// The command line that started the run.
    pub argv: Vec<String>,
}

fn file_name(epoch: usize) -> String {
    format!("epoch-{epoch:05}.safetensors")
}

fn epoch_of(path: &Path) -> Option<usize> {
    let name = path.file_name()?.to_str()?;
    name.strip_prefix("epoch-")?
        .strip_suffix(".safetensors")?
        .parse()
        .ok()
}

fn running_tensors(prefix: &str, running: &[RunningStats], extras: &mut Extras) {
    for (j, r) in running.iter().enumerate() {
        extras.tensors.insert(
            format!("{prefix}{j}.mean"),
            (vec![r.mean.len()], r.mean.clone()),
        );
        extras.tensors.insert(
            format!("{prefix}{j}.var"),
            (vec![r.var.len()], r.var.clone()),
        );
    }
}

/// Saves the state after an epoch into `dir` (created if needed), atomically, then deletes all
/// but the newest [`KEEP`] checkpoints and the best one. Returns the file written.
pub fn save(
    dir: &Path,
    state: &FitState,
    model: &Sequential,
    optimizer: &OptimizerState,
    preprocess: &Preprocess,
    argv: &[String],
) -> Result<PathBuf, NablaError> {
    std::fs::create_dir_all(dir).map_err(|e| NablaError::io(dir, e))?;
    let mut extras = Extras::default();
    for (k, b) in optimizer.buffers.iter().enumerate() {
        extras.tensors.insert(
            format!("{EXTRA_PREFIX}optimizer.{k}"),
            (vec![b.len()], b.clone()),
        );
    }
    if let Some((_, _, best)) = &state.best {
        for (name, t) in best.params().iter() {
            extras.tensors.insert(
                format!("{EXTRA_PREFIX}best.{name}"),
                (vec![t.len()], t.data().to_vec()),
            );
        }
        running_tensors(
            &format!("{EXTRA_PREFIX}best_running."),
            best.running_stats(),
            &mut extras,
        );
    }
    let meta = Meta {
        epoch: state.epoch,
        steps: state.steps,
        history: state.history.clone(),
        best: state.best.as_ref().map(|(l, e, _)| (l.to_bits(), *e)),
        scheduler: (
            state.scheduler.0.to_bits(),
            state.scheduler.1.to_bits(),
            state.scheduler.2,
        ),
        optimizer_counter: optimizer.counter,
        optimizer_buffers: optimizer.buffers.len(),
        argv: argv.to_vec(),
    };
    let json = serde_json::to_string(&meta)
        .map_err(|e| NablaError::Usage(format!("cannot encode the checkpoint: {e}")))?;
    extras.metadata.insert("checkpoint".into(), json);
    let training = serde_json::json!({ "checkpoint_epoch": state.epoch, "argv": argv });
    let bytes = model_file::encode_with(model, preprocess, &training, &extras)?;
    let path = dir.join(file_name(state.epoch));
    model_file::write_atomic(&path, &bytes)?;

    // Keep the newest few and the best.
    let best_epoch = state.best.as_ref().map(|(_, e, _)| *e).or_else(|| {
        state
            .history
            .iter()
            .min_by(|a, b| {
                a.val_loss
                    .unwrap_or(a.test_loss)
                    .total_cmp(&b.val_loss.unwrap_or(b.test_loss))
            })
            .map(|m| m.epoch)
    });
    let mut epochs = list(dir)?;
    epochs.sort_unstable();
    let n = epochs.len();
    for (i, e) in epochs.into_iter().enumerate() {
        if i + KEEP < n && Some(e) != best_epoch {
            let _ = std::fs::remove_file(dir.join(file_name(e)));
        }
    }
    Ok(path)
}

fn list(dir: &Path) -> Result<Vec<usize>, NablaError> {
    let entries = std::fs::read_dir(dir).map_err(|e| NablaError::io(dir, e))?;
    Ok(entries
        .filter_map(|e| e.ok())
        .filter_map(|e| epoch_of(&e.path()))
        .collect())
}

/// Reads the latest checkpoint in `dir`.
pub fn load_latest(dir: &Path) -> Result<Checkpoint, NablaError> {
    let latest = list(dir)?.into_iter().max().ok_or_else(|| {
        NablaError::data(
            dir,
            "folder",
            "no checkpoint (epoch-NNNNN.safetensors) to resume from",
        )
    })?;
    load(&dir.join(file_name(latest)))
}

/// Reads one checkpoint file.
pub fn load(path: &Path) -> Result<Checkpoint, NablaError> {
    let bytes = std::fs::read(path).map_err(|e| NablaError::io(path, e))?;
    let (file, mut extras) = model_file::decode_with(path, &bytes)?;
    let bad = |m: String| NablaError::data(path, "__metadata__.checkpoint", m);
    let text = extras
        .metadata
        .get("checkpoint")
        .ok_or_else(|| bad("missing: a model file, not a checkpoint".into()))?;
    let meta: Meta = serde_json::from_str(text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let mut take = |name: String| {
        extras
            .tensors
            .remove(&name)
            .map(|(_, v)| v)
            .ok_or_else(|| NablaError::data(path, "tensors", format!("{name} is missing")))
    };
    let buffers = (0..meta.optimizer_buffers)
        .map(|k| take(format!("{EXTRA_PREFIX}optimizer.{k}")))
        .collect::<Result<Vec<_>, _>>()?;
    let best = match meta.best {
        Some((bits, epoch)) => {
            let mut net = file.network.clone();
            let ids: Vec<_> = net.params().ids().collect();
            for id in ids {
                let name = format!("{EXTRA_PREFIX}best.{}", net.params().name(id));
                let v = take(name.clone())?;
                let t = net.params_mut().get_mut(id);
                if t.len() != v.len() {
                    return Err(NablaError::data(
                        path,
                        "tensors",
                        format!("{name}: wrong size"),
                    ));
                }
                t.data_mut().copy_from_slice(&v);
            }
            let running = (0..net.running_stats().len())
                .map(|j| {
                    Ok(RunningStats {
                        mean: take(format!("{EXTRA_PREFIX}best_running.{j}.mean"))?,
                        var: take(format!("{EXTRA_PREFIX}best_running.{j}.var"))?,
                    })
                })
                .collect::<Result<Vec<_>, NablaError>>()?;
            net.set_running_stats(running)?;
            Some((f64::from_bits(bits), epoch, net))
        }
        None => None,
    };
    Ok(Checkpoint {
        path: path.to_path_buf(),
        state: FitState {
            epoch: meta.epoch,
            steps: meta.steps,
            history: meta.history,
            best,
            scheduler: (
                f64::from_bits(meta.scheduler.0),
                f64::from_bits(meta.scheduler.1),
                meta.scheduler.2,
            ),
        },
        model: file.network,
        optimizer: OptimizerState {
            buffers,
            counter: meta.optimizer_counter,
        },
        argv: meta.argv,
    })
}
