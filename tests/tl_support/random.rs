//! Random *valid* TL encodings driven by the parsed schema (not by the crate under test), for the
//! round-trip and robustness properties.

use super::Decl;

/// SplitMix64: tiny, deterministic, good enough to pick shapes and fill bytes.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A TL `bytes` value of a random length (short, around the 253/254 boundary, or long).
fn tl_bytes(rng: &mut Rng) -> Vec<u8> {
    let len = match rng.below(4) {
        0 => 0,
        1 => rng.below(16),
        2 => 250 + rng.below(8),
        _ => rng.below(600),
    };
    let data = rng.bytes(len);
    let mut out = if len <= 253 {
        vec![len as u8]
    } else {
        vec![254, len as u8, (len >> 8) as u8, (len >> 16) as u8]
    };
    out.extend(data);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out
}

/// Random encoding of the fields of `d` (its bare form).
pub fn bare(d: &Decl, all: &[Decl], rng: &mut Rng, depth: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < d.params.len() {
        let (name, ty) = &d.params[i];
        if name == "bytes" && ty == "int" && d.params.get(i + 1).is_some_and(|(_, t)| t == "Object")
        {
            let len = 4 * rng.below(12);
            out.extend((len as i32).to_le_bytes());
            out.extend(rng.bytes(len));
            i += 2;
            continue;
        }
        out.extend(value(ty, all, rng, depth));
        i += 1;
    }
    out
}

/// Random encoding of a value of field type `ty`.
pub fn value(ty: &str, all: &[Decl], rng: &mut Rng, depth: u32) -> Vec<u8> {
    match ty {
        "int" => rng.bytes(4),
        "long" => rng.bytes(8),
        "double" => rng.bytes(8),
        "int128" => rng.bytes(16),
        "int256" => rng.bytes(32),
        "bytes" | "string" => tl_bytes(rng),
        "Object" => {
            let n = rng.below(40);
            rng.bytes(n)
        }
        t => {
            if let Some(inner) = t.strip_prefix("Vector<").and_then(|s| s.strip_suffix('>')) {
                let mut out = vec![0x15, 0xc4, 0xb5, 0x1c];
                out.extend(vector_body(inner, all, rng, depth));
                return out;
            }
            if let Some(inner) = t.strip_prefix("vector<").and_then(|s| s.strip_suffix('>')) {
                return vector_body(inner, all, rng, depth);
            }
            boxed(t, all, rng, depth)
        }
    }
}

fn vector_body(elem: &str, all: &[Decl], rng: &mut Rng, depth: u32) -> Vec<u8> {
    let n = if depth > 3 { 0 } else { rng.below(5) };
    let mut out = (n as u32).to_le_bytes().to_vec();
    for _ in 0..n {
        match elem {
            "long" | "int" | "int128" | "bytes" => out.extend(value(elem, all, rng, depth + 1)),
            e => {
                let bare_name = e.strip_prefix('%').unwrap_or(e);
                let d = all
                    .iter()
                    .find(|d| {
                        !d.builtin
                            && !d.is_function
                            && (d.name == bare_name || d.result == bare_name)
                    })
                    .unwrap_or_else(|| panic!("element {e}"));
                out.extend(bare(d, all, rng, depth + 1));
            }
        }
    }
    out
}

/// Random boxed value of type `t`: a random constructor of it, its id, then its fields.
pub fn boxed(t: &str, all: &[Decl], rng: &mut Rng, depth: u32) -> Vec<u8> {
    let ctors: Vec<&Decl> = all
        .iter()
        .filter(|d| !d.builtin && !d.is_function && d.result == t)
        .collect();
    assert!(!ctors.is_empty(), "no constructor of {t}");
    let d = ctors[rng.below(ctors.len())];
    let mut out = d.id(all).to_le_bytes().to_vec();
    out.extend(bare(d, all, rng, depth + 1));
    out
}

/// Random boxed encoding of the declaration `d` itself.
pub fn decl(d: &Decl, all: &[Decl], rng: &mut Rng) -> Vec<u8> {
    let mut out = d.id(all).to_le_bytes().to_vec();
    out.extend(bare(d, all, rng, 0));
    out
}
