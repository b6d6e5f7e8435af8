//! Helpers shared by the fuzz targets.

use rand_core::Rng;

/// A deterministic byte source for fuzz targets: a 64-bit LCG seeded from the fuzzer's input.
/// Fuzzing needs reproducibility, not secrecy — never use this outside fuzzing.
pub struct LcgRng(pub u64);

impl rand_core::TryRng for LcgRng {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, core::convert::Infallible> {
        Ok(self.next_u64() as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, core::convert::Infallible> {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        Ok(self.0 >> 11)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), core::convert::Infallible> {
        for b in dst {
            *b = self.next_u64() as u8;
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for LcgRng {}
