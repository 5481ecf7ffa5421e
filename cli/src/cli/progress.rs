//! What `nabla train` prints per epoch, fitted to the terminal: the epoch summary line and the
//! progress bar's template and message. Piped output gets the full line; on a terminal every
//! line fits its width (shorter labels, then fewer fields), so nothing wraps.

use nabla::train::EpochMetrics;

/// The terminal's width in columns, when standard output is one.
pub fn terminal_width() -> Option<usize> {
    console::Term::stdout()
        .size_checked()
        .map(|(_, columns)| usize::from(columns))
        .filter(|&c| c > 0)
}

/// `line` as a terminal shows it without wrapping mid-word: broken at spaces into lines that
/// fit its width, continued with a two-space indent. Piped output is left whole.
pub fn fit_terminal(line: String) -> String {
    use std::io::IsTerminal;
    if !std::io::stdout().is_terminal() {
        return line;
    }
    match terminal_width() {
        Some(width) => wrap(&line, width),
        None => line,
    }
}

/// `line` broken at spaces so no piece is wider than `width` (a word longer than that stays
/// whole), pieces after the first indented by two spaces.
pub fn wrap(line: &str, width: usize) -> String {
    let mut out = String::new();
    let mut current = String::new();
    for word in line.split(' ') {
        let len = current.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width && current.trim() != "" {
            out += current.trim_end();
            out.push('\n');
            current = String::from("  ");
        } else if len > 0 {
            current.push(' ');
        }
        current += word;
    }
    out += &current;
    out
}

/// One field of the epoch line: its full and short label, the value, and how much it matters
/// (fields are dropped highest `drop_order` first when even short labels do not fit).
struct Field {
    full: &'static str,
    short: &'static str,
    value: String,
    drop_order: u8,
}

impl Field {
    fn new(full: &'static str, short: &'static str, value: String, drop_order: u8) -> Self {
        Self {
            full,
            short,
            value,
            drop_order,
        }
    }

    fn render(&self, short: bool) -> String {
        let label = if short { self.short } else { self.full };
        if label.is_empty() {
            self.value.clone()
        } else {
            format!("{label} {}", self.value)
        }
    }
}

/// An epoch's fields, in printing order.
fn fields(m: &EpochMetrics, epochs: usize) -> Vec<Field> {
    let width = epochs.to_string().len();
    let mut f = vec![Field::new(
        "epoch",
        "ep",
        format!("{:>width$}/{epochs}", m.epoch),
        0,
    )];
    f.push(Field::new(
        "train loss",
        "loss",
        format!("{:.4}", m.train_loss),
        4,
    ));
    if let Some(a) = m.train_accuracy {
        f.push(Field::new("train acc", "acc", format!("{a:.4}"), 5));
    }
    if let Some(l) = m.val_loss {
        f.push(Field::new("val loss", "v.loss", format!("{l:.4}"), 3));
    }
    if let Some(a) = m.val_accuracy {
        f.push(Field::new("val acc", "v.acc", format!("{a:.4}"), 2));
    }
    if let Some(r) = m.val_r2 {
        f.push(Field::new("val R²", "v.R²", format!("{r:.4}"), 2));
    }
    if let Some(l) = m.test_loss {
        f.push(Field::new("test loss", "t.loss", format!("{l:.4}"), 3));
    }
    if let Some(a) = m.test_accuracy {
        f.push(Field::new("test acc", "t.acc", format!("{a:.4}"), 1));
    }
    if let (Some(r), Some(e)) = (m.test_r2, m.test_rmse) {
        f.push(Field::new("test R²", "t.R²", format!("{r:.4}"), 1));
        f.push(Field::new("test RMSE", "t.RMSE", format!("{e:.4}"), 6));
    }
    f.push(Field::new(
        "lr",
        "lr",
        format!("{:.3e}", m.learning_rate),
        7,
    ));
    f.push(Field::new("", "", format!("{:.2}s", m.seconds), 8));
    f
}

/// One epoch's summary: losses, accuracies, R², the rate in force and the time. With `width`
/// (a terminal), the longest form that fits: full labels, then short labels (`t.loss`), then
/// without the least important fields (time, lr, ...); a terminal narrower than the shortest
/// form gets that form cut at its width, never a wrapped line.
pub fn epoch_line(m: &EpochMetrics, epochs: usize, width: Option<usize>) -> String {
    let mut f = fields(m, epochs);
    let join = |f: &[Field], short: bool, sep: &str| {
        f.iter()
            .map(|x| x.render(short))
            .collect::<Vec<_>>()
            .join(sep)
    };
    let full = join(&f, false, "  ");
    let Some(width) = width else {
        return full;
    };
    let fits = |s: &str| s.chars().count() <= width;
    if fits(&full) {
        return full;
    }
    loop {
        let short = join(&f, true, " ");
        if fits(&short) {
            return short;
        }
        // Drop the least important field left; the epoch number always stays.
        let Some(worst) = (1..f.len()).max_by_key(|&i| f[i].drop_order) else {
            return short.chars().take(width).collect();
        };
        if f.len() <= 2 {
            return short.chars().take(width).collect();
        }
        f.remove(worst);
    }
}

/// The progress bar's template for a terminal `width` columns wide: the bar takes what the
/// text leaves, and at least 10 columns.
pub fn bar_template(width: Option<usize>) -> &'static str {
    match width {
        Some(w) if w < 80 => "{prefix} [{wide_bar:.cyan/blue}] {pos}/{len} {msg}",
        _ => "epoch {prefix} [{wide_bar:.cyan/blue}] {pos}/{len} it  {msg}",
    }
}

/// The text beside the bar: running loss, speed and the time left, shortened at narrow widths.
pub fn bar_message(running_loss: f64, rate: f64, eta_seconds: f64, width: Option<usize>) -> String {
    let eta = eta(eta_seconds);
    match width {
        Some(w) if w < 80 => format!("loss {running_loss:.4} ETA {eta}"),
        _ => format!("loss {running_loss:.4}  {rate:.0} samples/s  ETA {eta}"),
    }
}

/// Time left: tenths of a second below 10 s (`0.7s`), whole seconds below a minute, then
/// minutes and seconds (`2m05s`).
pub fn eta(seconds: f64) -> String {
    let s = if seconds.is_finite() {
        seconds.max(0.0)
    } else {
        0.0
    };
    if s < 10.0 {
        format!("{s:.1}s")
    } else if s < 60.0 {
        format!("{s:.0}s")
    } else {
        let whole = s.round() as u64;
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(val: bool) -> EpochMetrics {
        let mut m = serde_json::json!({
            "epoch": 3, "train_loss": 0.123456, "train_accuracy": 0.9876,
            "test_loss": 0.1224, "test_accuracy": 0.9611, "learning_rate": 1e-3, "seconds": 0.0123
        });
        if val {
            m["val_loss"] = 0.2.into();
            m["val_accuracy"] = 0.95.into();
        }
        serde_json::from_value(m).expect("valid epoch metrics")
    }

    #[test]
    fn piped_output_keeps_the_full_line() {
        let line = epoch_line(&metrics(false), 30, None);
        assert_eq!(
            line,
            "epoch  3/30  train loss 0.1235  train acc 0.9876  test loss 0.1224  test acc 0.9611  lr 1.000e-3  0.01s"
        );
    }

    #[test]
    fn every_line_fits_the_terminal() {
        for val in [false, true] {
            let m = metrics(val);
            for width in [40, 60, 80, 100, 120, 200] {
                let line = epoch_line(&m, 30, Some(width));
                assert!(
                    line.chars().count() <= width,
                    "{width} columns: {line:?} is {} long",
                    line.chars().count()
                );
                // The epoch and the test accuracy stay, whole (no number is ever cut).
                assert!(line.starts_with("ep"), "{line}");
                assert!(
                    line.contains("t.acc 0.9611") || width >= 100,
                    "{width}: {line}"
                );
                assert!(line.contains("0.9611"), "{width}: {line}");
            }
        }
        // At 100 columns the full form (103 characters with validation) gives way to short labels.
        let at_100 = epoch_line(&metrics(true), 30, Some(100));
        assert!(at_100.contains("t.loss 0.1224"), "{at_100}");
        // At 60 the least important fields go, the test metrics stay.
        let at_60 = epoch_line(&metrics(false), 30, Some(60));
        assert!(at_60.contains("t.acc 0.9611"), "{at_60}");
        assert!(!at_60.contains("lr"), "{at_60}");
    }

    #[test]
    fn long_lines_break_at_spaces_to_fit() {
        let line = "diagnosis: underfitting — the training loss still fell 42 % in the last epoch";
        let wrapped = wrap(line, 30);
        assert!(
            wrapped.lines().all(|l| l.chars().count() <= 30),
            "{wrapped}"
        );
        assert!(wrapped.lines().skip(1).all(|l| l.starts_with("  ")));
        assert_eq!(
            wrapped.split_whitespace().collect::<Vec<_>>(),
            line.split_whitespace().collect::<Vec<_>>()
        );
        assert_eq!(wrap("short", 30), "short");
    }

    #[test]
    fn eta_is_sub_second_when_short() {
        assert_eq!(eta(0.74), "0.7s");
        assert_eq!(eta(9.96), "10.0s");
        assert_eq!(eta(42.4), "42s");
        assert_eq!(eta(125.0), "2m05s");
        assert_eq!(eta(f64::NAN), "0.0s");
    }

    #[test]
    fn bar_text_fits_narrow_terminals() {
        let msg = bar_message(0.1234, 25_000.0, 0.4, Some(60));
        assert_eq!(msg, "loss 0.1234 ETA 0.4s");
        // Prefix ` 3/30`, brackets, `45/45` and the message leave the bar 20+ of 60 columns.
        let text = format!(" 3/30 [] 45/45 {msg}");
        assert!(text.chars().count() <= 40, "{text}");
        assert!(!bar_template(Some(60)).contains("epoch"));
    }
}
