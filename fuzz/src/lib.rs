//! Helpers shared by the fuzz targets.

pub mod faketls;
pub mod handshake;
pub mod sample;
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

/// `bytes` in the shape of an encrypted MTProto message (non-zero auth_key_id, the 24-byte
/// header, then whole 16-byte blocks): what padded intermediate carries. Its decoder strips the
/// 0..=15 padding bytes by this layout, so round trips over it use such payloads.
pub fn encrypted_shape(bytes: &[u8]) -> Vec<u8> {
    let mut p = bytes.to_vec();
    let len = 24 + p.len().saturating_sub(24) / 16 * 16;
    p.resize(len, 0);
    p[0] |= 1;
    p
}
