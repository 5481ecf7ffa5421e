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

/// Where a file at `path` is, for comparing outputs that may not exist yet: the last
/// component's symlinks followed, the deepest existing folder made canonical.
fn place(path: &Path) -> PathBuf {
    let real = output::resolve(path).unwrap_or_else(|_| path.to_path_buf());
    let abs = match std::env::current_dir() {
        Ok(cwd) if real.is_relative() => cwd.join(&real),
        _ => real,
    };
    let mut rest = Vec::new();
    let mut base = abs.as_path();
    loop {
        if let Ok(mut found) = std::fs::canonicalize(base) {
            found.extend(rest.iter().rev());
            return found;
        }
        match (base.parent(), base.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                base = parent;
            }
            _ => return abs.clone(),
        }
    }
}

/// Whether two output paths name one file: the same place, or the same existing file (device
/// and inode: hard links, symlinks).
pub fn same_output(a: &Path, b: &Path) -> bool {
    place(a) == place(b) || output::same_file(a, b)
}

/// One output of a command: what writes it (`--save`) and where.
#[derive(Clone, Debug)]
pub struct Out {
    /// The flag or file role, as messages name it.
    pub what: String,
    /// The path.
    pub path: PathBuf,
}

impl Out {
    /// An output written because of `what`.
    pub fn new(what: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self {
            what: what.into(),
            path: path.into(),
        }
    }
}

/// Refuses an output that is an input of the command, or the same file as another of its
/// outputs (through symlinks and hard links); `allowed` pairs of outputs may share a file.
pub fn distinct(outputs: &[Out], inputs: &[PathBuf]) -> Result<()> {
    for (i, out) in outputs.iter().enumerate() {
        not_an_input(&out.path, inputs)?;
        if let Some(other) = outputs[..i]
            .iter()
            .find(|o| same_output(&o.path, &out.path))
        {
            return Err(refuse(
                &out.path,
                format!(
                    "{} would write the same file as {} ({}); give each output its own file",
                    out.what,
                    other.what,
                    other.path.display()
                ),
            ));
        }
    }
    Ok(())
}

/// The kinds of file nabla writes, so that a file of another kind (or not from nabla) is never
/// replaced without `--overwrite`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A model file (safetensors with nabla's metadata).
    Model,
    /// A JSON file (metrics, a learning-rate sweep): replaces text, never a binary file.
    Json,
    /// A predictions CSV: replaces text, never a binary file.
    Predictions,
    /// An ONNX model exported by nabla.
    Onnx,
}

impl Kind {
    /// The kind in words.
    fn name(self) -> &'static str {
        match self {
            Kind::Model => "a nabla model file",
            Kind::Json => "a JSON file",
            Kind::Predictions => "a predictions CSV",
            Kind::Onnx => "an ONNX model exported by nabla",
        }
    }

    /// Whether `head`, the first bytes of a file, is this kind of file.
    fn matches(self, head: &[u8]) -> bool {
        let contains = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
        match self {
            Kind::Model => head.len() > 8 && head[8] == b'{' && contains(br#""format":"nabla"#),
            // Text outputs replace text files (an old export, notes) but never a binary file:
            // a model, an ONNX graph, gzip data, an image.
            Kind::Json | Kind::Predictions => {
                !head.contains(&0) && !head.starts_with(&[0x1f, 0x8b])
            }
            Kind::Onnx => head.first() == Some(&0x08) && contains(b"nabla"),
        }
    }
}

/// Refuses replacing the existing, non-empty regular file `path` (`what` writes it) unless it
/// is `kind` or `overwrite` is given: `--save` onto a CSV, `--metrics-out` onto a model.
pub fn same_kind(path: &Path, what: &str, kind: Kind, overwrite: bool) -> Result<()> {
    let real = output::resolve(path)?;
    let Ok((file, size)) = nabla::io::source::open(&real) else {
        return Ok(());
    };
    if size == 0 || overwrite {
        return Ok(());
    }
    use std::io::Read;
    let mut head = Vec::new();
    file.take(1 << 20)
        .read_to_end(&mut head)
        .map_err(|e| NablaError::io(path, e))?;
    if kind.matches(&head) {
        return Ok(());
    }
    Err(refuse(
        path,
        format!(
            "exists and is not {} ({what} writes one); refusing to replace it: choose another file, or pass --overwrite",
            kind.name()
        ),
    ))
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

/// What `nabla train`'s pre-flight claimed: the run folder, and locks on the checkpoint
/// folder and the output files, held while the run lives.
#[derive(Debug)]
pub struct Claim {
    /// The run folder (`None` with `--no-save`).
    pub run: Option<RunFolder>,
    /// Locks released when the claim is dropped.
    _locks: Vec<Lock>,
}

/// The lock file of a checkpoint folder (two runs never write checkpoints into one folder).
const CHECKPOINT_LOCK: &str = ".nabla-checkpoints.lock";

/// Checks every output of `config` against the inputs, each other and files of other kinds,
/// and claims its run folder, checkpoint folder and output files.
/// `extra_inputs`: files read besides the data (a --config file).
pub fn preflight(
    config: &RunConfig,
    existing: Existing,
    extra_inputs: &[PathBuf],
) -> Result<Claim> {
    let overwrite = existing == Existing::Overwrite;
    let out = &config.output;
    if let Some(name) = &out.name {
        check_name(name)?;
    }
    let inputs = inputs(config, extra_inputs);
    let files = [
        ("--save", &out.save, Kind::Model),
        ("--metrics-out", &out.metrics_out, Kind::Json),
    ];
    let mut outs: Vec<Out> = files
        .iter()
        .filter_map(|(flag, path, _)| path.as_ref().map(|p| Out::new(*flag, p)))
        .collect();
    if let Some(dir) = named_run_dir(out).filter(|_| !out.no_save) {
        for f in RUN_FILES {
            let path = dir.join(f);
            let saved_there = out.save.as_ref().is_some_and(|s| same_output(s, &path));
            if !(f == "model.safetensors" && saved_there) {
                outs.push(Out::new(format!("the run folder's {f}"), path));
            }
        }
    }
    distinct(&outs, &inputs)?;
    if let Some(dir) = &out.checkpoint_dir {
        not_a_checkpoint(&outs, dir)?;
    }
    for (flag, path, kind) in files {
        if let Some(path) = path {
            check_output_file(path, &inputs)?;
            same_kind(path, flag, kind, overwrite)?;
        }
    }
    let mut locks = Vec::new();
    if let Some(dir) = &out.checkpoint_dir {
        output::check_folder(dir)?;
        locks.push(take_lock(
            &dir.join(CHECKPOINT_LOCK),
            dir,
            "checkpoints into this folder",
        )?);
    }
    for path in out.save.iter().chain(&out.metrics_out) {
        locks.extend(lock_file(path)?);
    }
    let run = match out.no_save {
        true => None,
        false => {
            utf8_data_paths(config)?;
            Some(claim(out, existing)?)
        }
    };
    Ok(Claim { run, _locks: locks })
}

/// The run folder `--run-dir` or `--name` names (`None` for a fresh time-stamped one).
fn named_run_dir(out: &Output) -> Option<PathBuf> {
    match (&out.run_dir, &out.name) {
        (Some(dir), _) => Some(dir.clone()),
        (None, Some(name)) => Some(Path::new("runs").join(name)),
        (None, None) => None,
    }
}

/// Refuses an output named like a checkpoint inside the checkpoint folder `dir`.
fn not_a_checkpoint(outs: &[Out], dir: &Path) -> Result<()> {
    let dir = place(dir);
    for o in outs {
        let p = place(&o.path);
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        let checkpoint =
            name.is_some_and(|n| n.starts_with("epoch-") && n.ends_with(".safetensors"));
        if checkpoint && p.parent() == Some(dir.as_path()) {
            return Err(refuse(
                &o.path,
                format!(
                    "{} would write over a checkpoint in the --checkpoint-dir {}; choose another file",
                    o.what,
                    dir.display()
                ),
            ));
        }
    }
    Ok(())
}

/// config.toml records the data paths as text: they must be UTF-8.
fn utf8_data_paths(config: &RunConfig) -> Result<()> {
    for path in config.data.iter().chain(&config.test_data) {
        if path.to_str().is_none() {
            return Err(refuse(
                path,
                "the path is not valid UTF-8, so the run's config.toml cannot record it; rename it, or pass --no-save",
            ));
        }
    }
    Ok(())
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
    let lock = take_lock(&dir.join(LOCK), &dir, "this folder")?;
    // The folder's lock is removed by RunFolder's drop.
    std::mem::forget(lock);
    Ok(RunFolder { dir })
}

/// A lock file held by this process: removed when this is dropped.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether process `pid` may be the writer of the lock file `lock`: it is alive, it is not
/// the init process (pid 1, unless that is nabla itself), and it did not start after the lock
/// was written (a reused pid after a reboot is not the writer).
fn may_hold(pid: u32, lock: &Path) -> bool {
    if !Path::new(&format!("/proc/{pid}")).exists() || exited(pid) {
        return false;
    }
    if pid == 1 {
        let argv0 = std::fs::read("/proc/1/cmdline").unwrap_or_default();
        let argv0 = String::from_utf8_lossy(argv0.split(|&b| b == 0).next().unwrap_or_default());
        return argv0
            .rsplit('/')
            .next()
            .is_some_and(|n| n.contains("nabla"));
    }
    let written = std::fs::metadata(lock)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    match (process_start(pid), written) {
        // Two seconds of slack for the clock-tick rounding of the start time.
        (Some(start), Some(written)) => start <= written.as_secs_f64() + 2.0,
        _ => true,
    }
}

/// Whether process `pid` has exited and only waits to be reaped (a zombie: state `Z` or `X`
/// in /proc/PID/stat), as an MPI rank aborted with its job is until its new parent reaps it.
fn exited(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X")
    })
}

/// When process `pid` started, in seconds since the epoch (Linux: /proc/PID/stat and the boot
/// time in /proc/stat, at 100 clock ticks per second).
fn process_start(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    // Field 22 overall: the 20th after the command name.
    let ticks: f64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let boot: f64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(boot + ticks / 100.0)
}

/// Creates the lock file `path` for `holder` (a folder or file, `what` in messages), clearing
/// one whose writer is gone.
fn take_lock(path: &Path, holder: &Path, what: &str) -> Result<Lock> {
    for _ in 0..2 {
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path);
        match created {
            Ok(mut f) => {
                use std::io::Write;
                let _ = write!(f, "{}", std::process::id());
                return Ok(Lock {
                    path: path.to_path_buf(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let pid: Option<u32> = std::fs::read_to_string(path)
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
                let alive = pid.is_some_and(|p| may_hold(p, path));
                if alive || pid.is_none() && path.exists() && !stale_lock(path) {
                    return Err(refuse(
                        holder,
                        format!(
                            "another nabla run (process {}) is writing {what} (lock file {}; if no nabla run is, remove that file)",
                            pid.map_or("?".to_string(), |p| p.to_string()),
                            path.display()
                        ),
                    ));
                }
                let _ = std::fs::remove_file(path);
            }
            Err(e) => return Err(refuse(holder, format!("cannot lock {what}: {e}"))),
        }
    }
    Err(refuse(holder, format!("cannot lock {what}")))
}

/// Locks the output file `path` for this run (`.NAME.nabla-lock` beside the file it resolves
/// to), so two concurrent runs never both write it; nothing for a device or FIFO.
pub fn lock_file(path: &Path) -> Result<Option<Lock>> {
    let real = output::resolve(path)?;
    if output::check_file(&real)? == output::Target::Stream {
        return Ok(None);
    }
    let name = real.file_name().unwrap_or(OsStr::new("output"));
    let mut lock_name = std::ffi::OsString::from(".");
    lock_name.push(name);
    lock_name.push(".nabla-lock");
    take_lock(&real.with_file_name(lock_name), path, "this file").map(Some)
}

/// A lock file without a readable pid older than a minute (a writer killed mid-write).
fn stale_lock(path: &Path) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age.as_secs() > 60)
}
