//! Test-side TL schema tooling shared by the `tl_*` integration tests: a parser for the `.tl`
//! files, the CRC32 normalization of `mtproto_TL.md`, and the generator of
//! `mtproto-core/src/tl/schema.rs`. Written independently of the crate under test.
#![allow(dead_code)]

pub mod codegen;
pub mod random;

use std::path::PathBuf;

/// Workspace root (the facade crate's manifest dir).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One combinator declaration.
#[derive(Clone, Debug)]
pub struct Decl {
    /// `resPQ`
    pub name: String,
    /// The `#xxxxxxxx` written in the schema, if any.
    pub explicit_id: Option<u32>,
    /// `(field name, type as written)`
    pub params: Vec<(String, String)>,
    /// Declaration text as written, without `;`.
    pub text: String,
    /// Result type, e.g. `ResPQ`.
    pub result: String,
    /// In the `---functions---` section.
    pub is_function: bool,
    /// From `extra.tl` (not in the current official schema).
    pub extra: bool,
    /// `int ? = Int`, `vector ...`, `int128 4*[ int ] = Int128`: built-ins, not generated.
    pub builtin: bool,
}

impl Decl {
    /// The constructor id: the explicit one, or the CRC32 of the normalized declaration.
    pub fn id(&self, all: &[Decl]) -> u32 {
        self.explicit_id
            .unwrap_or_else(|| crc32(normalize(&self.text, all).as_bytes()))
    }
}

/// Parses a `.tl` file.
pub fn parse(src: &str, extra: bool) -> Vec<Decl> {
    let mut out = Vec::new();
    let mut is_function = false;
    let mut stmt = String::new();
    for line in src.lines() {
        let line = match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        };
        let t = line.trim();
        if t == "---functions---" {
            is_function = true;
            continue;
        }
        if t == "---types---" {
            is_function = false;
            continue;
        }
        stmt.push(' ');
        stmt.push_str(t);
        while let Some(i) = stmt.find(';') {
            let text: String = stmt[..i].split_whitespace().collect::<Vec<_>>().join(" ");
            stmt = stmt[i + 1..].to_string();
            if !text.is_empty() {
                out.push(parse_decl(&text, is_function, extra));
            }
        }
    }
    assert!(stmt.trim().is_empty(), "unterminated declaration: {stmt}");
    out
}

fn parse_decl(text: &str, is_function: bool, extra: bool) -> Decl {
    let (lhs, result) = text.split_once(" = ").expect("declaration without ' = '");
    let mut toks = lhs.split_whitespace();
    let head = toks.next().expect("empty declaration");
    let (name, explicit_id) = match head.split_once('#') {
        Some((n, id)) => (
            n.to_string(),
            Some(u32::from_str_radix(id, 16).expect("bad id")),
        ),
        None => (head.to_string(), None),
    };
    let rest: Vec<&str> = toks.collect();
    let builtin = rest.iter().any(|t| !t.contains(':'))
        || [
            "vector", "int", "long", "double", "string", "int128", "int256",
        ]
        .contains(&name.as_str());
    let params = if builtin {
        Vec::new()
    } else {
        rest.iter()
            .map(|t| {
                let (n, ty) = t.split_once(':').expect("param without ':'");
                (n.to_string(), ty.to_string())
            })
            .collect()
    };
    Decl {
        name,
        explicit_id,
        params,
        text: text.to_string(),
        result: result.trim().to_string(),
        is_function,
        extra,
        builtin,
    }
}

/// Normalizes a declaration for its CRC32 as `mtproto_TL.md` / `mtproto_serialize.md` describe:
/// drop the `#id`, `bytes` is `string`, `T<A>` is `T A`, braces and parentheses go, `%X` of a
/// single-constructor boxed type is that constructor's bare name, `flags.N?true` fields are not
/// part of the id, single spaces between lexemes.
pub fn normalize(text: &str, all: &[Decl]) -> String {
    let mut toks: Vec<String> = Vec::new();
    for (i, tok) in text.split_whitespace().enumerate() {
        let mut t = tok.to_string();
        if i == 0
            && let Some(p) = t.find('#')
        {
            t.truncate(p);
        }
        if t.contains("?true") {
            continue;
        }
        toks.push(t);
    }
    let joined = toks.join(" ");
    let mut s = String::new();
    for c in joined.chars() {
        match c {
            '<' | '>' | ',' => s.push(' '),
            '{' | '}' | '(' | ')' => {}
            _ => s.push(c),
        }
    }
    let mut out = Vec::new();
    for tok in s.split_whitespace() {
        let mut t = tok.to_string();
        // `name:bytes` / bare `bytes` -> string
        if let Some((n, ty)) = t.split_once(':') {
            let ty = if ty == "bytes" { "string" } else { ty };
            t = format!("{n}:{ty}");
        } else if t == "bytes" {
            t = "string".into();
        }
        if let Some(boxed) = t.strip_prefix('%') {
            let ctors: Vec<&Decl> = all
                .iter()
                .filter(|d| d.result == boxed && !d.is_function)
                .collect();
            if ctors.len() == 1 {
                t = ctors[0].name.clone();
            }
        }
        out.push(t);
    }
    out.join(" ")
}

/// Plain bitwise CRC32 (IEEE, reflected, poly 0xedb88320): an independent reference.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Both schema files of mtproto-core: the official schema and the extras.
pub fn load_schema() -> Vec<Decl> {
    let dir = root().join("mtproto-core/tl");
    let main = std::fs::read_to_string(dir.join("mtproto.tl")).expect("read mtproto.tl");
    let extra = std::fs::read_to_string(dir.join("extra.tl")).expect("read extra.tl");
    let mut all = parse(&main, false);
    all.extend(parse(&extra, true));
    all
}

/// `resPQ` -> `ResPq`, `server_DH_params_ok` -> `ServerDhParamsOk`, `RSAPublicKey` -> `RsaPublicKey`.
pub fn pascal(name: &str) -> String {
    let mut out = String::new();
    for part in name.split(['_', '.']) {
        let chars: Vec<char> = part.chars().collect();
        let mut words: Vec<String> = Vec::new();
        let mut cur = String::new();
        for (i, &c) in chars.iter().enumerate() {
            let boundary = i > 0
                && c.is_ascii_uppercase()
                && (chars[i - 1].is_ascii_lowercase()
                    || chars[i - 1].is_ascii_digit()
                    || chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase()));
            if boundary && !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            cur.push(c);
        }
        if !cur.is_empty() {
            words.push(cur);
        }
        for w in words {
            let mut cs = w.chars();
            if let Some(f) = cs.next() {
                out.push(f.to_ascii_uppercase());
                out.extend(cs.map(|c| c.to_ascii_lowercase()));
            }
        }
    }
    out
}
