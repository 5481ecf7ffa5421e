//! Pre-flight for `nabla train`'s outputs, before any data is loaded: every output path can be
//! written (a bad one is exit 2 in well under a second, naming the path), none is an input of
//! the same command, and the run folder is claimed for this run alone.
//!
//! Run folders: `--name` is a plain name (no `/`, no `..`, not empty or `.`); a folder is
//! created exclusively and holds a lock file (`.nabla-run.lock`, the writing process id) while
//! the run lives, so two concurrent runs never share one; a folder that already holds a run is
//! refused unless `--overwrite` (which first removes the files a run writes) or it is the folder
//! of the run `--resume` continues (its files are replaced as the run writes them); a taken default
//! (time-stamped) name gets a suffix `-2`, `-3`, ...

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use anyhow::Result;
use nabla::NablaError;
use nabla::config::{Output, RunConfig};
use nabla::io::output;

/// The files a run writes into its folder (removed first by `--overwrite`).
pub const RUN_FILES: [&str; 10] = [
    "model.safetensors",
    "config.toml",
    "metrics.csv",
    "history.json",
    "learning_curves.png",
    "learning_curves.svg",
    "confusion_matrix.png",
    "confusion_matrix.svg",
    "lr_schedule.png",
    "lr_schedule.svg",
];

const LOCK: &str = ".nabla-run.lock";

fn refuse(path: &Path, message: impl Into<String>) -> anyhow::Error {
    NablaError::data(path, "output", message).into()
}

/// A run folder claimed by this process: its lock file goes when this is dropped.
#[derive(Debug)]
pub struct RunFolder {
    /// The folder.
    pub dir: PathBuf,
}

impl Drop for RunFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.dir.join(LOCK));
    }
}

/// Every input file of the run: the data (each file of an IDX folder) and the test data.
fn inputs(config: &RunConfig, extra: &[PathBuf]) -> Vec<PathBuf> {
    let paths: Vec<PathBuf> = config
        .data
        .iter()
        .chain(&config.test_data)
        .chain(extra)
        .cloned()
        .collect();
    input_files(&paths)
}

/// The files `paths` name (a folder: each file in it).
pub fn input_files(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut all = Vec::new();
    for path in paths {
        match std::fs::read_dir(path) {
            Ok(entries) => all.extend(entries.flatten().map(|e| e.path())),
            Err(_) => all.push(path.clone()),
        }
    }
    all
}

/// Refuses writing `path` when it is one of `inputs`.
pub fn not_an_input(path: &Path, inputs: &[PathBuf]) -> Result<()> {
    let real = output::resolve(path)?;
    if let Some(input) = inputs.iter().find(|i| output::same_file(&real, i)) {
        return Err(refuse(
            path,
            format!(
                "is an input of this command ({}); refusing to overwrite it",
                input.display()
            ),
        ));
    }
    Ok(())
}

/// Checks an output file: writable, and not one of `inputs`.
pub fn check_output_file(path: &Path, inputs: &[PathBuf]) -> Result<()> {
    if path.as_os_str().as_encoded_bytes().ends_with(b"/") {
        return Err(refuse(path, "names a folder; expected a file name"));
    }
    output::check_file(path)?;
    not_an_input(path, inputs)
}

/// What to do with a run folder that already holds a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Refuse it (the default).
    Refuse,
    /// Remove the files a run writes first (`--overwrite`).
    Overwrite,
    /// Keep them until the run replaces them: the folder is the resumed run's own (`--resume`).
    Continue,
}

/// Checks every output of `config` and claims its run folder (`None` with `--no-save`).
/// `extra_inputs`: files read besides the data (a --config file).
pub fn preflight(
    config: &RunConfig,
    existing: Existing,
    extra_inputs: &[PathBuf],
) -> Result<Option<RunFolder>> {
    let out = &config.output;
    let inputs = inputs(config, extra_inputs);
    for path in out.save.iter().chain(&out.metrics_out) {
        check_output_file(path, &inputs)?;
    }
    if let Some(dir) = &out.checkpoint_dir {
        output::check_folder(dir)?;
    }
    if out.no_save {
        return Ok(None);
    }
    // config.toml records the data paths as text.
    for path in config.data.iter().chain(&config.test_data) {
        if path.to_str().is_none() {
            return Err(refuse(
                path,
                "the path is not valid UTF-8, so the run's config.toml cannot record it; rename it, or pass --no-save",
            ));
        }
    }
    claim(out, existing).map(Some)
}

/// Checks `--name`: a plain name, not a path.
pub fn check_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains('/')
        || name.contains('\\')
        || name.contains('\0');
    if bad {
        anyhow::bail!(NablaError::Usage(format!(
            "--name {name:?}: a run name is a plain folder name under runs/ (no '/', not empty, '.' or '..'); use --run-dir for a folder elsewhere"
        )));
    }
    Ok(())
}

/// Creates (exclusively) and locks the run folder `output` asks for.
fn claim(output: &Output, existing: Existing) -> Result<RunFolder> {
    if let Some(name) = &output.name {
        check_name(name)?;
    }
    let (dir, default_name) = match (&output.run_dir, &output.name) {
        (Some(dir), _) => (dir.clone(), false),
        (None, Some(name)) => (Path::new("runs").join(name), false),
        (None, None) => (Path::new("runs").join(super::train::utc_timestamp()), true),
    };
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| {
            let why = format!("cannot create its parent folder {}: {e}", parent.display());
            refuse(&dir, why)
        })?;
    }
    if default_name {
        for i in 1.. {
            let candidate = match i {
                1 => dir.clone(),
                _ => suffixed(&dir, i),
            };
            match std::fs::create_dir(&candidate) {
                Ok(()) => return lock(candidate),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(refuse(&candidate, format!("cannot create the folder: {e}"))),
            }
        }
    }
    match std::fs::create_dir(&dir) {
        Ok(()) => return lock(dir),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(refuse(&dir, format!("cannot create the folder: {e}"))),
    }
    if !dir.is_dir() {
        return Err(refuse(&dir, "exists and is not a folder"));
    }
    let folder = lock(dir)?;
    let held = holds_a_run(&folder.dir);
    match (held, existing) {
        (None, _) | (Some(_), Existing::Continue) => {}
        (Some(file), Existing::Refuse) => {
            return Err(refuse(
                &folder.dir,
                format!(
                    "already holds a run ({file}); choose another --name or --run-dir, or pass --overwrite to replace it"
                ),
            ));
        }
        (Some(_), Existing::Overwrite) => {
            for f in RUN_FILES {
                let _ = std::fs::remove_file(folder.dir.join(f));
            }
        }
    }
    Ok(folder)
}

/// `runs/NAME-i`.
fn suffixed(dir: &Path, i: usize) -> PathBuf {
    let mut name = dir.file_name().unwrap_or(OsStr::new("run")).to_os_string();
    name.push(format!("-{i}"));
    dir.with_file_name(name)
}

/// The first file of a finished (or partial) run in `dir`, if any.
fn holds_a_run(dir: &Path) -> Option<&'static str> {
    RUN_FILES.into_iter().find(|f| dir.join(f).exists())
}

/// Takes the folder's lock, clearing one left by a process that is gone.
fn lock(dir: PathBuf) -> Result<RunFolder> {
    output::check_folder(&dir)?;
    output::clean_stale(&dir);
    let path = dir.join(LOCK);
    for _ in 0..2 {
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path);
        match created {
            Ok(mut f) => {
                use std::io::Write;
                let _ = write!(f, "{}", std::process::id());
                return Ok(RunFolder { dir });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let pid: Option<u32> = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
                let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
                if alive || pid.is_none() && Path::new(&path).exists() && !stale_lock(&path) {
                    return Err(refuse(
                        &dir,
                        format!(
                            "another nabla run (process {}) is writing into this folder",
                            pid.map_or("?".to_string(), |p| p.to_string())
                        ),
                    ));
                }
                let _ = std::fs::remove_file(&path);
            }
            Err(e) => return Err(refuse(&dir, format!("cannot lock the folder: {e}"))),
        }
    }
    Err(refuse(&dir, "cannot lock the folder"))
}

/// A lock file without a readable pid older than a minute (a writer killed mid-write).
fn stale_lock(path: &Path) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age.as_secs() > 60)
}
