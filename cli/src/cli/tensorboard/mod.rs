//! TensorBoard event files in a run folder (`events.out.tfevents.<time>.<host>.<pid>`), written
//! as the run goes so `tensorboard --logdir runs` shows live curves and compares runs:
//!
//! - per iteration (global step = `(epoch − 1) · iterations + iteration`): `iteration/loss`
//!   (the mini-batch's mean loss) and `iteration/learning_rate`;
//! - per epoch (step = epoch): `epoch/<field>` for every value of history.json's epoch that
//!   the run has (`train_loss`, `train_accuracy`, `val_loss`, `val_accuracy`, `val_r2`,
//!   `test_loss`, `test_accuracy`, `test_mae`, `test_rmse`, `test_r2`, `learning_rate`);
//! - at the end, classification: `confusion_matrix`, the PNG of the plot, as an image.
//!
//! An event file is an append-only log, not a result: it is written in place (no atomic
//! rename) and flushed after each epoch. A write that fails (full disk) turns the log off with
//! one warning; training goes on. [`record`] holds the framing, [`proto`] the messages.

pub mod proto;
pub mod record;

use std::cell::RefCell;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use prost::Message;

use nabla::train::{EpochMetrics, IterationStats};
use proto::{Event, Image, Summary, Value};

/// The file-name prefix TensorBoard looks for.
pub const PREFIX: &str = "events.out.tfevents.";

/// The event log of one run (inactive without a run folder). Shared by the training hooks
/// through `&self`.
pub struct EventLog {
    inner: RefCell<Option<Writer>>,
}

struct Writer {
    path: PathBuf,
    out: BufWriter<File>,
    /// Iterations of the current epoch: (global step, loss), written with the epoch's rate.
    pending: Vec<(i64, f64)>,
}

impl EventLog {
    /// A new event file in `dir` (nothing when `dir` is `None`); a file that cannot be
    /// created is a warning, not an error.
    pub fn open(dir: Option<&Path>) -> Self {
        let writer = dir.and_then(|dir| match Writer::create(dir) {
            Ok(w) => Some(w),
            Err(e) => {
                eprintln!("warning: no TensorBoard log: {e}");
                None
            }
        });
        Self {
            inner: RefCell::new(writer),
        }
    }

    /// Records an iteration's loss; written with the epoch (the rate is the epoch's).
    pub fn iteration(&self, it: &IterationStats) {
        if let Some(w) = self.inner.borrow_mut().as_mut() {
            let step = (it.epoch - 1) * it.iterations + it.iteration;
            w.pending.push((step as i64, it.loss));
        }
    }

    /// Writes the epoch's iterations and values, and flushes.
    pub fn epoch(&self, m: &EpochMetrics) {
        self.with(|w| w.epoch(m));
    }

    /// Adds the PNG at `png` as the image `tag` at step `step`.
    pub fn image(&self, tag: &str, png: &Path, step: usize) {
        self.with(|w| w.image(tag, png, step as i64));
    }

    fn with(&self, f: impl FnOnce(&mut Writer) -> std::io::Result<()>) {
        let mut inner = self.inner.borrow_mut();
        if let Some(w) = inner.as_mut()
            && let Err(e) = f(w).and_then(|()| w.out.flush())
        {
            eprintln!(
                "warning: TensorBoard log {}: {e}; no more events are written",
                w.path.display()
            );
            *inner = None;
        }
    }
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn scalar(tag: &str, v: f64) -> Value {
    Value {
        tag: tag.to_string(),
        simple_value: Some(v as f32),
        image: None,
    }
}

impl Writer {
    fn create(dir: &Path) -> std::io::Result<Self> {
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty() && !h.contains(['/', '\\']))
            .unwrap_or_else(|| "localhost".into());
        let name = format!("{PREFIX}{}.{host}.{}", now() as u64, std::process::id());
        let path = dir.join(name);
        let file = File::options()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        let mut w = Self {
            path,
            out: BufWriter::new(file),
            pending: Vec::new(),
        };
        w.write(Event {
            wall_time: now(),
            step: 0,
            file_version: Some("brain.Event:2".into()),
            summary: None,
        })?;
        w.out.flush()?;
        Ok(w)
    }

    fn write(&mut self, event: Event) -> std::io::Result<()> {
        record::write(&mut self.out, &event.encode_to_vec())
    }

    fn summary(&mut self, step: i64, value: Vec<Value>) -> std::io::Result<()> {
        self.write(Event {
            wall_time: now(),
            step,
            file_version: None,
            summary: Some(Summary { value }),
        })
    }

    fn epoch(&mut self, m: &EpochMetrics) -> std::io::Result<()> {
        for (step, loss) in std::mem::take(&mut self.pending) {
            let values = vec![
                scalar("iteration/loss", loss),
                scalar("iteration/learning_rate", m.learning_rate),
            ];
            self.summary(step, values)?;
        }
        let values = epoch_values(m)
            .into_iter()
            .map(|(name, v)| scalar(&format!("epoch/{name}"), v))
            .collect();
        self.summary(m.epoch as i64, values)
    }

    fn image(&mut self, tag: &str, png: &Path, step: i64) -> std::io::Result<()> {
        // A failure names the image, not the log it was to be added to.
        let bytes = std::fs::read(png)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", png.display())))?;
        let (width, height, colorspace) = png_header(&bytes).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: not a PNG file", png.display()),
            )
        })?;
        let image = Image {
            height,
            width,
            colorspace,
            encoded_image_string: bytes,
        };
        let value = Value {
            tag: tag.to_string(),
            simple_value: None,
            image: Some(image),
        };
        self.summary(step, vec![value])
    }
}

/// Every value of an epoch's history.json record (but `seconds`), by field name.
pub fn epoch_values(m: &EpochMetrics) -> Vec<(&'static str, f64)> {
    let optional = [
        ("train_accuracy", m.train_accuracy),
        ("val_loss", m.val_loss),
        ("val_accuracy", m.val_accuracy),
        ("val_r2", m.val_r2),
        ("test_loss", m.test_loss),
        ("test_accuracy", m.test_accuracy),
        ("test_mae", m.test_mae),
        ("test_rmse", m.test_rmse),
        ("test_r2", m.test_r2),
    ];
    let mut values = vec![("train_loss", m.train_loss)];
    values.extend(optional.into_iter().filter_map(|(k, v)| Some((k, v?))));
    values.push(("learning_rate", m.learning_rate));
    values
}

/// Width, height and TensorBoard colorspace of a PNG, read from its IHDR chunk.
fn png_header(bytes: &[u8]) -> Option<(i32, i32, i32)> {
    if bytes.get(..8)? != b"\x89PNG\r\n\x1a\n" || bytes.get(12..16)? != b"IHDR" {
        return None;
    }
    let be = |i: usize| Some(u32::from_be_bytes(bytes.get(i..i + 4)?.try_into().ok()?));
    let colorspace = match *bytes.get(25)? {
        0 => 1,
        4 => 2,
        6 => 4,
        _ => 3,
    };
    Some((
        i32::try_from(be(16)?).ok()?,
        i32::try_from(be(20)?).ok()?,
        colorspace,
    ))
}
