//! The baselines beside the network (see `nabla::train::baseline`): fitted after training,
//! printed in one line, and written to the metrics file and history.json as
//! `baselines: {trivial: {...}, linear: {...}}` with the network's metric names.

use serde_json::{Map, Value, json};

use nabla::train::Evaluation;
use nabla::train::baseline::{Baselines, Scores};

/// One evaluation's metrics under the network's names with `prefix` (`test`, `val`).
pub fn metrics(prefix: &str, e: Option<&Evaluation>, regression: bool) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(format!("{prefix}_loss"), json!(e.map(|e| e.loss)));
    if regression {
        let r = e.and_then(|e| e.regression);
        m.insert(format!("{prefix}_mae"), json!(r.map(|r| r.mae)));
        m.insert(format!("{prefix}_rmse"), json!(r.map(|r| r.rmse)));
        m.insert(format!("{prefix}_r2"), json!(r.map(|r| r.r2)));
    } else {
        m.insert(
            format!("{prefix}_accuracy"),
            json!(e.and_then(|e| e.accuracy)),
        );
    }
    m
}

/// A baseline's test metrics (`null` without a test set) and, when there is a validation set,
/// its validation metrics.
fn scores(s: &Scores, regression: bool, has_val: bool) -> Value {
    let mut m = metrics("test", s.test.as_ref(), regression);
    if has_val {
        m.extend(metrics("val", s.val.as_ref(), regression));
    }
    Value::Object(m)
}

/// `{trivial: {...}, linear: {...} | null}`.
pub fn to_json(b: &Baselines, regression: bool, has_val: bool) -> Value {
    json!({
        "trivial": scores(&b.trivial, regression, has_val),
        "linear": b.linear.as_ref().map(|l| scores(l, regression, has_val)),
    })
}

/// `accuracy 0.9667` or `R² 0.4512`; `-` when absent.
fn main(e: Option<&Evaluation>) -> String {
    match e.map(|e| (e.accuracy, e.regression)) {
        Some((Some(a), _)) => format!("{a:.4}"),
        Some((None, Some(r))) => format!("{:.4}", r.r2),
        _ => "-".into(),
    }
}

/// `trivial 0.3333 / 0.3333, linear 0.9583 / 0.9667, network 0.9583 / 0.9667`: the line
/// printed after training.
pub fn line(b: &Baselines, network: Scores, regression: bool) -> String {
    let measure = if regression { "R²" } else { "accuracy" };
    let has_val = network.val.is_some();
    let has_test = network.test.is_some();
    let cell = |s: &Scores| match (has_val, has_test) {
        (true, true) => format!("{} / {}", main(s.val.as_ref()), main(s.test.as_ref())),
        (true, false) => main(s.val.as_ref()),
        (false, _) => main(s.test.as_ref()),
    };
    let on = match (has_val, has_test) {
        (true, true) => "validation / test",
        (true, false) => "validation",
        (false, true) => "test",
        (false, false) => {
            return "baselines: no validation or test set to score them on".to_string();
        }
    };
    let linear = match &b.linear {
        Some(l) => cell(l),
        None => "not fitted (image data, or too large to fit quickly)".into(),
    };
    format!(
        "baselines ({measure}, {on}, same split): trivial {}, linear {linear}; network {}",
        cell(&b.trivial),
        cell(&network)
    )
}
