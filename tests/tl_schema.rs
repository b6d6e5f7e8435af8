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
