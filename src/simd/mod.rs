//! Run-time choice of vector width for nabla's own elementwise kernels (everything outside the
//! GEMM crate, which picks its own kernels), and flush-to-zero on nabla's threads.
//!
//! A kernel is written once as plain slice code ([`elementwise`], [`update`]) and compiled
//! three times: for AVX-512, for AVX2 + FMA, and for the build's baseline (SSE2 on x86-64: the
//! "scalar" fallback); the entry point takes a [`Level`] and calls the copy compiled for it,
//! where the compiler has vectorised the inlined loop at that width. The kernels use
//! no fused multiply-add and no reassociation (lanes are independent elements; sums run in a
//! fixed order), so **every level gives the same bits**: results depend neither on the thread
//! count nor on the CPU's vector width.
//!
//! The width in force is the widest the CPU has ([`detected`]), capped by the environment
//! variable `NABLA_MAX_VECTOR` (`scalar`, `avx2` or `avx512`; read once), e.g. to measure
//! AVX2-only speed on an AVX-512 machine.

/// Defines `pub fn NAME(level: Level, args...)` that runs the `#[inline(always)]` function
/// `BODY(args...)` compiled for `level` (lowered to [`detected`] when the CPU lacks it): one
/// copy with AVX-512 enabled, one with AVX2 + FMA, and the baseline, so the compiler vectorises
/// the inlined loops at each width.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? => $body:path) => {
        $(#[$m])*
        $vis fn $name(level: $crate::simd::Level, $($arg: $ty),*) $(-> $ret)? {
            /// # Safety
            /// The CPU must support AVX-512 F, BW, DQ and VL.
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
            unsafe fn wide($($arg: $ty),*) $(-> $ret)? {
                $body($($arg),*)
            }
            /// # Safety
            /// The CPU must support AVX2 and FMA.
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn mid($($arg: $ty),*) $(-> $ret)? {
                $body($($arg),*)
            }
            match level.min($crate::simd::detected()) {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the CPU supports AVX-512 F/BW/DQ/VL (`detected`).
                $crate::simd::Level::Avx512 => unsafe { wide($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the CPU supports AVX2 and FMA (`detected`).
                $crate::simd::Level::Avx2 => unsafe { mid($($arg),*) },
                _ => $body($($arg),*),
            }
        }
    };
}

pub mod elementwise;
pub mod ftz;
pub mod update;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

/// An instruction-set level for nabla's kernels, from narrowest to widest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// The build's baseline instructions (SSE2 on x86-64, 128-bit), or other architectures.
    Scalar,
    /// AVX2 and FMA: 256-bit vectors.
    Avx2,
    /// AVX-512 (F, BW, DQ, VL): 512-bit vectors.
    Avx512,
}

impl Level {
    /// Every level, narrowest first.
    pub const ALL: [Level; 3] = [Level::Scalar, Level::Avx2, Level::Avx512];

    /// The name `NABLA_MAX_VECTOR` takes (`scalar`, `avx2`, `avx512`).
    pub fn name(self) -> &'static str {
        match self {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    /// Vector width in bits (128 for the x86-64 baseline).
    pub fn bits(self) -> u32 {
        match self {
            Level::Scalar => 128,
            Level::Avx2 => 256,
            Level::Avx512 => 512,
        }
    }

    /// The level named `name` (as [`Level::name`] spells it), if any.
    pub fn parse(name: &str) -> Option<Level> {
        Level::ALL
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(name.trim()))
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The widest level this CPU supports (checked once).
pub fn detected() -> Level {
    static DETECTED: OnceLock<Level> = OnceLock::new();
    *DETECTED.get_or_init(detect)
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Level {
    use std::arch::is_x86_feature_detected as has;
    if has!("avx512f") && has!("avx512bw") && has!("avx512dq") && has!("avx512vl") {
        Level::Avx512
    } else if has!("avx2") && has!("fma") {
        Level::Avx2
    } else {
        Level::Scalar
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Level {
    Level::Scalar
}

/// The cap set by [`set_max_level`] (an index into [`Level::ALL`]).
static CAP: AtomicU8 = AtomicU8::new(2);

/// The level nabla's kernels use: [`detected`], capped by `NABLA_MAX_VECTOR` when it names a
/// level (an unknown value is ignored) and by [`set_max_level`].
pub fn level() -> Level {
    static ENV: OnceLock<Level> = OnceLock::new();
    let env = *ENV.get_or_init(|| {
        std::env::var("NABLA_MAX_VECTOR")
            .ok()
            .and_then(|v| Level::parse(&v))
            .unwrap_or(Level::Avx512)
    });
    let cap = Level::ALL[usize::from(CAP.load(Ordering::Relaxed)).min(2)];
    detected().min(env).min(cap)
}

/// Caps the level of every later kernel call in this process (tests force each path in turn
/// with it). Since every level gives the same bits, changing it never changes a result.
pub fn set_max_level(cap: Level) {
    let index = Level::ALL.iter().position(|&l| l == cap).unwrap_or(2);
    CAP.store(index as u8, Ordering::Relaxed);
}
