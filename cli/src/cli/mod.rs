//! The `nabla` command line: one file per subcommand. This is the binary's edge: library errors
//! become one-line messages and exit codes (2: bad data or usage, 1: anything else).

pub mod baselines;
pub mod config;
pub mod distributed;
pub mod evaluate;
pub mod explain;
pub mod export;
pub mod hints;
pub mod inspect;
pub mod lr_find;
pub mod memory;
pub mod model_path;
pub mod outputs;
pub mod plot;
pub mod predict;
pub mod progress;
pub mod resume;
pub mod rule;
pub mod signals;
pub mod tensorboard;
pub mod train;

use clap::{Parser, Subcommand};

/// nabla: build, train and evaluate neural networks on the CPU.
#[derive(Debug, Parser)]
#[command(
    name = "nabla",
    version,
    about,
    long_about = None,
    after_help = "Examples:\n  nabla train                                   train on the built-in digits; saves runs/<time>/\n  nabla train --epochs 5 --name first-try       ... into runs/first-try/\n  nabla train --config runs/first-try/config.toml   repeat a run exactly\n  nabla plot runs/first-try                     redraw a run's plots\n  nabla compare runs/first-try runs/other       overlay two runs' learning curves\n  nabla explain --weight w1                     backpropagation by hand on a 3-2-2 network\n  nabla explain --model runs/first-try/model.safetensors --sample 7   ... on a trained model\n\nEvery subcommand lists its flags and defaults: nabla help train, nabla explain --help, ..."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a network (default: the built-in digits dataset) and report per-epoch metrics.
    Train(train::TrainArgs),
    /// Walk through one training step by hand: forward, backprop, update, checked by finite
    /// differences; a tiny named network, or a trained model's step on one sample (--model).
    Explain(explain::ExplainArgs),
    /// Redraw a run folder's plots from its history.json.
    Plot(plot::PlotArgs),
    /// Overlay two runs' learning curves in one plot (compare.png, compare.svg).
    Compare(plot::CompareArgs),
    /// Sweep the learning rate exponentially over a few hundred steps and suggest one.
    LrFind(lr_find::LrFindArgs),
    /// Measure a saved model on labelled data: loss, accuracy, per-class precision/recall/F1 and
    /// the confusion matrix (or MAE, RMSE, R²).
    Evaluate(evaluate::EvaluateArgs),
    /// Predict new rows with a saved model: CSV with `prediction` and `p_<class>` columns.
    Predict(predict::PredictArgs),
    /// Show what a model file holds: architecture, parameters, classes, training settings.
    Inspect(inspect::InspectArgs),
    /// Export a saved model for other runtimes: an ONNX graph with the preprocessing folded in.
    Export(export::ExportArgs),
}

impl Cli {
    /// The clap description of one subcommand (`lr-find`), as parsing builds it.
    pub fn command_for(name: &str) -> Option<clap::Command> {
        use clap::CommandFactory;
        let mut command = Self::command();
        command.build();
        command.find_subcommand(name).cloned()
    }
}

/// Parses a comma-separated list of positive layer widths (`256,128`).
pub fn parse_hidden(s: &str) -> Result<Vec<usize>, String> {
    if s.trim().is_empty() {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(|part| {
            let part = part.trim();
            match part.parse::<usize>() {
                Ok(0) => Err("a hidden layer needs at least 1 neuron, got 0".to_string()),
                Ok(n) if n > 1 << 16 => Err(format!("{n} neurons is more than the 65536 allowed")),
                Ok(n) => Ok(n),
                Err(_) => Err(format!(
                    "expected comma-separated layer sizes like 256,128, got {part:?}"
                )),
            }
        })
        .collect()
}

/// Parses a fraction in `[0, 1)`.
pub fn parse_fraction(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("expected a number in [0, 1), got {s:?}"))?;
    if (0.0..1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("expected a number in [0, 1), got {v}"))
    }
}

/// Parses a positive, finite float.
pub fn parse_positive(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("expected a positive number, got {s:?}"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("expected a positive number, got {v}"))
    }
}

/// Parses a finite float ≥ 0.
pub fn parse_non_negative(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("expected a number ≥ 0, got {s:?}"))?;
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("expected a number ≥ 0, got {v}"))
    }
}

/// Parses a float in `[0, 1)` used as momentum.
pub fn parse_momentum(s: &str) -> Result<f64, String> {
    parse_fraction(s)
}

/// Standard output that outlives its reader: once a write fails because the reader went away
/// (`nabla train | head -3`), later writes are dropped instead of failing, so a long job still
/// finishes and saves what it made. Other errors are returned as usual.
pub struct Stdout {
    inner: std::io::StdoutLock<'static>,
    closed: bool,
}

impl Stdout {
    /// Locks standard output.
    pub fn lock() -> Self {
        Self {
            inner: std::io::stdout().lock(),
            closed: false,
        }
    }
}

impl std::io::Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        match self.inner.write(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(buf.len())
            }
            other => other,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.closed {
            return Ok(());
        }
        match self.inner.flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }
}

/// Writes `text` to standard output, returning any error (where `print!` would panic).
pub fn print(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Collapses clap's multi-line error into one line: the error and any tip.
pub fn one_line(rendered: &str) -> String {
    let parts: Vec<&str> = rendered
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("error:") || l.starts_with("tip:"))
        .collect();
    if parts.is_empty() {
        rendered.lines().next().unwrap_or("error").to_string()
    } else {
        format!("{} (see 'nabla --help')", parts.join("; "))
    }
}
