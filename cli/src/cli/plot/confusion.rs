//! The confusion matrix as a heat map, laid out in pixels from measured text: class names are
//! never cut or overlapped (the margins grow to the longest name; column names too wide for
//! their cell are turned upright), the axis titles sit outside the names, the colour follows
//! the count on a log scale (so 1 error and 14 errors differ even beside 1,000 correct ones),
//! zero cells stay white, a colour bar reads the scale, and counts are written in the cells
//! that hold them.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontTransform;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{History, Res, ViridisLike};

const TICK: f64 = 14.0;
const AXIS: f64 = 17.0;
const TITLE: f64 = 21.0;
const PAD: i32 = 12;
const BAR: i32 = 22;
/// A colour-bar tick mark's length, and the space between its end and its label: the label's
/// first glyph may start left of its origin, and a mark touching a "1" reads as "−1".
const BAR_TICK: i32 = 4;
const BAR_GAP: i32 = 7;

/// Width and height of `text` in `size`-point sans-serif, in pixels.
fn measure(text: &str, size: f64) -> (i32, i32) {
    super::register_font();
    ("sans-serif", size)
        .into_font()
        .box_size(text)
        .map(|(w, h)| (w as i32, h as i32))
        // Without the font, a generous estimate keeps the layout safe.
        .unwrap_or((
            text.chars().count() as i32 * size as i32 * 7 / 10,
            size as i32,
        ))
}

/// Where everything goes, computed from the class names and counts before drawing.
pub struct Layout {
    n: usize,
    cell: i32,
    /// Column names drawn upright (they are wider than a cell).
    upright: bool,
    /// Left edge of the matrix.
    left: i32,
    /// Top edge of the matrix.
    top: i32,
    /// Height of the column-name band under the matrix.
    x_labels: i32,
    max: usize,
    title: String,
    subtitle: String,
    /// The whole picture.
    pub size: (u32, u32),
}

impl Layout {
    /// The layout for `h`'s matrix.
    pub fn new(h: &History) -> Self {
        let n = h.confusion_matrix.len().max(1);
        let names: Vec<String> = (0..n).map(|i| name(h, i)).collect();
        let max = h
            .confusion_matrix
            .iter()
            .flatten()
            .copied()
            .max()
            .unwrap_or(0);
        let cell = (720 / n as i32).clamp(26, 84);
        let widest = names.iter().map(|s| measure(s, TICK).0).max().unwrap_or(0);
        let text_h = measure("Ag", TICK).1;
        let upright = widest > cell - 6;
        let x_labels = if upright { widest + 8 } else { text_h + 8 };
        let axis_h = measure("true class", AXIS).1;
        let (title, subtitle) = titles(h);
        let title_h = measure(&title, TITLE).1;
        let left = PAD + axis_h + PAD + widest + 8;
        let top = PAD + title_h + 6 + measure(&subtitle, TICK).1 + PAD;
        let bar_labels = bar_ticks(max)
            .iter()
            .map(|t| measure(&t.to_string(), TICK).0)
            .max()
            .unwrap_or(0);
        let matrix = cell * n as i32;
        let width = (left + matrix + PAD * 2 + bar_tick(0).2 + bar_labels + PAD)
            .max(measure(&title, TITLE).0 + 2 * PAD)
            .max(measure(&subtitle, TICK).0 + 2 * PAD);
        let height = top + matrix + 6 + x_labels + 6 + axis_h + PAD;
        Self {
            n,
            cell,
            upright,
            left,
            top,
            x_labels,
            max,
            title,
            subtitle,
            size: (width as u32, height as u32),
        }
    }
}

fn name(h: &History, i: usize) -> String {
    h.classes.get(i).cloned().unwrap_or_else(|| i.to_string())
}

/// The title (samples, accuracy) and the line saying how to read the colours.
fn titles(h: &History) -> (String, String) {
    let m = &h.confusion_matrix;
    let total: usize = m.iter().flatten().sum();
    let correct: usize = (0..m.len())
        .map(|i| m[i].get(i).copied().unwrap_or(0))
        .sum();
    let title = match total {
        0 => "Confusion matrix — no test set".to_string(),
        _ => format!(
            "Confusion matrix — {total} test samples, {:.1}% correct",
            100.0 * correct as f64 / total as f64
        ),
    };
    (
        title,
        "rows: true class, columns: predicted; colour: count (log scale), white: 0".to_string(),
    )
}

/// Where a count sits on the colour scale: `ln(1 + count) / ln(1 + max)`.
pub fn shade(count: usize, max: usize) -> f64 {
    if max == 0 {
        return 0.0;
    }
    (count as f64).ln_1p() / (max as f64).ln_1p()
}

/// The colour bar's labels: 1, 10, 100, ... up to the largest count, and the largest count.
fn bar_ticks(max: usize) -> Vec<usize> {
    let mut ticks: Vec<usize> = std::iter::successors(Some(1usize), |t| t.checked_mul(10))
        .take_while(|&t| t <= max)
        .collect();
    if max > 0 && ticks.last() != Some(&max) {
        // The largest count, unless it would crowd the decade below it.
        if ticks
            .last()
            .is_some_and(|&t| shade(max, max) - shade(t, max) < 0.08)
        {
            ticks.pop();
        }
        ticks.push(max);
    }
    ticks
}

fn font(size: f64) -> TextStyle<'static> {
    ("sans-serif", size).into_font().color(&BLACK)
}

/// Draws the matrix of `h` with `layout` on `root`.
pub fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, h: &History, l: &Layout) -> Res
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (width, _) = l.size;
    let centre = |size: f64| font(size).pos(Pos::new(HPos::Center, VPos::Top));
    root.draw(&Text::new(
        l.title.clone(),
        (width as i32 / 2, PAD),
        centre(TITLE),
    ))?;
    root.draw(&Text::new(
        l.subtitle.clone(),
        (width as i32 / 2, PAD + measure(&l.title, TITLE).1 + 6),
        centre(TICK).color(&BLACK.mix(0.7)),
    ))?;
    cells(root, h, l)?;
    labels(root, h, l)?;
    colour_bar(root, l)?;
    root.present()?;
    Ok(())
}

/// The cells, each with its count when the count fits.
fn cells<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, h: &History, l: &Layout) -> Res
where
    DB::ErrorType: 'static,
{
    let size = (f64::from(l.cell) * 0.32).clamp(10.0, 18.0);
    for (t, row) in h.confusion_matrix.iter().enumerate() {
        for (p, &count) in row.iter().enumerate() {
            let x = l.left + p as i32 * l.cell;
            let y = l.top + t as i32 * l.cell;
            let f = shade(count, l.max);
            let fill = if count == 0 {
                WHITE
            } else {
                ViridisLike::at(f)
            };
            root.draw(&Rectangle::new(
                [(x, y), (x + l.cell, y + l.cell)],
                fill.filled(),
            ))?;
            root.draw(&Rectangle::new(
                [(x, y), (x + l.cell, y + l.cell)],
                BLACK.mix(0.12).stroke_width(1),
            ))?;
            let text = count.to_string();
            let (tw, th) = measure(&text, size);
            if tw <= l.cell - 4 && th <= l.cell - 2 {
                let colour = if count == 0 {
                    BLACK.mix(0.35)
                } else if f > 0.6 {
                    BLACK.mix(1.0)
                } else {
                    WHITE.mix(1.0)
                };
                let style = font(size)
                    .color(&colour)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                root.draw(&Text::new(text, (x + l.cell / 2, y + l.cell / 2), style))?;
            }
        }
    }
    Ok(())
}

/// Class names beside the rows and under the columns, and the two axis titles outside them.
fn labels<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, h: &History, l: &Layout) -> Res
where
    DB::ErrorType: 'static,
{
    let matrix = l.cell * l.n as i32;
    for i in 0..l.n {
        let text = name(h, i);
        let mid = i as i32 * l.cell + l.cell / 2;
        let row_style = font(TICK).pos(Pos::new(HPos::Right, VPos::Center));
        root.draw(&Text::new(
            text.clone(),
            (l.left - 6, l.top + mid),
            row_style,
        ))?;
        let below = l.top + matrix + 6;
        if l.upright {
            // Turned a quarter left, the name ends just under its column and reads upwards.
            let style = font(TICK)
                .transform(FontTransform::Rotate270)
                .pos(Pos::new(HPos::Right, VPos::Center));
            root.draw(&Text::new(text, (l.left + mid, below), style))?;
        } else {
            let style = font(TICK).pos(Pos::new(HPos::Center, VPos::Top));
            root.draw(&Text::new(text, (l.left + mid, below), style))?;
        }
    }
    let x_title = font(AXIS).pos(Pos::new(HPos::Center, VPos::Top));
    root.draw(&Text::new(
        "predicted class",
        (l.left + matrix / 2, l.top + matrix + 6 + l.x_labels + 6),
        x_title,
    ))?;
    let y_title = font(AXIS)
        .transform(FontTransform::Rotate270)
        .pos(Pos::new(HPos::Center, VPos::Top));
    root.draw(&Text::new("true class", (PAD, l.top + matrix / 2), y_title))?;
    Ok(())
}

/// The colour bar right of the matrix: the log scale from 1 to the largest count.
fn colour_bar<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, l: &Layout) -> Res
where
    DB::ErrorType: 'static,
{
    let matrix = l.cell * l.n as i32;
    let x = l.left + matrix + PAD * 2;
    let (top, bottom) = (l.top, l.top + matrix);
    let span = (bottom - top).max(1);
    // The bar runs from a count of 1 (its bottom) to the largest count (its top).
    let low = shade(1, l.max).min(1.0);
    let height = |f: f64| ((f - low) / (1.0 - low).max(1e-9)).clamp(0.0, 1.0);
    for py in top..bottom {
        let f = low + (1.0 - low) * f64::from(bottom - py) / f64::from(span);
        root.draw(&Rectangle::new(
            [(x, py), (x + BAR, py + 1)],
            ViridisLike::at(f).filled(),
        ))?;
    }
    root.draw(&Rectangle::new(
        [(x, top), (x + BAR, bottom)],
        BLACK.mix(0.5).stroke_width(1),
    ))?;
    let (mark_from, mark_to, label_x) = bar_tick(x);
    for t in bar_ticks(l.max) {
        let y = bottom - (height(shade(t, l.max)) * f64::from(span)).round() as i32;
        root.draw(&PathElement::new(
            vec![(mark_from, y), (mark_to, y)],
            BLACK.stroke_width(1),
        ))?;
        let style = font(TICK).pos(Pos::new(HPos::Left, VPos::Center));
        root.draw(&Text::new(t.to_string(), (label_x, y), style))?;
    }
    Ok(())
}

/// For a colour bar whose left edge is at `x`: where a tick mark starts and ends, and where
/// its label starts.
fn bar_tick(x: i32) -> (i32, i32, i32) {
    let from = x + BAR;
    (from, from + BAR_TICK, from + BAR_TICK + BAR_GAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(classes: &[&str], m: Vec<Vec<usize>>) -> History {
        History {
            name: "t".into(),
            dataset: "d".into(),
            classes: classes.iter().map(|s| s.to_string()).collect(),
            epochs: Vec::new(),
            best_epoch: None,
            early_stop_epoch: None,
            confusion_matrix: m,
            status: None,
            baselines: None,
            diverged: false,
            schedule: None,
        }
    }

    #[test]
    fn long_names_grow_the_margins_instead_of_being_cut() {
        let short = Layout::new(&history(&["a", "b", "c"], vec![vec![1; 3]; 3]));
        let long_names = [
            "Iris-setosa-subspecies",
            "Iris-versicolor",
            "Iris-virginica",
        ];
        let long = Layout::new(&history(&long_names, vec![vec![1; 3]; 3]));
        let widest = measure(long_names[0], TICK).0;
        // Row names fit left of the matrix, right of the "true class" title.
        let title_h = measure("true class", AXIS).1;
        assert!(
            long.left - 6 - widest >= PAD + title_h,
            "row names overlap the axis title"
        );
        assert!(long.left > short.left);
        // Column names wider than a cell are turned upright, in a band as tall as the widest.
        assert!(long.upright && !short.upright);
        assert!(long.x_labels >= widest);
    }

    #[test]
    fn small_error_counts_get_distinct_colours() {
        // MNIST-like: ~1,000 correct per class, errors of 1 to 14.
        let max = 1_100;
        let (one, two, fourteen) = (shade(1, max), shade(2, max), shade(14, max));
        assert!(
            two - one > 0.05 && fourteen - two > 0.15,
            "{one} {two} {fourteen}"
        );
        assert_ne!(ViridisLike::at(one), ViridisLike::at(fourteen));
        let ticks = bar_ticks(1_100);
        assert_eq!(ticks[..3], [1, 10, 100]);
        assert_eq!(ticks.last(), Some(&1_100));
        assert_eq!(bar_ticks(0), Vec::<usize>::new());
    }

    #[test]
    fn colour_bar_marks_keep_clear_of_their_labels() {
        // A mark touching its label makes "1" and "10" read as "−1" and "−10" (issue 30.9):
        // at least 6 px of white between the mark's end and the label's origin.
        let (from, to, label) = bar_tick(100);
        assert!(from < to, "{from} {to}");
        assert!(
            label - to >= 6,
            "mark ends at {to}, label starts at {label}"
        );
    }
}
