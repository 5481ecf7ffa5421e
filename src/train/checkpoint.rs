//! Checkpoints: after each epoch, one safetensors file holding the network's tensors by name
//! (for a [`Sequential`] network with its spec and preprocessing, a model file loadable by
//! `nabla predict` like any other) and, beside them, the optimizer's state, the best epoch's weights and, in the
//! `checkpoint` metadata entry, the epoch, the step counter, the schedule's state, the history
//! and the run's resolved [`RunConfig`]. Written atomically as
//! `DIR/epoch-NNNNN.safetensors`; the newest few and the best are kept.
//!
//! Restoring these is enough for an exact resume: shuffles are per-epoch streams of the seed and
//! dropout masks are named by the step counter (see [`crate::train::Trainer::resume`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::data::Preprocess;
use crate::error::NablaError;
use crate::io::model_file::{self, EXTRA_PREFIX, Extras};
use crate::nn::{Dtype, Module, Network, Sequential, Snapshot};
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
    /// The run's settings (checkpoints written before it existed have `argv` instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    config: Option<RunConfig>,
    /// The command line that started the run: only in checkpoints from before `config`.
    /// Never used to drive a run (such checkpoints are refused by the CLI).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    argv: Vec<String>,
    /// The run this checkpoint belongs to (absent in checkpoints written before run ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    run_id: Option<String>,
    /// The data the run trains on, when the writer gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<DataFingerprint>,
}

/// Which run a checkpoint belongs to, and the data it trained on: pruning touches only the
/// run's own checkpoints, and a resume can tell when the data changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunIdentity {
    /// A unique id of the run (see [`RunIdentity::new`]); empty for anonymous writers.
    pub id: String,
    /// The data's fingerprint, when known.
    pub data: Option<DataFingerprint>,
}

impl RunIdentity {
    /// A fresh run id (time and process id) with the data's fingerprint.
    pub fn new(data: Option<DataFingerprint>) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        Self {
            id: format!("{nanos:x}-{:x}", std::process::id()),
            data,
        }
    }
}

/// The size and a hash (64-bit FNV-1a, hex) of a run's data files, in the order given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFingerprint {
    /// Total bytes.
    pub size: u64,
    /// FNV-1a of every byte, file after file.
    pub hash: String,
}

impl DataFingerprint {
    /// Fingerprints `files` (a folder stands for its files, sorted by name).
    pub fn of(files: &[PathBuf]) -> Result<Self, NablaError> {
        use std::io::Read;
        let mut all = Vec::new();
        for f in files {
            match std::fs::read_dir(f) {
                Ok(entries) => {
                    let mut inner: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
                    inner.sort();
                    all.extend(inner.into_iter().filter(|p| p.is_file()));
                }
                Err(_) => all.push(f.clone()),
            }
        }
        let (mut size, mut hash) = (0u64, 0xcbf2_9ce4_8422_2325u64);
        let mut buf = vec![0u8; 1 << 16];
        for path in all {
            let (mut file, _) = crate::io::source::open(&path)?;
            loop {
                let n = file.read(&mut buf).map_err(|e| NablaError::io(&path, e))?;
                if n == 0 {
                    break;
                }
                size += n as u64;
                for &b in &buf[..n] {
                    hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
                }
            }
        }
        Ok(Self {
            size,
            hash: format!("{hash:016x}"),
        })
    }
}

/// A checkpoint read back: what [`crate::train::Trainer::resume`] needs to continue.
#[derive(Debug)]
pub struct Checkpoint {
    /// The file it came from.
    pub path: PathBuf,
    /// The run's state after its last completed epoch.
    pub state: FitState,
    /// The optimizer's state at that moment.
    pub optimizer: OptimizerState,
    /// The run's resolved settings; `None` in checkpoints written before they were stored.
    pub config: Option<RunConfig>,
    /// Checkpoints written before `config` existed: the command line that started the run
    /// (empty otherwise).
    pub argv: Vec<String>,
    /// The run it belongs to and its data (`id` empty in checkpoints from before run ids).
    pub identity: RunIdentity,
}

/// A checkpoint of a model file's network, read back with the network itself.
#[derive(Debug)]
pub struct ModelCheckpoint {
    /// The run's state, optimizer state and settings.
    pub checkpoint: Checkpoint,
    /// The network at that moment.
    pub model: Network<Sequential>,
}

impl std::ops::Deref for ModelCheckpoint {
    type Target = Checkpoint;
    fn deref(&self) -> &Checkpoint {
        &self.checkpoint
    }
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

/// Saves the state of a run that trains a [`Sequential`] network: a model file (spec,
/// `preprocess`) with the checkpoint beside it. See [`save_state`].
pub fn save(
    dir: &Path,
    identity: &RunIdentity,
    state: &FitState,
    model: &Network<Sequential>,
    optimizer: &OptimizerState,
    preprocess: &Preprocess,
    config: &RunConfig,
) -> Result<PathBuf, NablaError> {
    let training = serde_json::json!({
        "checkpoint_epoch": state.epoch,
        "config": config.settings_only(),
    });
    let metadata = model_file::model_metadata(model, preprocess, &training)?;
    save_state_as(dir, identity, state, model, optimizer, config, metadata)
}

/// Saves the state after an epoch of any network into `dir` (created if needed), atomically,
/// then deletes all but the newest [`KEEP`] checkpoints and the best one. `metadata` goes into
/// the file's header as it is. Returns the file written.
pub fn save_state<M: Module>(
    dir: &Path,
    state: &FitState,
    model: &Network<M>,
    optimizer: &OptimizerState,
    config: &RunConfig,
    metadata: BTreeMap<String, String>,
) -> Result<PathBuf, NablaError> {
    let anonymous = RunIdentity::default();
    save_state_as(dir, &anonymous, state, model, optimizer, config, metadata)
}

/// [`save_state`] for the run `identity`: the file records it, and pruning deletes only this
/// run's older checkpoints.
pub fn save_state_as<M: Module>(
    dir: &Path,
    identity: &RunIdentity,
    state: &FitState,
    model: &Network<M>,
    optimizer: &OptimizerState,
    config: &RunConfig,
    metadata: BTreeMap<String, String>,
) -> Result<PathBuf, NablaError> {
    std::fs::create_dir_all(dir).map_err(|e| NablaError::io(dir, e))?;
    let mut extras = Extras {
        metadata,
        ..Extras::default()
    };
    for (k, b) in optimizer.buffers.iter().enumerate() {
        extras.tensors.insert(
            format!("{EXTRA_PREFIX}optimizer.{k}"),
            (vec![b.len()], b.clone()),
        );
    }
    if let Some((_, _, best)) = &state.best {
        best_tensors(best, &mut extras);
    }
    let json = serde_json::to_string(&meta_of(state, optimizer, config, identity))
        .map_err(|e| NablaError::Usage(format!("cannot encode the checkpoint: {e}")))?;
    extras.metadata.insert("checkpoint".into(), json);
    let bytes = model_file::encode_tensors(&model.tensors(), &extras)?;
    let path = dir.join(file_name(state.epoch));
    model_file::write_atomic(&path, &bytes)?;
    prune(dir, state, &identity.id)?;
    Ok(path)
}

fn meta_of(
    state: &FitState,
    optimizer: &OptimizerState,
    config: &RunConfig,
    identity: &RunIdentity,
) -> Meta {
    Meta {
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
        config: Some(config.clone()),
        argv: Vec::new(),
        run_id: Some(identity.id.clone()).filter(|id| !id.is_empty()),
        data: identity.data.clone(),
    }
}

/// The best epoch's parameters and float buffers as `checkpoint.best.{name}`.
fn best_tensors(best: &Snapshot, extras: &mut Extras) {
    let params = best.params.iter().map(|(n, t)| (n, t.data()));
    let buffers = best
        .buffers
        .ids()
        .filter(|&id| best.buffers.dtype(id) == Dtype::F32)
        .map(|id| (best.buffers.name(id), best.buffers.get(id).data()));
    for (name, data) in params.chain(buffers) {
        extras.tensors.insert(
            format!("{EXTRA_PREFIX}best.{name}"),
            (vec![data.len()], data.to_vec()),
        );
    }
}

/// Keeps the newest [`KEEP`] checkpoints of the run `id` and its best one; other runs'
/// checkpoints are never touched.
fn prune(dir: &Path, state: &FitState, id: &str) -> Result<(), NablaError> {
    // Only the validation loss names a best epoch (the test set never chooses).
    let best_epoch = state.best.as_ref().map(|(_, e, _)| *e).or_else(|| {
        state
            .history
            .iter()
            .filter_map(|m| m.val_loss.map(|l| (m.epoch, l)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(e, _)| e)
    });
    let mut epochs: Vec<usize> = list(dir)?
        .into_iter()
        .filter(|&e| run_id(&dir.join(file_name(e))).as_deref() == Some(id))
        .collect();
    epochs.sort_unstable();
    let n = epochs.len();
    for (i, e) in epochs.into_iter().enumerate() {
        if i + KEEP < n && Some(e) != best_epoch {
            let _ = std::fs::remove_file(dir.join(file_name(e)));
        }
    }
    Ok(())
}

fn list(dir: &Path) -> Result<Vec<usize>, NablaError> {
    let entries = std::fs::read_dir(dir).map_err(|e| NablaError::io(dir, e))?;
    Ok(entries
        .filter_map(|e| e.ok())
        .filter_map(|e| epoch_of(&e.path()))
        .collect())
}

/// The run id stored in a checkpoint file's header (`""` for checkpoints without one), read
/// without reading the tensors; `None` if the file cannot be read as a checkpoint.
pub fn run_id(path: &Path) -> Option<String> {
    use std::io::Read;
    let (mut file, _) = crate::io::source::open(path).ok()?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len).ok()?;
    let n = u64::from_le_bytes(len);
    if n > 16 << 20 {
        return None;
    }
    let mut header = Vec::new();
    file.take(n).read_to_end(&mut header).ok()?;
    let header: serde_json::Value = serde_json::from_slice(&header).ok()?;
    let text = header.get("__metadata__")?.get("checkpoint")?.as_str()?;
    let meta: serde_json::Value = serde_json::from_str(text).ok()?;
    Some(
        meta.get("run_id")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string(),
    )
}

/// The checkpoint files in `dir` (`epoch-NNNNN.safetensors`), oldest first.
pub fn files(dir: &Path) -> Result<Vec<PathBuf>, NablaError> {
    let mut epochs = list(dir)?;
    epochs.sort_unstable();
    Ok(epochs.into_iter().map(|e| dir.join(file_name(e))).collect())
}

/// The latest checkpoint file in `dir`.
pub fn latest(dir: &Path) -> Result<PathBuf, NablaError> {
    let latest = list(dir)?.into_iter().max().ok_or_else(|| {
        NablaError::data(
            dir,
            "folder",
            "no checkpoint (epoch-NNNNN.safetensors) to resume from",
        )
    })?;
    Ok(dir.join(file_name(latest)))
}

/// Reads the latest checkpoint of a model-file network in `dir`.
pub fn load_latest(dir: &Path) -> Result<ModelCheckpoint, NablaError> {
    load(&latest(dir)?)
}

/// Reads one checkpoint of a model-file network: the network is built from the file's spec.
pub fn load(path: &Path) -> Result<ModelCheckpoint, NablaError> {
    // Regular files only, the header's length checked against the size before it is read.
    let bytes = model_file::read_file(path)?;
    let (file, extras) = model_file::decode_with(path, &bytes)?;
    let checkpoint = restore(path, &file.network, extras)?;
    Ok(ModelCheckpoint {
        checkpoint,
        model: file.network,
    })
}

/// Reads one checkpoint of any network into `model`, which must be built as the one saved
/// (its tensors are loaded by name, strictly).
pub fn load_into<M: Module>(path: &Path, model: &mut Network<M>) -> Result<Checkpoint, NablaError> {
    let extras = model_file::load_state_with_extras(path, model)?;
    restore(path, model, extras)
}

/// The run's state from a checkpoint's extras, the best weights shaped like `model`'s.
fn restore<M: Module>(
    path: &Path,
    model: &Network<M>,
    mut extras: Extras,
) -> Result<Checkpoint, NablaError> {
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
        Some((bits, epoch)) => Some((
            f64::from_bits(bits),
            epoch,
            best_snapshot(path, model, &mut take)?,
        )),
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
        optimizer: OptimizerState {
            buffers,
            counter: meta.optimizer_counter,
        },
        config: meta.config,
        argv: meta.argv,
        identity: RunIdentity {
            id: meta.run_id.unwrap_or_default(),
            data: meta.data,
        },
    })
}

/// The best epoch's tensors, `checkpoint.best.{name}`; float buffers written before buffers had
/// names are read as `checkpoint.best_running.{j}.mean` / `.var`, in buffer order.
fn best_snapshot<M: Module>(
    path: &Path,
    model: &Network<M>,
    take: &mut impl FnMut(String) -> Result<Vec<f32>, NablaError>,
) -> Result<Snapshot, NablaError> {
    let mut best = model.snapshot();
    let put = |name: &str, dst: &mut [f32], v: Vec<f32>| {
        if dst.len() != v.len() {
            return Err(NablaError::data(
                path,
                "tensors",
                format!("{name}: wrong size"),
            ));
        }
        dst.copy_from_slice(&v);
        Ok(())
    };
    for id in best.params.ids() {
        let name = format!("{EXTRA_PREFIX}best.{}", best.params.name(id));
        let v = take(name.clone())?;
        put(&name, best.params.get_mut(id).data_mut(), v)?;
    }
    let floats: Vec<_> = best
        .buffers
        .ids()
        .filter(|&id| best.buffers.dtype(id) == Dtype::F32)
        .collect();
    for (k, id) in floats.into_iter().enumerate() {
        let name = format!("{EXTRA_PREFIX}best.{}", best.buffers.name(id));
        let legacy = format!(
            "{EXTRA_PREFIX}best_running.{}.{}",
            k / 2,
            ["mean", "var"][k % 2]
        );
        let v = take(name.clone()).or_else(|_| take(legacy))?;
        put(&name, best.buffers.get_mut(id).data_mut(), v)?;
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file with just a checkpoint header naming `run_id` (enough for listing and pruning).
    fn fake(dir: &Path, epoch: usize, run_id: &str) {
        let meta = serde_json::json!({ "run_id": run_id }).to_string();
        let header = serde_json::json!({ "__metadata__": { "checkpoint": meta } }).to_string();
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        std::fs::write(dir.join(file_name(epoch)), bytes).unwrap();
    }

    #[test]
    fn pruning_touches_only_the_runs_own_checkpoints() {
        let dir = std::env::temp_dir().join(format!("nabla-prune-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Another run's later epochs, and this run's five.
        for e in 10..15 {
            fake(&dir, e, "other");
        }
        for e in 1..=5 {
            fake(&dir, e, "mine");
        }
        let state = FitState {
            epoch: 5,
            steps: 0,
            history: Vec::new(),
            best: None,
            scheduler: (0.0, 0.0, 0),
        };
        prune(&dir, &state, "mine").unwrap();
        let mut left = list(&dir).unwrap();
        left.sort_unstable();
        assert_eq!(left, vec![3, 4, 5, 10, 11, 12, 13, 14]);
        assert_eq!(run_id(&dir.join(file_name(12))).as_deref(), Some("other"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
