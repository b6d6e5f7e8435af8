//! Helpers shared by the fuzz targets.

pub mod faketls;
pub mod handshake;
pub mod sample;

/// A deterministic byte source for fuzz targets: a 64-bit LCG seeded from the fuzzer's input.
/// Fuzzing needs reproducibility, not secrecy — never use this outside fuzzing.
pub struct LcgRng(pub u64);

impl rand_core::RngCore for LcgRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for b in dst {
            *b = self.next_u64() as u8;
        }
    }
}

impl rand_core::CryptoRng for LcgRng {}
