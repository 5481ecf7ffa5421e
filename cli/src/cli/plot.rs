//! Plots of a run (plotters, PNG and SVG): learning curves, confusion matrix, lr schedule;
//! `nabla plot RUN_DIR` redraws them from history.json, `nabla compare RUN_A RUN_B` overlays
//! two runs' curves.
//!
//! Text is drawn with DejaVu Sans embedded in the binary, so plotting needs no system fonts.

use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{Result, anyhow};
use clap::Args;
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use nabla::train::EpochMetrics;

mod confusion;

/// history.json: everything the plots are drawn from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct History {
    /// The run's name (its folder's name).
    pub name: String,
    /// The training data's name.
    pub dataset: String,
    /// Class names, by label.
    pub classes: Vec<String>,
    /// Every epoch's metrics.
    pub epochs: Vec<EpochMetrics>,
    /// The epoch with the lowest validation loss (`None` without a validation set).
    pub best_epoch: Option<usize>,
    /// The epoch at which early stopping ended the run, if it did.
    pub early_stop_epoch: Option<usize>,
    /// `confusion_matrix[true][predicted]` of the final model on the test set.
    pub confusion_matrix: Vec<Vec<usize>>,
    /// `finished`, or `interrupted` when a signal stopped the run (absent in older runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `{trivial: {...}, linear: {...}}`: the baselines' metrics on the same split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baselines: Option<serde_json::Value>,
    /// Training diverged; the model holds the last good weights.
    #[serde(default)]
    pub diverged: bool,
    /// The learning-rate schedule as `nabla train` describes it (`cosine schedule`); absent in
    /// run folders written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
}

/// The plots [`draw_run`] writes for `h`: a regression run has no confusion matrix.
pub fn plot_names(h: &History) -> Vec<&'static str> {
    if h.confusion_matrix.is_empty() || h.confusion_matrix.len() > MAX_PLOTTED_CLASSES {
        vec!["learning_curves", "lr_schedule"]
    } else {
        vec!["learning_curves", "confusion_matrix", "lr_schedule"]
    }
}

impl History {
    /// Reads `dir/history.json`.
    pub fn read(dir: &Path) -> Result<Self> {
        let path = dir.join("history.json");
        if !dir.exists() {
            return Err(nabla::NablaError::Usage(format!(
                "{}: no such folder (give a run folder written by `nabla train`)",
                dir.display()
            ))
            .into());
        }
        if !path.is_file() {
            return Err(nabla::NablaError::Usage(format!(
                "{} is not a run folder: it has no history.json (run folders are written by \
                 `nabla train`)",
                dir.display()
            ))
            .into());
        }
        let bytes = nabla::io::source::read_at_most(&path, 1 << 30, "history.json")?;
        let text = String::from_utf8(bytes)
            .map_err(|e| nabla::NablaError::data(&path, "file", format!("not UTF-8: {e}")))?;
        serde_json::from_str(&text).map_err(|e| {
            nabla::NablaError::data(&path, format!("line {}", e.line()), e.to_string()).into()
        })
    }
}

const FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const SIZE: (u32, u32) = (1200, 500);

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The embedded font is known-good; if registration ever failed, text would be missing
        // but the plots would still be drawn.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

type Res = Result<(), Box<dyn std::error::Error>>;

fn err(e: Box<dyn std::error::Error>) -> anyhow::Error {
    anyhow!("{e}")
}

/// Draws one plot file atomically: into a temporary file beside `path` (same extension, so
/// the backend picks the format), renamed into place when complete.
fn atomic(path: &Path, draw: impl FnOnce(&Path) -> Res) -> Result<()> {
    let mut failed = None;
    let result = nabla::io::output::commit(path, true, |tmp| {
        draw(tmp).map_err(|e| {
            failed = Some(err(e).context(format!("drawing {}", path.display())));
            std::io::Error::other("drawing failed")
        })
    });
    if let Some(e) = failed {
        return Err(e);
    }
    match result {
        Ok(_) => Ok(()),
        Err(nabla::io::output::Committed::Failed(e)) => Err(e.into()),
        Err(nabla::io::output::Committed::Stream(p)) => Err(anyhow!(
            "{}: plots are written as files, not into a device or FIFO",
            p.display()
        )),
    }
}

/// Classes beyond which the confusion matrix is not drawn (the plot would be unreadable and
/// huge); the matrix stays in history.json.
pub const MAX_PLOTTED_CLASSES: usize = 50;

/// Redraws every plot of a run into `dir`.
pub fn draw_run(dir: &Path, h: &History) -> Result<()> {
    register_font();
    let runs = [h];
    atomic(&dir.join("learning_curves.png"), |p| {
        curves(&BitMapBackend::new(p, SIZE).into_drawing_area(), &runs)
    })?;
    atomic(&dir.join("learning_curves.svg"), |p| {
        curves(&SVGBackend::new(p, SIZE).into_drawing_area(), &runs)
    })?;
    // Regression runs have no classes, so no confusion matrix.
    let n = h.confusion_matrix.len();
    if n > 0 && n <= MAX_PLOTTED_CLASSES {
        let layout = confusion::Layout::new(h);
        atomic(&dir.join("confusion_matrix.png"), |p| {
            confusion::draw(
                &BitMapBackend::new(p, layout.size).into_drawing_area(),
                h,
                &layout,
            )
        })?;
        atomic(&dir.join("confusion_matrix.svg"), |p| {
            confusion::draw(
                &SVGBackend::new(p, layout.size).into_drawing_area(),
                h,
                &layout,
            )
        })?;
    }
    atomic(&dir.join("lr_schedule.png"), |p| {
        lr_schedule(&BitMapBackend::new(p, (800, 400)).into_drawing_area(), h)
    })?;
    atomic(&dir.join("lr_schedule.svg"), |p| {
        lr_schedule(&SVGBackend::new(p, (800, 400)).into_drawing_area(), h)
    })?;
    Ok(())
}

const TRAIN: RGBColor = RGBColor(31, 119, 180);
const TEST: RGBColor = RGBColor(255, 127, 14);
const BEST: RGBColor = RGBColor(44, 160, 44);
const STOP: RGBColor = RGBColor(214, 39, 40);
const VAL: RGBColor = RGBColor(148, 103, 189);
/// (train, validation, test) colours per run when runs are overlaid: one hue each, dark to
/// light.
const RUNS: [[RGBColor; 3]; 3] = [
    [
        RGBColor(8, 69, 148),
        RGBColor(66, 146, 198),
        RGBColor(158, 202, 225),
    ],
    [
        RGBColor(166, 54, 3),
        RGBColor(241, 105, 19),
        RGBColor(253, 174, 107),
    ],
    [
        RGBColor(63, 0, 125),
        RGBColor(128, 125, 186),
        RGBColor(188, 189, 220),
    ],
];

/// Learning curves: loss (left) and accuracy (right) per epoch, train solid, test dashed-ish
/// (with point markers); one colour per run when several are overlaid.
fn curves<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, runs: &[&History]) -> Res
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let root = root.titled(&curves_title(runs), ("sans-serif", 26))?;
    let panels = root.split_evenly((1, Panel::for_runs(runs).len()));
    let max_epoch = runs
        .iter()
        .map(|r| r.epochs.len())
        .max()
        .unwrap_or(1)
        .max(2) as f64;
    for (area, panel) in panels.iter().zip(Panel::for_runs(runs)) {
        curve_panel(area, runs, panel, max_epoch)?;
    }
    root.present()?;
    Ok(())
}

/// `Learning curves — NAME (DATASET)`, or `Learning curves — A vs B` for several runs.
fn curves_title(runs: &[&History]) -> String {
    if runs.len() == 1 {
        // A data folder's path is long; its last component names it.
        let dataset = Path::new(&runs[0].dataset)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| runs[0].dataset.clone());
        format!("Learning curves — {} ({dataset})", runs[0].name)
    } else {
        let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
        format!("Learning curves — {}", names.join(" vs "))
    }
}

/// One panel of the learning curves. Classification runs show the loss and accuracy;
/// regression runs, which have no accuracy, the loss and R².
#[derive(Clone, Copy, Debug, PartialEq)]
enum Panel {
    CrossEntropy,
    Mse,
    /// Classification and regression runs overlaid: each run's own loss.
    MixedLoss,
    Accuracy,
    R2,
}

/// Whether any of `runs` is a classification run, and whether any is a regression run.
pub fn kinds(runs: &[&History]) -> (bool, bool) {
    let epochs = || runs.iter().flat_map(|r| r.epochs.iter());
    let classification = epochs().any(|m| m.test_accuracy.is_some());
    let regression = epochs().any(|m| m.test_r2.is_some());
    (classification, regression || !classification)
}

impl Panel {
    /// The panels, left to right: the loss, then accuracy and/or R².
    fn for_runs(runs: &[&History]) -> Vec<Panel> {
        match kinds(runs) {
            (true, true) => vec![Panel::MixedLoss, Panel::Accuracy, Panel::R2],
            (false, _) => vec![Panel::Mse, Panel::R2],
            (true, false) => vec![Panel::CrossEntropy, Panel::Accuracy],
        }
    }

    fn is_loss(self) -> bool {
        matches!(self, Panel::CrossEntropy | Panel::Mse | Panel::MixedLoss)
    }

    /// Series 0 = train, 1 = validation, 2 = test.
    fn value(self, m: &EpochMetrics, series: usize) -> Option<f64> {
        match (self, series) {
            (Panel::CrossEntropy | Panel::Mse | Panel::MixedLoss, 0) => Some(m.train_loss),
            (Panel::CrossEntropy | Panel::Mse | Panel::MixedLoss, 1) => m.val_loss,
            (Panel::CrossEntropy | Panel::Mse | Panel::MixedLoss, _) => m.test_loss,
            // Targets are standardised on the training rows (variance 1), so the training
            // MSE of the epoch gives its R² = 1 − MSE, as training accuracy is read off the
            // epoch's steps.
            (Panel::R2, 0) => m.test_r2.or(m.val_r2).map(|_| 1.0 - m.train_loss),
            (Panel::R2, 1) => m.val_r2,
            (Panel::R2, _) => m.test_r2,
            (Panel::Accuracy, 0) => m.train_accuracy,
            (Panel::Accuracy, 1) => m.val_accuracy,
            (Panel::Accuracy, _) => m.test_accuracy,
        }
    }

    fn caption(self) -> &'static str {
        match self {
            Panel::CrossEntropy => "Loss (cross-entropy)",
            Panel::Mse => "Loss (MSE, standardised target)",
            Panel::MixedLoss => "Loss (cross-entropy / MSE)",
            Panel::Accuracy => "Accuracy",
            Panel::R2 => "R² (coefficient of determination)",
        }
    }

    fn y_desc(self) -> &'static str {
        match self {
            Panel::CrossEntropy | Panel::Mse | Panel::MixedLoss => "loss",
            Panel::Accuracy => "accuracy",
            Panel::R2 => "R²",
        }
    }

    /// Every finite value of every run, as drawn: on a loss panel with `log`, its log10.
    fn drawn_values<'a>(
        self,
        runs: &'a [&History],
        log: bool,
    ) -> impl Iterator<Item = (f64, f64)> + 'a {
        runs.iter()
            .flat_map(|r| r.epochs.iter())
            .flat_map(move |m| (0..3).filter_map(move |s| self.value(m, s).map(|v| (m, v))))
            .map(move |(m, v)| (m.epoch as f64, if log { v.log10() } else { v }))
            .filter(|p| p.1.is_finite())
    }

    /// Whether the loss spans more than a decade, so a log axis shows its whole course.
    fn wants_log(self, runs: &[&History]) -> bool {
        let (lo, hi) = self
            .drawn_values(runs, false)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, v)| {
                (lo.min(v), hi.max(v))
            });
        self.is_loss() && lo > 0.0 && hi / lo > 10.0
    }

    /// The y axis: every finite value of every run with a margin, clamped to what the metric
    /// can be (a loss is ≥ 0, accuracy in [0, 1], R² ≤ 1); with `log`, decades of the loss.
    /// R² starts from the [`r2_floor`] when the first epochs would squash the rest.
    fn y_range(self, runs: &[&History], log: bool) -> (f64, f64) {
        let (lo, hi) = self
            .drawn_values(runs, log)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, v)| {
                (lo.min(v), hi.max(v))
            });
        let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        let lo = match self {
            Panel::R2 => r2_floor(runs).map_or(lo, |floor| lo.max(floor)),
            _ => lo,
        };
        let pad = ((hi - lo) * 0.08).max(1e-3);
        match self {
            _ if log => (lo - pad, hi + pad),
            Panel::R2 => (lo - pad, (hi + pad).min(1.0)),
            Panel::Accuracy => ((lo - pad).max(0.0), (hi + pad).min(1.0)),
            Panel::CrossEntropy | Panel::Mse | Panel::MixedLoss => ((lo - pad).max(0.0), hi + pad),
        }
    }
}

/// Where the R² axis starts when the first epochs lie far below the rest (R² of a barely
/// trained model can be −0.15 while later epochs sit between 0.9 and 0.95): the lowest value of
/// the epochs after the first quarter of the run, if including the earlier ones would more than
/// double the axis' span. `None`: nothing to clip (or fewer than 3 epochs).
fn r2_floor(runs: &[&History]) -> Option<f64> {
    let mut all = (f64::INFINITY, f64::NEG_INFINITY);
    let mut late = f64::INFINITY;
    for run in runs {
        let skip = (run.epochs.len() / 4).max(1);
        if run.epochs.len() < 3 {
            return None;
        }
        for (i, m) in run.epochs.iter().enumerate() {
            for v in (0..3)
                .filter_map(|s| Panel::R2.value(m, s))
                .filter(|v| v.is_finite())
            {
                all = (all.0.min(v), all.1.max(v));
                if i >= skip {
                    late = late.min(v);
                }
            }
        }
    }
    let (lo, hi) = all;
    (late.is_finite() && lo < late && late - lo > hi - late).then_some(late)
}

/// Decimals (at least `min`) that write every tick plotters puts on `lo..hi` (asked for
/// `labels` of them) differently, so no two ticks read the same (0.975 and 0.98 are not both
/// "0.98").
fn tick_decimals(lo: f64, hi: f64, labels: usize, min: usize) -> usize {
    let ticks = RangedCoordf64::from(lo..hi).key_points(labels);
    (min..=12)
        .find(|&d| {
            let text: Vec<String> = ticks.iter().map(|v| format!("{v:.d$}")).collect();
            text.windows(2).all(|w| w[0] != w[1])
        })
        .unwrap_or(12)
}

/// Ticks the y axes ask plotters for.
const Y_LABELS: usize = 10;

/// The legend's corner: the one with the fewest drawn points under where the legend goes
/// (`share` of the plot's width and height), so no curve hides behind it.
fn legend_corner(
    points: impl Iterator<Item = (f64, f64)>,
    x: (f64, f64),
    y: (f64, f64),
    share: (f64, f64),
) -> SeriesLabelPosition {
    let mut counts = [0usize; 4];
    for (px, py) in points {
        let fx = (px - x.0) / (x.1 - x.0).max(1e-12);
        let fy = (py - y.0) / (y.1 - y.0).max(1e-12);
        let (left, right) = (fx <= share.0 + 0.02, fx >= 0.98 - share.0);
        let (low, high) = (fy <= share.1 + 0.02, fy >= 0.98 - share.1);
        for (i, inside) in [high && right, high && left, low && right, low && left]
            .into_iter()
            .enumerate()
        {
            counts[i] += usize::from(inside);
        }
    }
    // Ties go to the first: upper right, as usual.
    match (0..4).min_by_key(|&i| counts[i]).unwrap_or(0) {
        0 => SeriesLabelPosition::UpperRight,
        1 => SeriesLabelPosition::UpperLeft,
        2 => SeriesLabelPosition::LowerRight,
        _ => SeriesLabelPosition::LowerLeft,
    }
}

/// A learning-curve chart: epochs across, the panel's metric up.
type CurveChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One panel: axes, every run's curves and markers, the legend.
fn curve_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    runs: &[&History],
    panel: Panel,
    max_epoch: f64,
) -> Res
where
    DB::ErrorType: 'static,
{
    let log = panel.wants_log(runs);
    let (y0, y1) = panel.y_range(runs, log);
    let caption = if log {
        format!("{}, log scale", panel.caption())
    } else {
        panel.caption().to_string()
    };
    let y_desc = match r2_floor(runs).filter(|_| panel == Panel::R2) {
        Some(floor) => format!("R² (axis from {floor:.2}; earlier epochs lower)"),
        None => panel.y_desc().to_string(),
    };
    let decimals = tick_decimals(y0, y1, Y_LABELS, 2);
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(65)
        .build_cartesian_2d(0.8..max_epoch + 0.2, y0..y1)?;
    let y_label = |y: &f64| {
        if log {
            significant(10f64.powf(*y))
        } else {
            format!("{y:.decimals$}")
        }
    };
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .y_labels(Y_LABELS)
        .axis_desc_style(("sans-serif", 17))
        .label_style(("sans-serif", 14))
        .x_label_formatter(&epoch_label)
        .y_label_formatter(&y_label)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let y_of = |v: f64| if log { v.log10() } else { v };
    for (i, run) in runs.iter().enumerate() {
        let style = RunStyle::new(run, i, runs.len());
        run_curves(&mut chart, run, panel, &style, &y_of)?;
        best_epoch_marker(&mut chart, run, panel, &style, (y0, y1), &y_of)?;
        if let Some(stop) = run.early_stop_epoch {
            early_stop_line(&mut chart, stop, &style, (y0, y1))?;
        }
    }
    // The legend's size as a share of the plot: rows of ~22 px, text of ~8.5 px a character.
    let (entries, longest) = legend_entries(runs, panel);
    let (w, h) = area.dim_in_pixel();
    let plot = (f64::from(w) - 100.0, f64::from(h) - 110.0);
    let share = (
        ((longest as f64 * 8.5 + 45.0) / plot.0.max(1.0)).min(1.0),
        ((entries as f64 * 22.0 + 14.0) / plot.1.max(1.0)).min(1.0),
    );
    let corner = legend_corner(
        panel.drawn_values(runs, log),
        (0.8, max_epoch + 0.2),
        (y0, y1),
        share,
    );
    // Opaque, so neither curves nor marker lines show through it.
    chart
        .configure_series_labels()
        .position(corner)
        .background_style(WHITE.filled())
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 15))
        .draw()?;
    Ok(())
}

/// How many legend entries `panel` gets (every curve, best-epoch marker and early stop), and
/// the longest entry's length in characters.
fn legend_entries(runs: &[&History], panel: Panel) -> (usize, usize) {
    let mut entries = 0;
    let mut longest = 0;
    for r in runs {
        let prefix = if runs.len() > 1 {
            r.name.chars().count() + 2
        } else {
            0
        };
        let curves = (0..3)
            .filter(|&s| r.epochs.iter().any(|m| panel.value(m, s).is_some()))
            .count();
        entries += curves + usize::from(r.best_epoch.is_some());
        longest = longest.max(prefix + 16);
        if r.best_epoch.is_some() {
            longest = longest.max(prefix + "best epoch 100 (lowest validation loss)".len());
        }
        if r.early_stop_epoch.is_some() {
            entries += 1;
            longest = longest.max(prefix + "early stop (epoch 100)".len());
        }
    }
    (entries, longest)
}

/// `x` with two significant digits, as a log axis labels its ticks (`0.032`, `1.5`, `120`).
fn significant(x: f64) -> String {
    if !(x.is_finite() && x > 0.0) {
        return String::new();
    }
    let decimals = (1 - x.log10().floor() as i32).max(0) as usize;
    format!("{x:.decimals$}")
}

/// How one run is drawn: one run has train blue, test orange and a green best-epoch marker;
/// overlaid runs have one hue each (dark for train, light for test) and name themselves in
/// the legend.
struct RunStyle {
    /// Train, validation and test colours.
    colours: [RGBColor; 3],
    best: RGBColor,
    /// `NAME: ` before every legend entry when runs are overlaid.
    prefix: String,
}

impl RunStyle {
    fn new(run: &History, i: usize, runs: usize) -> Self {
        if runs == 1 {
            Self {
                colours: [TRAIN, VAL, TEST],
                best: BEST,
                prefix: String::new(),
            }
        } else {
            let c = RUNS[i % RUNS.len()];
            Self {
                colours: c,
                best: c[0],
                prefix: format!("{}: ", run.name),
            }
        }
    }
}

/// A run's train, validation and test curves (those it has), each a line with point markers.
fn run_curves<DB: DrawingBackend>(
    chart: &mut CurveChart<'_, DB>,
    run: &History,
    panel: Panel,
    style: &RunStyle,
    y_of: &dyn Fn(f64) -> f64,
) -> Res
where
    DB::ErrorType: 'static,
{
    // The R² panel's train curve is read off the training MSE (see [`Panel::value`]).
    let train = match panel {
        Panel::R2 => "train (1 − MSE)",
        _ => "train",
    };
    for (series, name) in [train, "validation", "test"].into_iter().enumerate() {
        let colour = style.colours[series];
        let points: Vec<(f64, f64)> = run
            .epochs
            .iter()
            .filter_map(|m| panel.value(m, series).map(|v| (m.epoch as f64, y_of(v))))
            .filter(|p| p.1.is_finite())
            .collect();
        if points.is_empty() {
            if series == 2 && run.epochs.iter().all(|m| m.test_loss.is_none()) {
                // Say so in the legend rather than leave the reader looking for the curve.
                chart
                    .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
                    .label(format!("{}no test set", style.prefix))
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], colour.mix(0.3))
                    });
            }
            continue;
        }
        thick_line(chart, &points, colour, 3.0)?;
        // The markers carry the legend entry.
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled())))?
            .label(format!("{}{name}", style.prefix))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3))
            });
    }
    Ok(())
}

/// A polyline `width` pixels thick at any slope: each segment a quadrilateral around it, the
/// joints rounded. (plotters' bitmap lines widen only horizontally or vertically, so a steep
/// segment, like the first epoch's drop, came out thinner than a flat one.)
fn thick_line<DB: DrawingBackend>(
    chart: &mut CurveChart<'_, DB>,
    points: &[(f64, f64)],
    colour: RGBColor,
    width: f64,
) -> Res
where
    DB::ErrorType: 'static,
{
    let area = chart.plotting_area();
    let (bx, by) = area.get_base_pixel();
    let pixels: Vec<(f64, f64)> = points
        .iter()
        .map(|p| {
            let (x, y) = chart.backend_coord(p);
            (f64::from(x - bx), f64::from(y - by))
        })
        .collect();
    let canvas = area.strip_coord_spec();
    let half = width / 2.0;
    let r = |x: f64, y: f64| (x.round() as i32, y.round() as i32);
    for w in pixels.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        let len = (x1 - x0).hypot(y1 - y0).max(1e-9);
        let (nx, ny) = (-(y1 - y0) / len * half, (x1 - x0) / len * half);
        canvas.draw(&Polygon::new(
            vec![
                r(x0 + nx, y0 + ny),
                r(x1 + nx, y1 + ny),
                r(x1 - nx, y1 - ny),
                r(x0 - nx, y0 - ny),
            ],
            colour.filled(),
        ))?;
    }
    for &(x, y) in &pixels {
        canvas.draw(&Circle::new(r(x, y), half.round() as i32, colour.filled()))?;
    }
    Ok(())
}

/// A ring on the monitored curve (validation, else test) at the best epoch, with a faint
/// vertical line through it.
fn best_epoch_marker<DB: DrawingBackend>(
    chart: &mut CurveChart<'_, DB>,
    run: &History,
    panel: Panel,
    style: &RunStyle,
    (y0, y1): (f64, f64),
    y_of: &dyn Fn(f64) -> f64,
) -> Res
where
    DB::ErrorType: 'static,
{
    // Only the validation loss picks an epoch: the marker sits on the validation curve.
    let Some((best, y)) = run
        .best_epoch
        .and_then(|b| run.epochs.iter().find(|m| m.epoch == b))
        .and_then(|m| panel.value(m, 1).map(|y| (m, y)))
    else {
        return Ok(());
    };
    let p = (best.epoch as f64, y_of(y));
    let label = format!(
        "{}best epoch ({}, lowest validation loss)",
        style.prefix, best.epoch
    );
    let c_best = style.best;
    chart
        .draw_series([Circle::new(p, 8, c_best.stroke_width(3))])?
        .label(label)
        .legend(move |(x, y)| Circle::new((x + 10, y), 6, c_best.stroke_width(3)));
    chart.draw_series([PathElement::new(
        vec![(p.0, y0), (p.0, y1)],
        c_best.mix(0.35).stroke_width(1),
    )])?;
    Ok(())
}

/// A red vertical line at the epoch early stopping ended the run.
fn early_stop_line<DB: DrawingBackend>(
    chart: &mut CurveChart<'_, DB>,
    stop: usize,
    style: &RunStyle,
    (y0, y1): (f64, f64),
) -> Res
where
    DB::ErrorType: 'static,
{
    let x = stop as f64;
    chart
        .draw_series([PathElement::new(
            vec![(x, y0), (x, y1)],
            STOP.stroke_width(2),
        )])?
        .label(format!("{}early stop (epoch {stop})", style.prefix))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], STOP.stroke_width(2)));
    Ok(())
}

/// A dark-blue → teal → yellow ramp (like viridis) for the heat map.
struct ViridisLike;

impl ViridisLike {
    fn at(f: f64) -> RGBColor {
        let stops = [
            (0.0, (68.0, 1.0, 84.0)),
            (0.25, (59.0, 82.0, 139.0)),
            (0.5, (33.0, 145.0, 140.0)),
            (0.75, (94.0, 201.0, 98.0)),
            (1.0, (253.0, 231.0, 37.0)),
        ];
        let f = f.clamp(0.0, 1.0);
        for w in stops.windows(2) {
            let ((a, ca), (b, cb)) = (w[0], w[1]);
            if f <= b {
                let t = (f - a) / (b - a);
                let mix = |x: f64, y: f64| (x + (y - x) * t).round() as u8;
                return RGBColor(mix(ca.0, cb.0), mix(ca.1, cb.1), mix(ca.2, cb.2));
            }
        }
        RGBColor(253, 231, 37)
    }
}

/// The learning rate in force during each epoch.
fn lr_schedule<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, h: &History) -> Res
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let pts: Vec<(f64, f64)> = h
        .epochs
        .iter()
        .map(|m| (m.epoch as f64, m.learning_rate))
        .collect();
    let hi = pts.iter().map(|p| p.1).fold(0.0f64, f64::max).max(1e-12);
    let max_epoch = (pts.len() as f64).max(2.0);
    let top = hi * 1.15;
    let mut chart = ChartBuilder::on(root)
        .caption(lr_title(h, &pts), ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0.8..max_epoch + 0.2, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("learning rate")
        .axis_desc_style(("sans-serif", 17))
        .label_style(("sans-serif", 14))
        .x_label_formatter(&epoch_label)
        .y_labels(LR_LABELS)
        .y_label_formatter(&|y| lr_label(*y, top))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    chart
        .draw_series(LineSeries::new(pts.clone(), TRAIN.stroke_width(3)))?
        .label("learning rate")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], TRAIN.stroke_width(3)));
    chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, TRAIN.filled())))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.4))
        .label_font(("sans-serif", 15))
        .draw()?;
    root.present()?;
    Ok(())
}

/// Ticks of the learning-rate axis: few, so each reads at a glance.
const LR_LABELS: usize = 6;

/// A learning-rate tick on an axis from 0 to `top`: a plain decimal with just the digits that
/// tell the ticks apart (`0`, `0.0005`, `0.001`), never `1.00e-3` or `0.00e0`.
fn lr_label(y: f64, top: f64) -> String {
    if y.abs() < top * 1e-9 {
        return "0".to_string();
    }
    let decimals = tick_decimals(0.0, top, LR_LABELS, 0);
    let text = format!("{y:.decimals$}");
    match text.contains('.') {
        true => text.trim_end_matches('0').trim_end_matches('.').to_string(),
        false => text,
    }
}

/// `Learning rate — cosine schedule (run NAME)`: the schedule as training described it, or,
/// for run folders that did not record it, whether the rate stayed constant.
fn lr_title(h: &History, pts: &[(f64, f64)]) -> String {
    let schedule = match &h.schedule {
        Some(s) => s.clone(),
        None if pts.windows(2).all(|w| w[0].1 == w[1].1) => "constant rate".to_string(),
        None => "schedule".to_string(),
    };
    format!("Learning rate — {schedule} (run {})", h.name)
}

/// Flags of `nabla plot`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  nabla plot runs/2026-11-27T21-50-02\n  nabla plot runs/first-try"
)]
pub struct PlotArgs {
    /// A run folder written by `nabla train` (holds history.json).
    #[arg(value_name = "RUN_DIR")]
    pub run_dir: PathBuf,
}

/// Runs `nabla plot`.
pub fn run_plot(args: PlotArgs) -> Result<()> {
    let h = History::read(&args.run_dir)?;
    draw_run(&args.run_dir, &h)?;
    super::print(&format!(
        "redrew {}: {} (.png, .svg)\n",
        args.run_dir.display(),
        plot_names(&h).join(", ")
    ))?;
    Ok(())
}

/// Flags of `nabla compare`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  nabla compare runs/sgd runs/adam\n  nabla compare runs/sgd runs/adam --out plots/"
)]
pub struct CompareArgs {
    /// The first run folder.
    #[arg(value_name = "RUN_A")]
    pub run_a: PathBuf,
    /// The second run folder.
    #[arg(value_name = "RUN_B")]
    pub run_b: PathBuf,
    /// Folder for compare.png and compare.svg [default: RUN_A, the first run's folder].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// Runs `nabla compare`.
pub fn run_compare(args: CompareArgs) -> Result<()> {
    register_font();
    let a = History::read(&args.run_a)?;
    let mut b = History::read(&args.run_b)?;
    if a.name == b.name {
        b.name += " (2)";
    }
    let runs = [&a, &b];
    if let Some(warning) = mixed_warning(&runs) {
        eprintln!("warning: {warning}");
    }
    // Never the current folder unasked (it is often the checkout): the first run's folder.
    let out = args.out.clone().unwrap_or_else(|| args.run_a.clone());
    nabla::io::output::check_folder(&out)?;
    let png = out.join("compare.png");
    atomic(&png, |p| {
        curves(&BitMapBackend::new(p, SIZE).into_drawing_area(), &runs)
    })?;
    let svg = out.join("compare.svg");
    atomic(&svg, |p| {
        curves(&SVGBackend::new(p, SIZE).into_drawing_area(), &runs)
    })?;
    super::print(&format!("wrote {} and {}\n", png.display(), svg.display()))?;
    Ok(())
}

/// A warning when classification and regression runs are overlaid: their losses
/// (cross-entropy, MSE of a standardised target) are not on one scale.
fn mixed_warning(runs: &[&History]) -> Option<String> {
    let is_regression = |r: &History| kinds(&[r]) == (false, true);
    let (reg, class): (Vec<&History>, Vec<&History>) =
        runs.iter().copied().partition(|r| is_regression(r));
    if reg.is_empty() || class.is_empty() {
        return None;
    }
    let names = |rs: &[&History]| {
        rs.iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    Some(format!(
        "comparing regression run {} with classification run {}: the loss panel overlays MSE \
         and cross-entropy, which are not comparable; accuracy and R² get panels of their own",
        names(&reg),
        names(&class)
    ))
}

/// An epoch axis label: whole epochs only (ticks between epochs stay unlabelled, so no label
/// repeats).
fn epoch_label(x: &f64) -> String {
    if (x - x.round()).abs() < 1e-6 {
        format!("{x:.0}")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(
        e: usize,
        train_loss: f64,
        acc: (Option<f64>, Option<f64>),
        r2: Option<f64>,
    ) -> EpochMetrics {
        EpochMetrics {
            epoch: e,
            train_loss,
            train_accuracy: acc.0,
            val_loss: None,
            val_accuracy: None,
            val_r2: None,
            test_loss: Some(0.1),
            test_accuracy: acc.1,
            test_mae: None,
            test_rmse: None,
            test_r2: r2,
            seconds: 0.0,
            learning_rate: 1e-3,
        }
    }

    fn history(epochs: Vec<EpochMetrics>) -> History {
        History {
            name: "t".into(),
            dataset: "d".into(),
            classes: Vec::new(),
            epochs,
            best_epoch: None,
            early_stop_epoch: None,
            confusion_matrix: Vec::new(),
            status: None,
            baselines: None,
            diverged: false,
            schedule: None,
        }
    }

    fn labels(lo: f64, hi: f64, n: usize, decimals: usize) -> Vec<String> {
        RangedCoordf64::from(lo..hi)
            .key_points(n)
            .iter()
            .map(|v| format!("{v:.decimals$}"))
            .collect()
    }

    fn distinct(labels: &[String]) -> bool {
        labels.windows(2).all(|w| w[0] != w[1])
    }

    #[test]
    fn a_one_epoch_runs_accuracy_ticks_are_distinct() {
        // Issue 30.10: train 0.9749, test 0.9805 after one epoch.
        let h = history(vec![epoch(1, 0.1, (Some(0.9749), Some(0.9805)), None)]);
        let (lo, hi) = Panel::Accuracy.y_range(&[&h], false);
        assert!(
            !distinct(&labels(lo, hi, Y_LABELS, 2)),
            "the old labels repeated"
        );
        let d = tick_decimals(lo, hi, Y_LABELS, 2);
        let text = labels(lo, hi, Y_LABELS, d);
        assert!(text.len() >= 3 && distinct(&text), "{text:?}");
        // A wide range keeps two decimals.
        assert_eq!(tick_decimals(0.0, 1.0, Y_LABELS, 2), 2);
    }

    #[test]
    fn the_r2_axis_is_clipped_to_the_informative_range_and_has_a_train_curve() {
        let r2 = [-0.15, 0.62, 0.88, 0.91, 0.93, 0.94, 0.945, 0.95];
        let epochs = r2
            .iter()
            .enumerate()
            .map(|(i, &r)| epoch(i + 1, 1.0 - r + 0.01, (None, None), Some(r)))
            .collect();
        let h = history(epochs);
        let floor = r2_floor(&[&h]).expect("epoch 1 squashes the rest");
        // The lowest value after the first quarter (2 epochs): epoch 3's train R², 0.87.
        assert!((floor - 0.87).abs() < 1e-9, "{floor}");
        let (lo, hi) = Panel::R2.y_range(&[&h], false);
        assert!(lo > 0.8 && hi <= 1.0, "{lo}..{hi}");
        // The train curve: 1 − the epoch's MSE on standardised targets.
        let train = Panel::R2.value(&h.epochs[7], 0).unwrap();
        assert!((train - 0.94).abs() < 1e-9, "{train}");
        // Curves without an outlier are not clipped.
        let even = history(
            (1..=5)
                .map(|e| epoch(e, 0.2, (None, None), Some(0.5 + 0.05 * e as f64)))
                .collect(),
        );
        assert_eq!(r2_floor(&[&even]), None);
    }

    #[test]
    fn lr_ticks_are_plain_distinct_decimals() {
        let top = 1e-3 * 1.15;
        let ticks: Vec<String> = RangedCoordf64::from(0.0..top)
            .key_points(LR_LABELS)
            .into_iter()
            .map(|y| lr_label(y, top))
            .collect();
        assert!(ticks.len() >= 3 && distinct(&ticks), "{ticks:?}");
        assert_eq!(ticks[0], "0");
        assert!(ticks.iter().all(|t| !t.contains('e')), "{ticks:?}");
        assert!(ticks.contains(&"0.001".to_string()), "{ticks:?}");
    }
}
