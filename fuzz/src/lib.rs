//! Helpers shared by the fuzz targets.

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
