//! Flush-to-zero (FTZ) and denormals-are-zero (DAZ) for training arithmetic.
//!
//! Adam's first moment of a rarely active input decays by β1 each step into the subnormal
//! range, and late in training softmax probabilities of wrong classes underflow to subnormals
//! that flow through the backward products. Arithmetic on subnormal floats takes a slow path on
//! many CPUs (on AMD Zen, microcode assists per operation), which made later epochs of small
//! batches up to twice as slow as the first. nabla's trainer sets FTZ and DAZ on **its own**
//! rayon threads for their whole life ([`set_on_this_thread`], the pool's start handler) and on
//! the calling thread only for the duration of one training step ([`Scope`], restored on
//! return or unwind), so a library user's threads never see a changed floating-point mode.
//! Every training computation runs under the mode, so results stay independent of the thread
//! count. A subnormal is below 1.2e-38: flushing it changes no trained weight measurably.
//! On other architectures these are no-ops.

/// MXCSR bits: FTZ (bit 15) and DAZ (bit 6).
#[cfg(target_arch = "x86_64")]
const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

#[cfg(target_arch = "x86_64")]
fn read() -> u32 {
    let mut csr = 0u32;
    // SAFETY: stmxcsr writes 4 bytes to the given address, a live u32.
    unsafe {
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags));
    }
    csr
}

#[cfg(target_arch = "x86_64")]
fn write(csr: u32) {
    // SAFETY: ldmxcsr reads 4 bytes from a live u32; the value is one read from MXCSR with
    // only the FTZ/DAZ bits changed, which every x86-64 CPU supports.
    unsafe {
        std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, preserves_flags));
    }
}

/// True when the calling thread flushes subnormal results and inputs to zero.
pub fn enabled() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        read() & FTZ_DAZ == FTZ_DAZ
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Turns FTZ and DAZ on for the calling thread for good: only for threads nabla owns.
pub fn set_on_this_thread() {
    #[cfg(target_arch = "x86_64")]
    write(read() | FTZ_DAZ);
}

/// FTZ and DAZ on the calling thread while this value lives; the previous mode comes back when
/// it is dropped.
pub struct Scope {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

impl Scope {
    /// Turns FTZ and DAZ on until the returned value is dropped.
    pub fn new() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            let saved = read();
            write(saved | FTZ_DAZ);
            Scope { saved }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Scope {}
    }
}

impl Default for Scope {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        #[cfg(target_arch = "x86_64")]
        write(self.saved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_flushes_subnormals_and_restores_the_mode() {
        let before = enabled();
        let tiny = std::hint::black_box(f32::MIN_POSITIVE);
        {
            let _scope = Scope::new();
            let r = std::hint::black_box(tiny) * std::hint::black_box(0.5f32);
            if cfg!(target_arch = "x86_64") {
                assert_eq!(r, 0.0, "FTZ flushes a subnormal product");
                assert!(enabled());
            }
        }
        assert_eq!(enabled(), before);
        let r = std::hint::black_box(tiny) * std::hint::black_box(0.5f32);
        if !before {
            assert!(r > 0.0, "outside the scope subnormals are kept");
        }
    }
}
