//! The fit verdict: reads the learning curves and says whether the run underfits, overfits,
//! is unstable or fits well, which epoch was best, and what to try next.
//!
//! Only training and validation curves are read (the test set is reported, never consulted).
//! With a validation set the monitored curve is the validation loss; without one the verdict
//! rests on the training curve alone and says so, and there is no best epoch. Rules, in order:
//! - **unstable**: the training loss ended above where training starts (ln C for C classes,
//!   else the first epoch's loss): the steps are too large. The advice is a lower learning
//!   rate with a value, never a higher one;
//! - **overfitting**: the validation loss has risen for at least 3 epochs after its best epoch
//!   to more than 10 % above its minimum while the training loss kept falling; or (for
//!   classification) training accuracy is above 0.98 while validation accuracy trails it by
//!   more than 0.08;
//! - **underfitting** (only while the validation loss is not rising): training accuracy below
//!   0.90, or the training loss still fell by more than 5 % (and 0.01) over the last epoch with
//!   training accuracy (classification) below 0.98;
//! - **undecided** after a single epoch when no rule above applies: one point is no curve, so
//!   the advice is to train for more epochs;
//! - **good** otherwise.
//!
//! Numbers are quoted with enough digits to differ ([`pair`]), and a suggestion never names a
//! setting that is already on ([`Context`]).

use serde::{Deserialize, Serialize};

use super::fit::{EpochMetrics, lower_lr};
use crate::error::{Mention, Message, Setting};

/// Under-, over- or well fitted, or unstable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The model has not learned what it could.
    Underfitting,
    /// The model learned the training set at the expense of unseen data.
    Overfitting,
    /// The training loss rose above where it started: the learning rate is too high.
    Unstable,
    /// Neither.
    Good,
    /// Too little history to judge (a single epoch and no rule above applies).
    Undecided,
}

/// The verdict with the facts behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// The verdict.
    pub verdict: Verdict,
    /// The epoch with the lowest validation loss (from 1); `None` without a validation set.
    pub best_epoch: Option<usize>,
    /// Which curve was monitored: `"val_loss"`, or `"train_loss"` without a validation set.
    pub monitored: String,
    /// Why, in one sentence with the numbers.
    pub reason: String,
    /// What to try next. The settings it names are [`Mention`]s, so each front end words them
    /// its own way ([`Message::render`]).
    pub suggestion: Message,
}

/// What the run already does, so suggestions do not repeat it, and where its loss starts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Context {
    /// Early stopping is on (with a validation set).
    pub early_stopping: bool,
    /// Dropout is above 0.
    pub dropout: bool,
    /// Weight decay is above 0.
    pub weight_decay: bool,
    /// The loss before training: ln C for cross-entropy over C classes; `None`: the first
    /// epoch's training loss stands for it.
    pub start_loss: Option<f64>,
}

/// Diagnoses a run from its per-epoch metrics knowing nothing of its settings; `None` for an
/// empty history.
pub fn diagnose(history: &[EpochMetrics]) -> Option<Diagnosis> {
    diagnose_with(history, &Context::default())
}

/// Diagnoses a run from its per-epoch metrics and what it already does; `None` for an empty
/// history.
pub fn diagnose_with(history: &[EpochMetrics], context: &Context) -> Option<Diagnosis> {
    let curves = Curves::read(history, *context)?;
    let finding = unstable(&curves)
        .or_else(|| rising_loss(&curves))
        .or_else(|| accuracy_gap(&curves))
        .or_else(|| low_accuracy(&curves))
        .or_else(|| still_falling(&curves))
        .or_else(|| too_early(&curves))
        .unwrap_or_else(|| levelled_off(&curves));
    let mut reason = finding.reason;
    if curves.val.is_none() && finding.verdict != Verdict::Undecided {
        reason += " (judged on the training curve alone: there is no validation set)";
    }
    Some(Diagnosis {
        verdict: finding.verdict,
        best_epoch: curves.val.as_ref().map(|v| v.best_epoch),
        monitored: if curves.val.is_some() {
            "val_loss"
        } else {
            "train_loss"
        }
        .to_string(),
        reason,
        suggestion: finding.suggestion,
    })
}

/// `a` and `b` written with enough digits to tell them apart (4 decimals, or 3 significant
/// digits in scientific notation below 0.001, more when they would read the same).
pub fn pair(a: f64, b: f64) -> (String, String) {
    let mut digits = 4;
    loop {
        let (x, y) = (number(a, digits), number(b, digits));
        if x != y || a == b || digits >= 12 {
            return (x, y);
        }
        digits += 1;
    }
}

/// `v` with `digits` decimals, or `digits − 2` in scientific notation when tiny or huge.
pub fn number(v: f64, digits: usize) -> String {
    if v != 0.0 && v.is_finite() && !(1e-3..1e6).contains(&v.abs()) {
        format!("{v:.*e}", digits.saturating_sub(2))
    } else {
        format!("{v:.digits$}")
    }
}

/// The validation curve's facts.
struct Val {
    /// The epoch (from 1) with the lowest validation loss (the first, on a tie), and that loss.
    best_epoch: usize,
    best: f64,
    /// The validation loss at the last epoch.
    end: f64,
}

/// What the rules read off the history.
struct Curves<'a> {
    history: &'a [EpochMetrics],
    last: &'a EpochMetrics,
    /// `None` unless every epoch has a validation loss.
    val: Option<Val>,
    context: Context,
}

impl<'a> Curves<'a> {
    fn read(history: &'a [EpochMetrics], context: Context) -> Option<Self> {
        let last = history.last()?;
        let val =
            history
                .iter()
                .map(|m| m.val_loss)
                .collect::<Option<Vec<f64>>>()
                .map(|curve| {
                    let (i, best) = curve.iter().copied().enumerate().fold(
                        (0, f64::INFINITY),
                        |acc, (i, v)| if v < acc.1 { (i, v) } else { acc },
                    );
                    Val {
                        best_epoch: i + 1,
                        best,
                        end: curve[curve.len() - 1],
                    }
                });
        Some(Curves {
            history,
            last,
            val,
            context,
        })
    }

    /// The number of epochs.
    fn epochs(&self) -> usize {
        self.history.len()
    }

    /// The last epoch's training and validation accuracy (classification with validation).
    fn accuracies(&self) -> Option<(f64, f64)> {
        Some((self.last.train_accuracy?, self.last.val_accuracy?))
    }

    /// The validation loss ended more than 1 % above its best, at an earlier epoch.
    fn val_rising(&self) -> bool {
        self.val
            .as_ref()
            .is_some_and(|v| v.best_epoch < self.epochs() && v.end > v.best * 1.01)
    }
}

/// A rule's verdict, why, and what to try.
struct Finding {
    verdict: Verdict,
    reason: String,
    suggestion: Message,
}

/// Unstable: the training loss ended above where training started (its first epoch), or
/// above twice the loss of guessing (ln C for cross-entropy).
fn unstable(c: &Curves) -> Option<Finding> {
    let (first, now) = (c.history[0].train_loss, c.last.train_loss);
    // Written as conditions that hold, so a NaN loss is never called unstable.
    let (start, what) = match c.context.start_loss {
        Some(s) if now > 2.0 * s => (s, "the loss of guessing every class alike"),
        _ if c.epochs() >= 2 && now > first => (first, "the first epoch's"),
        _ => return None,
    };
    let (s, n) = pair(start, now);
    let lr = c.last.learning_rate;
    Some(Finding {
        verdict: Verdict::Unstable,
        reason: format!(
            "the training loss ended at {n}, above {s} ({what}): the steps are too large"
        ),
        suggestion: Message::new()
            .text("lower ")
            .setting(Setting::LearningRate)
            .text(format!(", e.g. {} (now {lr}), or ", lower_lr(lr)))
            .value(Setting::ClipGradNorm, "1"),
    })
}

/// What fights overfitting and is not on yet: `more data, dropout, weight decay, ...`.
fn regularise(c: &Curves, start: &str) -> Message {
    let mut m = Message::new().text(start).text("more data");
    if !c.context.dropout {
        m = m.text(", ").setting(Setting::Dropout);
    }
    if !c.context.weight_decay {
        m = m.text(", ").setting(Setting::WeightDecay);
    }
    if c.context.dropout && c.context.weight_decay {
        m = m
            .text(", a higher ")
            .setting(Setting::Dropout)
            .text(" or ")
            .setting(Setting::WeightDecay);
    }
    if c.context.early_stopping {
        m.text(", or a smaller network (the kept weights are already the best epoch's)")
    } else {
        m.text(", or ")
            .setting(Setting::EarlyStopping)
            .text(" (keeps the best epoch's weights)")
    }
}

/// Overfitting: the validation loss rose for 3+ epochs past its best, to 10 % above it, while
/// the training loss kept falling.
fn rising_loss(c: &Curves) -> Option<Finding> {
    let v = c.val.as_ref()?;
    let (n, best_epoch) = (c.epochs(), v.best_epoch);
    let train_fell = c.last.train_loss < c.history[best_epoch - 1].train_loss;
    // Written as the condition that holds, so a NaN loss never counts as overfitting.
    let overfitting = n - best_epoch >= 3 && v.end > v.best * 1.1 && train_fell;
    if !overfitting {
        return None;
    }
    let (best, end) = pair(v.best, v.end);
    Some(Finding {
        verdict: Verdict::Overfitting,
        reason: format!(
            "val_loss rose from {best} at epoch {best_epoch} to {end} at epoch {n} while the training loss kept falling"
        ),
        suggestion: regularise(c, "try "),
    })
}

/// Overfitting: training accuracy above 0.98 with the validation accuracy 0.08 or more behind.
fn accuracy_gap(c: &Curves) -> Option<Finding> {
    let (t, m) = c.accuracies()?;
    let overfitting = t > 0.98 && t - m > 0.08;
    if !overfitting {
        return None;
    }
    let (t, m) = pair(t, m);
    Some(Finding {
        verdict: Verdict::Overfitting,
        reason: format!("training accuracy {t} but validation accuracy {m}"),
        suggestion: regularise(c, "try "),
    })
}

/// Underfitting: training accuracy below 0.90 (while the validation loss is not rising).
fn low_accuracy(c: &Curves) -> Option<Finding> {
    let t = c.last.train_accuracy.filter(|&t| t < 0.9)?;
    if c.val_rising() {
        return None;
    }
    let n = c.epochs();
    Some(Finding {
        verdict: Verdict::Underfitting,
        reason: format!(
            "training accuracy is only {} after {n} epoch{}",
            number(t, 4),
            if n == 1 { "" } else { "s" }
        ),
        suggestion: Message::new()
            .text("train for more epochs, raise the learning rate (try ")
            .mention(Mention::LrSweep)
            .text("), or use a larger network"),
    })
}

/// Underfitting: the training loss still fell by more than 5 % (and 0.01) over the last epoch,
/// training accuracy is below 0.98 and the validation loss is not rising.
fn still_falling(c: &Curves) -> Option<Finding> {
    let n = c.epochs();
    if n < 2 || c.val_rising() || c.last.train_accuracy.is_some_and(|t| t >= 0.98) {
        return None;
    }
    let (prev, now) = (c.history[n - 2].train_loss, c.last.train_loss);
    let falling = now < prev * 0.95 && prev - now > 0.01;
    if !falling {
        return None;
    }
    let (p, q) = pair(prev, now);
    Some(Finding {
        verdict: Verdict::Underfitting,
        reason: format!(
            "the training loss still fell {:.0} % in the last epoch ({p} → {q})",
            (1.0 - now / prev) * 100.0
        ),
        suggestion: "train for more epochs".into(),
    })
}

/// Undecided: a single epoch, where "levelled off" would mean nothing.
fn too_early(c: &Curves) -> Option<Finding> {
    if c.epochs() >= 2 {
        return None;
    }
    Some(Finding {
        verdict: Verdict::Undecided,
        reason:
            "one epoch is too little history to judge the fit (a curve needs at least 2 epochs)"
                .to_string(),
        suggestion: Message::new()
            .text("train for more epochs, e.g. ")
            .value(Setting::Epochs, "10"),
    })
}

/// Good: none of the rules above.
fn levelled_off(c: &Curves) -> Finding {
    let Some(v) = c.val.as_ref() else {
        return Finding {
            verdict: Verdict::Good,
            reason: format!(
                "the training loss has levelled off at {}",
                number(c.last.train_loss, 4)
            ),
            suggestion: Message::new()
                .text("hold out data to check the fit on unseen rows: ")
                .value(Setting::ValSplit, "0.1"),
        };
    };
    let (best_epoch, n) = (v.best_epoch, c.epochs());
    let reason = if c.val_rising() {
        let (best, end) = pair(v.best, v.end);
        format!(
            "val_loss is lowest at epoch {best_epoch} ({best}) and rose to {end} by epoch {n}: more epochs would start to overfit"
        )
    } else {
        format!(
            "val_loss is lowest at epoch {best_epoch} ({}) and the training loss has levelled off",
            number(v.best, 4)
        )
    };
    let suggestion = if c.context.early_stopping {
        "nothing pressing; the kept weights are the best epoch's".into()
    } else {
        Message::new()
            .text("nothing pressing; ")
            .setting(Setting::EarlyStopping)
            .text(" keeps the best epoch's weights")
    };
    Finding {
        verdict: Verdict::Good,
        reason,
        suggestion,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_good_looking_epoch_is_undecided_not_good() {
        let one = [epoch(1, 0.05, 0.06, 0.99, 0.985)];
        let d = diagnose(&one).unwrap();
        assert_eq!(d.verdict, Verdict::Undecided, "{d:?}");
        assert!(d.reason.contains("too little history"), "{}", d.reason);
        assert!(
            d.suggestion.to_string().contains("epochs"),
            "{:?}",
            d.suggestion
        );
        let mut no_val = one.clone();
        no_val[0].val_loss = None;
        no_val[0].val_accuracy = None;
        assert_eq!(diagnose(&no_val).unwrap().verdict, Verdict::Undecided);
        // One epoch that is clearly underfitting still says so.
        let low = [epoch(1, 1.5, 1.4, 0.5, 0.52)];
        assert_eq!(diagnose(&low).unwrap().verdict, Verdict::Underfitting);
        // Two levelled epochs are a curve.
        let two = [
            epoch(1, 0.051, 0.06, 0.99, 0.985),
            epoch(2, 0.05, 0.059, 0.99, 0.985),
        ];
        assert_eq!(diagnose(&two).unwrap().verdict, Verdict::Good);
    }

    /// An epoch with a validation set: (train loss, val loss, train acc, val acc).
    fn epoch(e: usize, train: f64, val: f64, train_acc: f64, val_acc: f64) -> EpochMetrics {
        EpochMetrics {
            epoch: e,
            train_loss: train,
            train_accuracy: Some(train_acc),
            val_loss: Some(val),
            val_accuracy: Some(val_acc),
            val_r2: None,
            test_loss: Some(9.0),
            test_accuracy: Some(0.0),
            test_mae: None,
            test_rmse: None,
            test_r2: None,
            seconds: 0.0,
            learning_rate: 0.1,
        }
    }

    /// The same without a validation set.
    fn no_val(m: EpochMetrics) -> EpochMetrics {
        EpochMetrics {
            val_loss: None,
            val_accuracy: None,
            ..m
        }
    }

    fn history(rows: &[(f64, f64, f64, f64)]) -> Vec<EpochMetrics> {
        rows.iter()
            .enumerate()
            .map(|(i, &(a, b, c, d))| epoch(i + 1, a, b, c, d))
            .collect()
    }

    const CE10: Context = Context {
        early_stopping: false,
        dropout: false,
        weight_decay: false,
        start_loss: Some(std::f64::consts::LN_10),
    };

    #[test]
    fn rising_validation_loss_with_falling_train_loss_is_overfitting() {
        let h = history(&[
            (1.0, 0.8, 0.9, 0.85),
            (0.5, 0.5, 0.9, 0.85),
            (0.2, 0.55, 0.9, 0.85),
            (0.1, 0.6, 0.9, 0.85),
            (0.05, 0.7, 0.9, 0.85),
        ]);
        let d = diagnose(&h).unwrap();
        assert_eq!(d.verdict, Verdict::Overfitting);
        assert_eq!(d.best_epoch, Some(2));
        assert_eq!(d.monitored, "val_loss");
    }

    #[test]
    fn the_test_loss_never_chooses_anything() {
        // The test loss is lowest at epoch 1 and rises; the validation loss keeps falling.
        let mut h = history(&[
            (1.0, 0.9, 0.95, 0.95),
            (0.9, 0.8, 0.95, 0.95),
            (0.85, 0.75, 0.95, 0.95),
        ]);
        for (i, m) in h.iter_mut().enumerate() {
            m.test_loss = Some(0.1 + i as f64);
        }
        assert_eq!(diagnose(&h).unwrap().best_epoch, Some(3));
        let h: Vec<_> = h.into_iter().map(no_val).collect();
        let d = diagnose(&h).unwrap();
        assert_eq!((d.best_epoch, d.monitored.as_str()), (None, "train_loss"));
        assert!(d.reason.contains("training curve alone"), "{}", d.reason);
    }

    #[test]
    fn low_training_accuracy_is_underfitting() {
        let d = diagnose(&[epoch(1, 2.0, 2.0, 0.3, 0.3)]).unwrap();
        assert_eq!(d.verdict, Verdict::Underfitting);
    }

    #[test]
    fn a_flat_curve_is_good() {
        let h: Vec<_> = (1..=5).map(|e| epoch(e, 0.1, 0.12, 0.97, 0.96)).collect();
        assert_eq!(diagnose(&h).unwrap().verdict, Verdict::Good);
    }

    #[test]
    fn a_wide_accuracy_gap_is_overfitting() {
        let h: Vec<_> = (1..=2).map(|e| epoch(e, 0.1, 0.1, 0.99, 0.85)).collect();
        let d = diagnose(&h).unwrap();
        assert_eq!(d.verdict, Verdict::Overfitting);
        assert_eq!(
            d.reason,
            "training accuracy 0.9900 but validation accuracy 0.8500"
        );
    }

    #[test]
    fn high_accuracy_with_a_rising_validation_loss_is_never_underfitting() {
        // Finding 3: MNIST, 3 epochs, training accuracy 0.98, the held-out loss rising
        // 0.0844 → 0.0869 while the training loss still fell 32 %.
        let h = history(&[
            (0.30, 0.10, 0.91, 0.97),
            (0.10, 0.0844, 0.97, 0.975),
            (0.068, 0.0869, 0.98, 0.974),
        ]);
        let d = diagnose_with(&h, &CE10).unwrap();
        assert_ne!(d.verdict, Verdict::Underfitting, "{d:?}");
        assert!(
            d.reason.contains("0.0844") && d.reason.contains("0.0869"),
            "{}",
            d.reason
        );
        assert!(
            !d.suggestion.to_string().contains("raise"),
            "{:?}",
            d.suggestion
        );
        // Without validation data, high training accuracy is not underfitting either.
        let h: Vec<_> = h.into_iter().map(no_val).collect();
        assert_ne!(
            diagnose_with(&h, &CE10).unwrap().verdict,
            Verdict::Underfitting
        );
    }

    #[test]
    fn a_still_falling_training_loss_at_low_accuracy_is_underfitting() {
        let h = history(&[
            (1.0, 1.0, 0.7, 0.7),
            (0.6, 0.62, 0.85, 0.84),
            (0.4, 0.45, 0.93, 0.92),
        ]);
        let d = diagnose_with(&h, &CE10).unwrap();
        assert_eq!(d.verdict, Verdict::Underfitting);
        assert!(d.reason.contains("0.6000 → 0.4000"), "{}", d.reason);
    }

    #[test]
    fn quoted_values_have_enough_digits_to_differ() {
        // Finding 3: "val_loss rose from 0.0001 at epoch 195 to 0.0001 at epoch 200".
        let mut rows = vec![(0.5, 0.5, 1.0, 1.0); 200];
        for (i, r) in rows.iter_mut().enumerate() {
            r.0 = 1e-3 / (i + 1) as f64;
            r.1 = if i < 194 {
                1e-3 - i as f64 * 4e-6
            } else {
                8.56e-5 + (i - 194) as f64 * 1.9e-6
            };
        }
        rows[194].1 = 8.56e-5;
        rows[199].1 = 9.51e-5;
        let d = diagnose(&history(&rows)).unwrap();
        assert_eq!(d.verdict, Verdict::Overfitting, "{d:?}");
        assert!(
            d.reason.contains("8.56e-5") && d.reason.contains("9.51e-5"),
            "{}",
            d.reason
        );
        assert_eq!(
            pair(0.123_45, 0.123_46),
            ("0.12345".into(), "0.12346".into())
        );
        assert_eq!(pair(2.0, 2.0), ("2.0000".into(), "2.0000".into()));
    }

    #[test]
    fn suggestions_never_name_a_setting_that_is_on() {
        let h = history(&[
            (1.0, 0.8, 0.9, 0.85),
            (0.5, 0.5, 0.9, 0.85),
            (0.2, 0.55, 0.9, 0.85),
            (0.1, 0.6, 0.9, 0.85),
            (0.05, 0.7, 0.9, 0.85),
        ]);
        let on = Context {
            early_stopping: true,
            dropout: true,
            weight_decay: false,
            start_loss: None,
        };
        let text = diagnose_with(&h, &on).unwrap().suggestion.to_string();
        assert!(
            !text.contains("`early_stopping`") && !text.contains("`dropout`,"),
            "{text}"
        );
        assert!(text.contains("`weight_decay`"), "{text}");
        let flat: Vec<_> = (1..=5).map(|e| epoch(e, 0.1, 0.12, 0.97, 0.96)).collect();
        let text = diagnose_with(&flat, &on).unwrap().suggestion.to_string();
        assert!(!text.contains("early_stopping"), "{text}");
    }

    #[test]
    fn a_loss_above_its_start_is_unstable_and_the_advice_is_a_lower_rate() {
        // Finding 2: 600 MNIST images, lr 50: 6.0e33, 164, 87 against ln 10 ≈ 2.3.
        let h: Vec<_> = [(6.0e33, 0.1083), (164.0, 0.1083), (87.0, 0.1067)]
            .iter()
            .enumerate()
            .map(|(i, &(l, a))| EpochMetrics {
                learning_rate: 50.0,
                ..no_val(epoch(i + 1, l, 0.0, a, 0.0))
            })
            .collect();
        let d = diagnose_with(&h, &CE10).unwrap();
        assert_eq!(d.verdict, Verdict::Unstable, "{d:?}");
        let text = d.suggestion.to_string();
        assert!(text.contains("lower `lr`, e.g. 5 (now 50)"), "{text}");
        assert!(!text.contains("raise"), "{text}");
        // A regression loss that rose above its first epoch's is unstable too.
        let h: Vec<_> = [0.9, 0.5, 3.0]
            .iter()
            .enumerate()
            .map(|(i, &l)| EpochMetrics {
                train_accuracy: None,
                ..no_val(epoch(i + 1, l, 0.0, 0.0, 0.0))
            })
            .collect();
        assert_eq!(diagnose(&h).unwrap().verdict, Verdict::Unstable);
    }

    #[test]
    fn suggestions_name_settings_by_key_not_by_flag() {
        let histories = [
            vec![epoch(1, 2.0, 2.0, 0.3, 0.3)],
            (1..=2).map(|e| epoch(e, 0.1, 0.1, 0.99, 0.85)).collect(),
            (1..=5).map(|e| epoch(e, 0.1, 0.12, 0.97, 0.96)).collect(),
        ];
        for h in &histories {
            let text = diagnose(h).unwrap().suggestion.to_string();
            assert!(!text.contains("--") && !text.contains("nabla"), "{text}");
        }
        let d = diagnose(&histories[2]).unwrap();
        assert_eq!(
            d.suggestion.to_string(),
            "nothing pressing; `early_stopping` keeps the best epoch's weights"
        );
    }

    #[test]
    fn an_empty_history_has_no_diagnosis() {
        assert_eq!(diagnose(&[]), None);
    }
}
