//! Data in: the [`Dataset`] type, readers for each source (CSV files, the built-in digits, IDX
//! folders), the table pipeline (task detection, missing values, splits, one-hot encoding and
//! scaling fitted on the training split), and seeded, stratified splits. Image pixels stay `u8`
//! in memory and become `f32` one mini-batch at a time (see [`Dataset::gather`]).
//!
//! The path of a CSV file: [`csv::read`] streams records into a [`csv::RawTable`];
//! [`table::prepare`] turns it into training, validation and test [`Dataset`]s plus the fitted
//! [`Preprocess`] that a saved model needs to read new rows the same way.

pub mod augment;
pub mod builtin;
pub mod csv;
pub mod dataset;
pub mod idx;
pub mod preprocess;
pub mod split;
pub mod table;

pub use dataset::{Dataset, Features};
pub use preprocess::{Preprocess, Scaling};
pub use table::{Impute, Prepared, TableOptions};
