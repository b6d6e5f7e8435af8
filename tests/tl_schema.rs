//! The MTProto schema: the generated code is up to date, the checked-in schema is the spec's,
//! every constructor id equals the CRC32 of its normalized declaration, and every declaration has
//! a Rust type with that id.

mod tl_support;

use mtproto::core::tl::schema::{Function, Object};
use mtproto::core::tl::{Deserialize, Serialize};
use tl_support::{Decl, codegen, crc32, load_schema, normalize, parse, root};

#[test]
fn generated_schema_is_up_to_date() {
    let all = load_schema();
    let code = codegen::generate(&all);
    let path = root().join("mtproto-core/src/tl/schema.rs");
    if std::env::var_os("MTPROTO_REGEN_TL").is_some() {
        std::fs::write(&path, &code).expect("write schema.rs");
    }
    let current = std::fs::read_to_string(&path).expect("read schema.rs");
    assert!(
        current == code,
        "schema.rs is out of date: run MTPROTO_REGEN_TL=1 cargo test --test tl_schema"
    );
}

/// `mtproto-core/tl/mtproto.tl` is the BEGIN..END block of `../shared/spec/mtproto.tl`, verbatim.
#[test]
fn checked_in_schema_matches_spec() {
    let spec_path = root().join("../shared/spec/mtproto.tl");
    let Ok(spec) = std::fs::read_to_string(&spec_path) else {
        eprintln!(
            "spec not found at {}; comparison skipped",
            spec_path.display()
        );
        return;
    };
    let begin = "// ---- BEGIN core.telegram.org/schema/mtproto ----\n";
    let b = spec.find(begin).expect("BEGIN marker") + begin.len();
    let e = spec
        .find("// ---- END core.telegram.org/schema/mtproto ----")
        .expect("END marker");
    let ours = std::fs::read_to_string(root().join("mtproto-core/tl/mtproto.tl")).unwrap();
    assert_eq!(ours, spec[b..e]);
}

/// The CRC32 rule checked on the spec's own examples first, so the normalization is trusted.
#[test]
fn crc32_rule_matches_spec_examples() {
    // mtproto_TL.md
    assert_eq!(
        crc32(b"user id:int first_name:string last_name:string = User"),
        0xd23c81a3
    );
    assert_eq!(crc32(b"getUsers Vector int = Vector User"), 0x2d84d5f5);
    assert_eq!(
        normalize("getUsers (Vector int) = Vector User", &[]),
        "getUsers Vector int = Vector User"
    );
    assert_eq!(
        normalize("vector {t:Type} # [ t ] = Vector t", &[]),
        "vector t:Type # [ t ] = Vector t"
    );
    assert_eq!(crc32(b"vector t:Type # [ t ] = Vector t"), 0x1cb5c415);
    assert_eq!(crc32(b"int ? = Int"), 0xa8509bda);
    assert_eq!(mtproto::core::tl::VECTOR_ID, 0x1cb5c415);
    assert_eq!(
        normalize("a#00000001 x:Vector<long> y:bytes f:flags.0?true = A", &[]),
        "a x:Vector long y:string = A"
    );
}

#[test]
fn every_id_is_crc32_of_normalized_declaration() {
    let all = load_schema();
    let mut checked = 0;
    for d in &all {
        let crc = crc32(normalize(&d.text, &all).as_bytes());
        if let Some(id) = d.explicit_id {
            assert_eq!(id, crc, "{}: {:?}", d.text, normalize(&d.text, &all));
            checked += 1;
        }
    }
    // The built-in vector (no id printed in the schema) has the well-known one.
    let v = all.iter().find(|d| d.name == "vector").unwrap();
    assert_eq!(crc32(normalize(&v.text, &all).as_bytes()), 0x1cb5c415);
    let official = parse(
        &std::fs::read_to_string(root().join("mtproto-core/tl/mtproto.tl")).unwrap(),
        false,
    );
    let official_ids = official.iter().filter(|d| d.explicit_id.is_some()).count();
    assert_eq!(official_ids, 46, "declarations with ids in mtproto.tl");
    assert_eq!(checked, official_ids + 5, "plus the extras with ids");
}

/// Minimal valid encoding of a value of TL type `ty` (as written in a field).
fn minimal(ty: &str, all: &[Decl]) -> Vec<u8> {
    match ty {
        "int" => vec![0; 4],
        "long" => vec![0; 8],
        "int128" => vec![0; 16],
        "int256" => vec![0; 32],
        "bytes" | "string" => vec![0; 4],
        "Object" => Vec::new(),
        t if t.starts_with("Vector<") => [0x15, 0xc4, 0xb5, 0x1c, 0, 0, 0, 0].to_vec(),
        t if t.starts_with("vector<") => vec![0; 4],
        boxed => {
            let ctor = all
                .iter()
                .find(|d| !d.builtin && !d.is_function && d.result == boxed)
                .unwrap_or_else(|| panic!("no constructor for {boxed}"));
            let mut out = ctor.id(all).to_le_bytes().to_vec();
            for (_, t) in &ctor.params {
                out.extend(minimal(t, all));
            }
            out
        }
    }
}

/// Every declaration decodes through the any-object / any-function decoder to a Rust type whose
/// constructor id is the CRC32 id and whose TL name is the declaration's; it re-encodes exactly.
#[test]
fn every_declaration_has_a_rust_type() {
    let all = load_schema();
    let mut n = 0;
    for d in all.iter().filter(|d| !d.builtin) {
        let id = d.id(&all);
        let mut bytes = id.to_le_bytes().to_vec();
        for (_, t) in &d.params {
            bytes.extend(minimal(t, &all));
        }
        let (got_id, got_name, back) = if d.is_function {
            let f = Function::from_bytes(&bytes).unwrap_or_else(|e| panic!("{}: {e}", d.name));
            (f.constructor_id(), f.name(), f.to_vec().unwrap())
        } else {
            let o = Object::from_bytes(&bytes).unwrap_or_else(|e| panic!("{}: {e}", d.name));
            (o.constructor_id(), o.name(), o.to_vec().unwrap())
        };
        assert_eq!(got_id, id, "{}", d.name);
        assert_eq!(got_name, d.name);
        assert_eq!(back, bytes, "{}", d.name);
        n += 1;
    }
    assert_eq!(n, 47 + 6, "every non-builtin declaration");
}

mod props {
    use super::tl_support::random::{self, Rng};
    use super::tl_support::{Decl, load_schema};
    use mtproto::core::tl::schema::{Function, Object, enums};
    use mtproto::core::tl::{Deserialize, Serialize, TlError};
    use proptest::prelude::*;
    use std::sync::LazyLock;

    static SCHEMA: LazyLock<Vec<Decl>> = LazyLock::new(load_schema);

    fn decls() -> impl Iterator<Item = &'static Decl> {
        SCHEMA.iter().filter(|d| !d.builtin)
    }

    /// decode -> encode must give back the input and `serialized_len` must be exact. Since
    /// `encode(decode(b)) == b`, `decode(encode(x)) == x` holds for every decoded `x` (decoding is a
    /// function of the bytes); checked once more on a copy. Returns the decode error, if any.
    fn check<'a, T>(input: &'a [u8]) -> Result<(), TlError>
    where
        T: Deserialize<'a> + Serialize + PartialEq + std::fmt::Debug,
    {
        let v = T::from_bytes(input)?;
        let out = v.to_vec().expect("encode a decoded value");
        assert_eq!(v.serialized_len(), out.len(), "{v:?}");
        assert_eq!(out, input, "re-encoding differs: {v:?}");
        let again = T::from_bytes(input).expect("decode the same bytes again");
        assert_eq!(again, v);
        Ok(())
    }

    /// The enum of a multi-constructor boxed type, by its TL name.
    fn check_enum(result: &str, input: &[u8]) -> Option<Result<(), TlError>> {
        Some(match result {
            "P_Q_inner_data" => check::<enums::PQInnerData>(input),
            "Server_DH_Params" => check::<enums::ServerDhParams>(input),
            "Set_client_DH_params_answer" => check::<enums::SetClientDhParamsAnswer>(input),
            "RpcDropAnswer" => check::<enums::RpcDropAnswer>(input),
            "DestroySessionRes" => check::<enums::DestroySessionRes>(input),
            "BadMsgNotification" => check::<enums::BadMsgNotification>(input),
            "MsgDetailedInfo" => check::<enums::MsgDetailedInfo>(input),
            "DestroyAuthKeyRes" => check::<enums::DestroyAuthKeyRes>(input),
            "MsgResendReq" => check::<enums::MsgResendReq>(input),
            _ => return None,
        })
    }

    /// Every boxed type with several constructors is covered by `check_enum`.
    #[test]
    fn every_enum_is_checked() {
        for d in decls().filter(|d| !d.is_function) {
            let n = decls()
                .filter(|x| !x.is_function && x.result == d.result)
                .count();
            if n > 1 {
                assert!(
                    check_enum(&d.result, &[]).is_some(),
                    "{} not covered",
                    d.result
                );
            }
        }
    }

    fn check_any(d: &Decl, input: &[u8]) -> Result<(), TlError> {
        if d.is_function {
            check::<Function>(input)
        } else {
            check::<Object>(input)?;
            check_enum(&d.result, input).unwrap_or(Ok(()))
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// For every constructor and function: decode(encode(x)) == x and the reported size is
        /// exact, on random valid encodings built from the schema text.
        #[test]
        fn roundtrip_every_declaration(seed: u64) {
            let mut rng = Rng(seed);
            for d in decls() {
                let input = random::decl(d, &SCHEMA, &mut rng);
                if let Err(e) = check_any(d, &input) {
                    panic!("{}: {e} on {input:02x?}", d.name);
                }
            }
        }

        /// Mutated and random inputs never panic; whatever still decodes re-encodes to exactly
        /// the input (only canonical encodings are accepted).
        #[test]
        fn hostile_bytes_never_panic(seed: u64, raw in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut rng = Rng(seed);
            let all: Vec<&Decl> = decls().collect();
            let d = all[rng.below(all.len())];
            let mut input = random::decl(d, &SCHEMA, &mut rng);
            match rng.below(6) {
                0 => input.truncate(rng.below(input.len() + 1)),
                1 => {
                    for _ in 0..=rng.below(3) {
                        let i = rng.below(input.len());
                        input[i] ^= (rng.next() as u8) | 1;
                    }
                }
                2 => {
                    let i = rng.below(input.len() / 4 + 1) * 4;
                    let big = [0xffff_ffffu32, 0x8000_0000, 0x7fff_ffff, 0x0010_0001, rng.next() as u32];
                    let v = big[rng.below(big.len())].to_le_bytes();
                    for (k, b) in v.iter().enumerate() {
                        if let Some(x) = input.get_mut(i + k) {
                            *x = *b;
                        }
                    }
                }
                3 => {
                    input.truncate(4);
                    input.extend_from_slice(&raw);
                }
                4 => input.extend_from_slice(&raw[..raw.len() % 9]),
                _ => input = raw.clone(),
            }
            let _ = check::<Object>(&input);
            let _ = check::<Function>(&input);
            let _ = check_enum(&d.result, &input);
        }
    }
}
