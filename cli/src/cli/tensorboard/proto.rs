//! The subset of TensorFlow's `Event` and `Summary` protobuf messages (`tensorflow/core/util/
//! event.proto`, `tensorflow/core/framework/summary.proto`, proto3) that nabla's event files
//! use, written by hand with `prost`'s derive so a build needs no `protoc`. Fields nabla never
//! writes are left out; prost skips them when decoding.

/// `Event`: one record of an event file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Seconds since the Unix epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// The global step (iteration, or epoch for per-epoch values).
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// The first record of a file: `brain.Event:2` (field 3 of the `what` oneof).
    #[prost(string, optional, tag = "3")]
    pub file_version: Option<String>,
    /// Values at this step (field 5 of the `what` oneof).
    #[prost(message, optional, tag = "5")]
    pub summary: Option<Summary>,
}

/// `Summary`: named values.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    /// The values.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<Value>,
}

/// `Summary.Value`: a tag and a scalar or an image (fields of its `value` oneof).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Value {
    /// The curve's name (`epoch/test_loss`).
    #[prost(string, tag = "1")]
    pub tag: String,
    /// A scalar.
    #[prost(float, optional, tag = "2")]
    pub simple_value: Option<f32>,
    /// An image.
    #[prost(message, optional, tag = "4")]
    pub image: Option<Image>,
}

/// `Summary.Image`: an encoded (PNG) image.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Image {
    /// Pixels high.
    #[prost(int32, tag = "1")]
    pub height: i32,
    /// Pixels wide.
    #[prost(int32, tag = "2")]
    pub width: i32,
    /// 1 grey, 2 grey + alpha, 3 RGB, 4 RGBA.
    #[prost(int32, tag = "3")]
    pub colorspace: i32,
    /// The PNG file's bytes.
    #[prost(bytes = "vec", tag = "4")]
    pub encoded_image_string: Vec<u8>,
}
