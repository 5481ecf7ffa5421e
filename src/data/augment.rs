//! Image augmentation on the fly: each training sample is moved, turned and mirrored a little
//! as its mini-batch is gathered, so every epoch sees slightly different images without a copy
//! of the dataset.
//!
//! - `shift=N`: a translation by whole pixels, `dx` and `dy` each uniform in `−N..=N`; pixels
//!   moved in from outside are 0 (black in the data's own units, before its scaling).
//! - `rotate=D`: a rotation about the image's centre by an angle uniform in `[−D°, D°]`
//!   (positive is counter-clockwise as the image is shown, rows downwards), read with
//!   **bilinear** interpolation of the four nearest pixels, 0 outside the image.
//! - `flip`: a horizontal mirror (left ↔ right) with probability ½.
//!
//! A sample's draws depend on the seed, the epoch and the sample's index in the training set
//! only (a ChaCha stream per epoch, four words per sample at a fixed position), never on the
//! batch, micro-batch or thread that gathers it: training stays bit-identical for any thread
//! count and a resumed run sees the same images. The rows must be pixels scaled by one factor
//! for all of them (pixels / 255, or unscaled), so that 0 is a black pixel and a moved pixel
//! means the same in its new place; per-column scaling (standardising each pixel on its own) is
//! refused by the caller ([`crate::config::RunConfig::augmenter`]).
//!
//! This module owns the spec (`shift=2,rotate=10,flip`), the draws and the pixel arithmetic; it
//! does not know batches or trainers (`train::fit` calls [`Augmenter::apply`] on each gathered
//! micro-batch).

use rand::Rng;

use crate::error::{Message, NablaError, Setting};
use crate::rng::{self, Stream};

/// Which transforms to draw, and how far: `shift=2,rotate=10,flip`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Augment {
    /// Largest translation in pixels, along each axis (0: none).
    pub shift: usize,
    /// Largest rotation in degrees, either way (0: none).
    pub rotate: f32,
    /// Mirror left ↔ right half of the time.
    pub flip: bool,
}

impl Augment {
    /// Parses the comma-separated spec: `shift=N` (whole pixels), `rotate=D` (degrees, at most
    /// 180), `flip`; `none` (alone) turns augmentation off and gives `None`.
    ///
    /// ```
    /// use nabla::data::augment::Augment;
    /// let a = Augment::parse("shift=2, rotate=10, flip").unwrap().unwrap();
    /// assert_eq!((a.shift, a.rotate, a.flip), (2, 10.0, true));
    /// assert_eq!(a.to_string(), "shift=2,rotate=10,flip");
    /// assert!(Augment::parse("none").unwrap().is_none());
    /// assert!(Augment::parse("shift=-1").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<Option<Self>, NablaError> {
        let bad = |why: String| {
            NablaError::Settings(
                Message::new()
                    .value(Setting::Augment, format!("{text:?}"))
                    .text(format!(
                        ": {why}; write comma-separated shift=PIXELS, rotate=DEGREES, flip \
                         (e.g. shift=2,rotate=10,flip), or none"
                    )),
            )
        };
        if text.trim() == "none" {
            return Ok(None);
        }
        let mut out = Augment {
            shift: 0,
            rotate: 0.0,
            flip: false,
        };
        let mut seen: Vec<&str> = Vec::new();
        for item in text.split(',').map(str::trim) {
            let (word, value) = match item.split_once('=') {
                Some((w, v)) => (w.trim(), Some(v.trim())),
                None => (item, None),
            };
            if item.is_empty() {
                return Err(bad("an empty item".into()));
            }
            if seen.contains(&word) {
                return Err(bad(format!("{word} is given twice")));
            }
            seen.push(word);
            match (word, value) {
                ("shift", Some(v)) => {
                    out.shift = v.parse().map_err(|_| {
                        bad(format!(
                            "shift takes a whole number of pixels ≥ 0, got {v:?}"
                        ))
                    })?;
                }
                ("rotate", Some(v)) => {
                    out.rotate = v
                        .parse::<f32>()
                        .ok()
                        .filter(|d| (0.0..=180.0).contains(d))
                        .ok_or_else(|| {
                            bad(format!("rotate takes degrees from 0 to 180, got {v:?}"))
                        })?;
                }
                ("flip", None) => out.flip = true,
                ("flip", Some(_)) => return Err(bad("flip takes no value".into())),
                ("shift" | "rotate", None) => {
                    return Err(bad(format!("{word} needs a value: {word}=N")));
                }
                ("none", _) => return Err(bad("none stands alone".into())),
                (other, _) => return Err(bad(format!("unknown transform {other:?}"))),
            }
        }
        Ok(Some(out))
    }

    /// `shift ±2 px, rotate ±10° (bilinear), horizontal flip`, or `identity` when every
    /// transform is off.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.shift > 0 {
            parts.push(format!("shift ±{} px (zero fill)", self.shift));
        }
        if self.rotate > 0.0 {
            parts.push(format!("rotate ±{}° (bilinear, zero fill)", self.rotate));
        }
        if self.flip {
            parts.push("horizontal flip (p = ½)".to_string());
        }
        if parts.is_empty() {
            return "identity".to_string();
        }
        parts.join(", ")
    }

    /// The draws of training sample `sample` in epoch `epoch` under `seed`: four words of the
    /// epoch's ChaCha stream at the sample's own position, one per transform (used or not,
    /// so turning one transform on does not move another's draws).
    pub fn draw(&self, seed: u64, epoch: u64, sample: usize) -> Draw {
        let mut rng = rng::sub_stream(seed, Stream::Augment, epoch);
        rng.set_word_pos(sample as u128 * 4);
        let words = [
            rng.next_u32(),
            rng.next_u32(),
            rng.next_u32(),
            rng.next_u32(),
        ];
        // An integer uniform in −n..=n from one word: ⌊u·(2n+1) / 2³²⌋ − n.
        let pixels = |u: u32| {
            let n = self.shift as u64;
            ((u64::from(u) * (2 * n + 1)) >> 32) as i64 - n as i64
        };
        let unit = f64::from(words[2]) / 4_294_967_296.0;
        Draw {
            dx: pixels(words[0]),
            dy: pixels(words[1]),
            degrees: ((unit * 2.0 - 1.0) * f64::from(self.rotate)) as f32,
            flip: self.flip && words[3] >> 31 == 1,
        }
    }
}

impl std::fmt::Display for Augment {
    /// The spec as [`Augment::parse`] reads it (`shift=2,rotate=10,flip`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if self.shift > 0 {
            parts.push(format!("shift={}", self.shift));
        }
        if self.rotate > 0.0 {
            parts.push(format!("rotate={}", self.rotate));
        }
        if self.flip {
            parts.push("flip".to_string());
        }
        if parts.is_empty() {
            parts.push("shift=0".to_string());
        }
        f.write_str(&parts.join(","))
    }
}

/// One sample's transform: mirror, then rotate about the centre, then translate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Draw {
    /// Pixels to the right (negative: left).
    pub dx: i64,
    /// Pixels down (negative: up).
    pub dy: i64,
    /// Counter-clockwise degrees as the image is shown.
    pub degrees: f32,
    /// Mirror left ↔ right first.
    pub flip: bool,
}

/// Writes `src`, an image of `[channels, height, width]` in C,H,W order, transformed by `draw`
/// into `dst` (same shape). Each output pixel reads the input at the inverse transform of its
/// position: without rotation an exact copy of one pixel (or 0 from outside), with rotation the
/// bilinear mix of the four pixels around that point, those outside the image counting as 0.
///
/// ```
/// use nabla::data::augment::{Draw, transform};
/// let src = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 1×2×3
/// let mut dst = [0.0; 6];
/// let right = Draw { dx: 1, dy: 0, degrees: 0.0, flip: false };
/// transform(&right, [1, 2, 3], &src, &mut dst);
/// assert_eq!(dst, [0.0, 1.0, 2.0, 0.0, 4.0, 5.0]);
/// ```
pub fn transform(draw: &Draw, [channels, height, width]: [usize; 3], src: &[f32], dst: &mut [f32]) {
    let plane = height * width;
    let (h, w) = (height as f64, width as f64);
    let (cy, cx) = ((h - 1.0) / 2.0, (w - 1.0) / 2.0);
    let (sin, cos) = f64::from(draw.degrees).to_radians().sin_cos();
    let rotated = draw.degrees != 0.0;
    for c in 0..channels {
        let (src, dst) = (
            &src[c * plane..(c + 1) * plane],
            &mut dst[c * plane..(c + 1) * plane],
        );
        for y in 0..height {
            for x in 0..width {
                // Undo the shift, the rotation (by −θ about the centre, y pointing down), the
                // mirror: the point of the input this output pixel shows.
                let (qx, qy) = ((x as i64 - draw.dx) as f64, (y as i64 - draw.dy) as f64);
                let (mut sx, sy) = if rotated {
                    let (u, v) = (qx - cx, cy - qy);
                    (cx + u * cos + v * sin, cy - (-u * sin + v * cos))
                } else {
                    (qx, qy)
                };
                if draw.flip {
                    sx = w - 1.0 - sx;
                }
                dst[y * width + x] = if rotated {
                    bilinear(src, (height, width), sy, sx)
                } else {
                    pixel(src, (height, width), sy as i64, sx as i64)
                };
            }
        }
    }
}

/// The pixel at row `y`, column `x` of one plane, 0 outside it.
fn pixel(plane: &[f32], (height, width): (usize, usize), y: i64, x: i64) -> f32 {
    if (0..height as i64).contains(&y) && (0..width as i64).contains(&x) {
        plane[y as usize * width + x as usize]
    } else {
        0.0
    }
}

/// The plane read at the real point (`y`, `x`): the four pixels around it weighted by their
/// closeness, 0 for those outside.
fn bilinear(plane: &[f32], size: (usize, usize), y: f64, x: f64) -> f32 {
    let (y0, x0) = (y.floor(), x.floor());
    let (fy, fx) = (y - y0, x - x0);
    let (y0, x0) = (y0 as i64, x0 as i64);
    let at = |dy: i64, dx: i64| f64::from(pixel(plane, size, y0 + dy, x0 + dx));
    let top = at(0, 0) * (1.0 - fx) + at(0, 1) * fx;
    let bottom = at(1, 0) * (1.0 - fx) + at(1, 1) * fx;
    (top * (1.0 - fy) + bottom * fy) as f32
}

/// Augmentation for one run: the transforms, the image shape and the seed.
#[derive(Clone, Debug)]
pub struct Augmenter {
    augment: Augment,
    shape: [usize; 3],
    seed: u64,
}

impl Augmenter {
    /// Augmentation of images of `[channels, height, width]` (pixels scaled by one factor, so
    /// 0 stays a black pixel); refuses a shift that could move the whole image out of view.
    pub fn new(augment: Augment, shape: [usize; 3], seed: u64) -> Result<Self, NablaError> {
        let [c, h, w] = shape;
        let side = h.min(w);
        if augment.shift >= side {
            return Err(NablaError::Settings(
                Message::new()
                    .value(Setting::Augment, format!("shift={}", augment.shift))
                    .text(format!(
                        " can move the whole {c}×{h}×{w} image out of view: shift at most {}",
                        side.saturating_sub(1)
                    )),
            ));
        }
        Ok(Self {
            augment,
            shape,
            seed,
        })
    }

    /// The transforms drawn.
    pub fn augment(&self) -> Augment {
        self.augment
    }

    /// Transforms, in place, the network-input rows of training samples `samples` (one row of
    /// `C·H·W` values each, in order) with each sample's draws for `epoch`. `scratch` is grown
    /// to one row once and reused.
    pub fn apply(&self, epoch: u64, samples: &[usize], rows: &mut [f32], scratch: &mut Vec<f32>) {
        let len: usize = self.shape.iter().product();
        if scratch.len() < len {
            scratch.resize(len, 0.0);
        }
        let scratch = &mut scratch[..len];
        for (row, &sample) in rows.chunks_exact_mut(len.max(1)).zip(samples) {
            let draw = self.augment.draw(self.seed, epoch, sample);
            if draw.dx == 0 && draw.dy == 0 && draw.degrees == 0.0 && !draw.flip {
                continue;
            }
            scratch.copy_from_slice(row);
            transform(&draw, self.shape, scratch, row);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> Draw {
        Draw {
            dx: 0,
            dy: 0,
            degrees: 0.0,
            flip: false,
        }
    }

    /// A 1×3×4 image with every pixel different: value = 10·row + column + 1.
    fn image() -> Vec<f32> {
        (0..3)
            .flat_map(|y| (0..4).map(move |x| (10 * y + x + 1) as f32))
            .collect()
    }

    fn run(draw: Draw, shape: [usize; 3], src: &[f32]) -> Vec<f32> {
        let mut dst = vec![f32::NAN; src.len()];
        transform(&draw, shape, src, &mut dst);
        dst
    }

    #[test]
    fn a_shift_moves_pixels_and_fills_with_zero() {
        let up_left = Draw {
            dx: -1,
            dy: -1,
            ..none()
        };
        #[rustfmt::skip]
        let want = [
            12.0, 13.0, 14.0, 0.0,
            22.0, 23.0, 24.0, 0.0,
            0.0, 0.0, 0.0, 0.0,
        ];
        assert_eq!(run(up_left, [1, 3, 4], &image()), want);
        let down_right = Draw {
            dx: 2,
            dy: 1,
            ..none()
        };
        #[rustfmt::skip]
        let want = [
            0.0, 0.0, 0.0, 0.0,
            0.0, 0.0, 1.0, 2.0,
            0.0, 0.0, 11.0, 12.0,
        ];
        assert_eq!(run(down_right, [1, 3, 4], &image()), want);
        assert_eq!(run(none(), [1, 3, 4], &image()), image());
    }

    #[test]
    fn a_flip_mirrors_each_row_of_each_channel() {
        let src: Vec<f32> = (1..=8).map(|v| v as f32).collect(); // 2×2×2
        let flip = Draw {
            flip: true,
            ..none()
        };
        assert_eq!(
            run(flip, [2, 2, 2], &src),
            [2.0, 1.0, 4.0, 3.0, 6.0, 5.0, 8.0, 7.0]
        );
    }

    #[test]
    fn a_quarter_turn_is_counter_clockwise_and_exact_up_to_rounding() {
        // 3×3: a quarter turn counter-clockwise takes the top row to the left column.
        let src: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let turn = Draw {
            degrees: 90.0,
            ..none()
        };
        let got = run(turn, [1, 3, 3], &src);
        let want = [3.0, 6.0, 9.0, 2.0, 5.0, 8.0, 1.0, 4.0, 7.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{got:?}");
        }
        // Half a turn of the 3×4 image (centre between pixels) is a point mirror.
        let half = Draw {
            degrees: 180.0,
            ..none()
        };
        let got = run(half, [1, 3, 4], &image());
        let mut want = image();
        want.reverse();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-4, "{got:?}");
        }
    }

    #[test]
    fn a_small_rotation_interpolates_bilinearly_with_zero_outside() {
        // One bright pixel at the centre of a 1×5×5 image, turned by 45°: the centre is the
        // fixed point of the rotation, so it stays.
        let mut src = vec![0.0f32; 25];
        src[12] = 1.0;
        let turn = Draw {
            degrees: 45.0,
            ..none()
        };
        let got = run(turn, [1, 5, 5], &src);
        assert!((got[12] - 1.0).abs() < 1e-6);
        // Output (x=3, y=2), one pixel right of the centre, reads the input one pixel from the
        // centre turned back by 45°: at (x, y) = (2.7071, 2.7071), where the centre pixel's
        // bilinear weight is (1 − 0.7071)² and its three other neighbours are 0.
        let w = (1.0 - std::f64::consts::FRAC_1_SQRT_2).powi(2) as f32;
        assert!((got[2 * 5 + 3] - w).abs() < 1e-6, "{got:?}");
        assert_eq!(got[0], 0.0);
        // Corners turned in from outside read zeros.
        let ones = vec![1.0f32; 25];
        let got = run(turn, [1, 5, 5], &ones);
        assert!(got[0] < 0.5 && (got[12] - 1.0).abs() < 1e-6, "{got:?}");
    }

    #[test]
    fn draws_depend_on_seed_epoch_and_sample_only_and_cover_the_range() {
        let a = Augment::parse("shift=2,rotate=10,flip").unwrap().unwrap();
        assert_eq!(a.draw(1, 3, 17), a.draw(1, 3, 17));
        assert_ne!(a.draw(1, 3, 17), a.draw(1, 4, 17));
        assert_ne!(a.draw(1, 3, 17), a.draw(2, 3, 17));
        assert_ne!(a.draw(1, 3, 17), a.draw(1, 3, 18));
        let draws: Vec<Draw> = (0..2000).map(|i| a.draw(7, 1, i)).collect();
        for v in -2..=2 {
            assert!(draws.iter().any(|d| d.dx == v) && draws.iter().any(|d| d.dy == v));
        }
        assert!(
            draws
                .iter()
                .all(|d| d.dx.abs() <= 2 && d.degrees.abs() <= 10.0)
        );
        let flipped = draws.iter().filter(|d| d.flip).count();
        assert!((900..1100).contains(&flipped), "{flipped}");
        // Off transforms draw nothing, and the others keep their draws.
        let shift_only = Augment {
            flip: false,
            rotate: 0.0,
            ..a
        };
        let d = shift_only.draw(7, 1, 5);
        assert_eq!((d.dx, d.dy), (draws[5].dx, draws[5].dy));
        assert!(!d.flip && d.degrees == 0.0);
    }

    #[test]
    fn bad_specs_are_refused_with_the_reason() {
        for (spec, why) in [
            ("", "an empty item"),
            ("shift", "shift needs a value"),
            ("shift=1.5", "whole number"),
            ("shift=-1", "whole number"),
            ("rotate=200", "from 0 to 180"),
            ("rotate=x", "from 0 to 180"),
            ("flip=1", "flip takes no value"),
            ("zoom=2", "unknown transform \"zoom\""),
            ("flip,flip", "flip is given twice"),
            ("shift=1,,flip", "an empty item"),
            ("none,flip", "none stands alone"),
        ] {
            let e = Augment::parse(spec).unwrap_err().to_string();
            assert!(e.contains(why), "{spec:?}: {e}");
            assert!(e.contains("`augment = "), "{spec:?}: {e}");
        }
    }

    #[test]
    fn the_augmenter_transforms_each_row_with_its_own_draw_and_refuses_a_shift_off_the_image() {
        let a = Augment {
            shift: 1,
            rotate: 0.0,
            flip: true,
        };
        let e = Augmenter::new(Augment { shift: 3, ..a }, [1, 3, 4], 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("out of view: shift at most 2"), "{e}");
        let aug = Augmenter::new(a, [1, 3, 4], 9).unwrap();
        let samples = [4, 0, 11];
        let mut rows: Vec<f32> = (0..3).flat_map(|_| image()).collect();
        let mut scratch = Vec::new();
        aug.apply(2, &samples, &mut rows, &mut scratch);
        for (row, &i) in rows.chunks(12).zip(&samples) {
            assert_eq!(row, run(a.draw(9, 2, i), [1, 3, 4], &image()));
        }
        assert!(samples.iter().any(|&i| a.draw(9, 2, i) != none()));
    }
}
