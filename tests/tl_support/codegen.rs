//! Generator of `mtproto-core/src/tl/schema.rs` from `mtproto-core/tl/{mtproto,extra}.tl`.
//! Run `MTPROTO_REGEN_TL=1 cargo test --test tl_schema generated_schema_is_up_to_date` to rewrite it.

use super::{Decl, pascal};
use std::fmt::Write as _;

/// Fields whose values are secrets or per-session identifiers: redacted in `Debug`.
const SECRET_FIELDS: &[&str] = &[
    "nonce",
    "server_nonce",
    "new_nonce",
    "new_nonce_hash",
    "new_nonce_hash1",
    "new_nonce_hash2",
    "new_nonce_hash3",
    "retry_id",
    "temp_auth_key_id",
    "perm_auth_key_id",
    "temp_session_id",
    "session_id",
    "server_salt",
    "new_server_salt",
    "salt",
    "unique_id",
];

#[derive(Clone, Debug)]
enum Elem {
    Long,
    Int,
    /// Bare constructor (struct name).
    Bare(String),
}

#[derive(Clone, Debug)]
enum Kind {
    Int,
    Long,
    Double,
    Int128,
    Int256,
    Bytes,
    /// `Object` in last position: all remaining input.
    ObjectRest,
    /// `bytes:int body:Object`: the int is the body length (message).
    ObjectSized,
    Vector {
        boxed: bool,
        elem: Elem,
    },
    /// A boxed single-constructor type (struct name).
    BoxedStruct(String),
    /// A boxed multi-constructor type (enum name).
    BoxedEnum(String),
}

struct Field {
    name: String,
    ty_text: String,
    kind: Kind,
}

struct Ctx<'a> {
    all: &'a [Decl],
}

impl Ctx<'_> {
    fn ctors_of(&self, result: &str) -> Vec<&Decl> {
        self.all
            .iter()
            .filter(|d| !d.builtin && !d.is_function && d.result == result)
            .collect()
    }

    fn ctor_named(&self, name: &str) -> Option<&Decl> {
        self.all
            .iter()
            .find(|d| !d.builtin && !d.is_function && d.name == name)
    }

    fn elem(&self, t: &str) -> Elem {
        match t {
            "long" => Elem::Long,
            "int" => Elem::Int,
            _ => {
                let bare = t.strip_prefix('%').unwrap_or(t);
                let d = self
                    .ctor_named(bare)
                    .or_else(|| {
                        let c = self.ctors_of(bare);
                        (c.len() == 1).then(|| c[0])
                    })
                    .unwrap_or_else(|| panic!("unsupported vector element {t}"));
                Elem::Bare(pascal(&d.name))
            }
        }
    }

    fn kind(&self, ty: &str) -> Kind {
        match ty {
            "int" => Kind::Int,
            "long" => Kind::Long,
            "double" => Kind::Double,
            "int128" => Kind::Int128,
            "int256" => Kind::Int256,
            "bytes" | "string" => Kind::Bytes,
            "Object" => Kind::ObjectRest,
            _ => {
                if let Some(inner) = ty.strip_prefix("Vector<").and_then(|s| s.strip_suffix('>')) {
                    let elem = match inner {
                        "long" => Elem::Long,
                        "int" => Elem::Int,
                        other => panic!("unsupported boxed vector element {other}"),
                    };
                    return Kind::Vector { boxed: true, elem };
                }
                if let Some(inner) = ty.strip_prefix("vector<").and_then(|s| s.strip_suffix('>')) {
                    return Kind::Vector {
                        boxed: false,
                        elem: self.elem(inner),
                    };
                }
                let ctors = self.ctors_of(ty);
                match ctors.len() {
                    0 => panic!("unknown type {ty}"),
                    1 => Kind::BoxedStruct(pascal(&ctors[0].name)),
                    _ => Kind::BoxedEnum(pascal(ty)),
                }
            }
        }
    }

    fn fields(&self, d: &Decl) -> Vec<Field> {
        let mut out: Vec<Field> = Vec::new();
        let n = d.params.len();
        let mut i = 0;
        while i < n {
            let (name, ty) = &d.params[i];
            let next_is_object = d.params.get(i + 1).is_some_and(|(_, t)| t == "Object");
            if name == "bytes" && ty == "int" && next_is_object {
                let (bname, bty) = &d.params[i + 1];
                out.push(Field {
                    name: bname.clone(),
                    ty_text: format!("bytes:int {bname}:{bty}"),
                    kind: Kind::ObjectSized,
                });
                i += 2;
                continue;
            }
            let kind = self.kind(ty);
            if matches!(kind, Kind::ObjectRest) {
                assert_eq!(i + 1, n, "{}: Object must be last", d.name);
            }
            out.push(Field {
                name: name.clone(),
                ty_text: format!("{name}:{ty}"),
                kind,
            });
            i += 1;
        }
        out
    }

    fn struct_needs_lt(&self, name: &str) -> bool {
        let d = self
            .all
            .iter()
            .find(|d| !d.builtin && pascal(&d.name) == name && !d.is_function)
            .unwrap_or_else(|| panic!("no struct {name}"));
        self.decl_needs_lt(d)
    }

    fn enum_needs_lt(&self, name: &str) -> bool {
        self.all
            .iter()
            .filter(|d| !d.builtin && !d.is_function && pascal(&d.result) == name)
            .any(|d| self.decl_needs_lt(d))
    }

    fn decl_needs_lt(&self, d: &Decl) -> bool {
        self.fields(d).iter().any(|f| self.kind_needs_lt(&f.kind))
    }

    fn kind_needs_lt(&self, k: &Kind) -> bool {
        match k {
            Kind::Int | Kind::Long | Kind::Double => false,
            Kind::Int128 | Kind::Int256 | Kind::Bytes | Kind::ObjectRest | Kind::ObjectSized => {
                true
            }
            Kind::Vector {
                elem: Elem::Bare(s),
                ..
            } => self.struct_needs_lt(s),
            Kind::Vector { .. } => false,
            Kind::BoxedStruct(s) => self.struct_needs_lt(s),
            Kind::BoxedEnum(e) => self.enum_needs_lt(e),
        }
    }

    fn min_len(&self, k: &Kind) -> String {
        match k {
            Kind::Int => "4".into(),
            Kind::Long | Kind::Double => "8".into(),
            Kind::Int128 => "16".into(),
            Kind::Int256 => "32".into(),
            Kind::Bytes => "4".into(),
            Kind::ObjectRest => "0".into(),
            Kind::ObjectSized => "4".into(),
            Kind::Vector { boxed: true, .. } => "8".into(),
            Kind::Vector { boxed: false, .. } => "4".into(),
            Kind::BoxedStruct(s) => format!("4 + super::types::{s}::MIN_BARE_LEN"),
            Kind::BoxedEnum(e) => {
                format!("<super::enums::{e} as Deserialize>::MIN_SERIALIZED_LEN")
            }
        }
    }

    fn ty(&self, k: &Kind) -> String {
        let lt = |b: bool| if b { "<'a>" } else { "" };
        match k {
            Kind::Int => "i32".into(),
            Kind::Long => "i64".into(),
            Kind::Double => "f64".into(),
            Kind::Int128 => "&'a [u8; 16]".into(),
            Kind::Int256 => "&'a [u8; 32]".into(),
            Kind::Bytes | Kind::ObjectRest | Kind::ObjectSized => "&'a [u8]".into(),
            Kind::Vector {
                elem: Elem::Long, ..
            } => "Vec<i64>".into(),
            Kind::Vector {
                elem: Elem::Int, ..
            } => "Vec<i32>".into(),
            Kind::Vector {
                elem: Elem::Bare(s),
                ..
            } => {
                format!("Vec<super::types::{s}{}>", lt(self.struct_needs_lt(s)))
            }
            Kind::BoxedStruct(s) => format!("super::types::{s}{}", lt(self.struct_needs_lt(s))),
            Kind::BoxedEnum(e) => format!("super::enums::{e}{}", lt(self.enum_needs_lt(e))),
        }
    }

    /// The terms of a field's encoded size (summed with the saturating `len_sum`, so the
    /// generated code has no unchecked arithmetic).
    fn len_terms(&self, f: &Field) -> Vec<String> {
        let n = &f.name;
        match &f.kind {
            Kind::Int => vec!["4".into()],
            Kind::Long | Kind::Double => vec!["8".into()],
            Kind::Int128 => vec!["16".into()],
            Kind::Int256 => vec!["32".into()],
            Kind::Bytes => vec![format!("bytes_len(self.{n}.len())")],
            Kind::ObjectRest => vec![format!("self.{n}.len()")],
            Kind::ObjectSized => vec!["4".into(), format!("self.{n}.len()")],
            Kind::Vector { boxed, elem } => {
                let h = if *boxed { 8 } else { 4 };
                let body = match elem {
                    Elem::Long => format!("self.{n}.len().saturating_mul(8)"),
                    Elem::Int => format!("self.{n}.len().saturating_mul(4)"),
                    Elem::Bare(_) => format!("len_sum(self.{n}.iter().map(|x| x.bare_len()))"),
                };
                vec![h.to_string(), body]
            }
            Kind::BoxedStruct(_) | Kind::BoxedEnum(_) => {
                vec![format!("self.{n}.serialized_len()")]
            }
        }
    }

    fn write_stmt(&self, f: &Field) -> String {
        let n = &f.name;
        match &f.kind {
            Kind::Int => format!("w.write_i32(self.{n})?;"),
            Kind::Long => format!("w.write_i64(self.{n})?;"),
            Kind::Double => format!("w.write_f64(self.{n})?;"),
            Kind::Int128 => format!("w.write_int128(self.{n})?;"),
            Kind::Int256 => format!("w.write_int256(self.{n})?;"),
            Kind::Bytes => format!("w.write_bytes(self.{n})?;"),
            Kind::ObjectRest => format!("w.write_raw(self.{n})?;"),
            Kind::ObjectSized => format!(
                "w.write_i32(i32::try_from(self.{n}.len()).map_err(|_| TlError::ValueTooLarge)?)?;\n        w.write_raw(self.{n})?;"
            ),
            Kind::Vector { boxed, elem } => {
                let e = match elem {
                    Elem::Long => "w.write_i64(*x)?;",
                    Elem::Int => "w.write_i32(*x)?;",
                    Elem::Bare(_) => "x.serialize_bare(w)?;",
                };
                format!(
                    "w.write_vector_header(self.{n}.len(), {boxed})?;\n        for x in &self.{n} {{\n            {e}\n        }}"
                )
            }
            Kind::BoxedStruct(_) | Kind::BoxedEnum(_) => format!("self.{n}.serialize(w)?;"),
        }
    }

    fn read_expr(&self, f: &Field) -> String {
        match &f.kind {
            Kind::Int => "r.read_i32()?".into(),
            Kind::Long => "r.read_i64()?".into(),
            Kind::Double => "r.read_f64()?".into(),
            Kind::Int128 => "r.read_int128()?".into(),
            Kind::Int256 => "r.read_int256()?".into(),
            Kind::Bytes => "r.read_bytes()?".into(),
            Kind::ObjectRest => "r.read_rest()".into(),
            Kind::ObjectSized => "read_sized_object(r)?".into(),
            Kind::Vector { boxed, elem } => {
                let m = if *boxed {
                    "read_vector_with"
                } else {
                    "read_bare_vector_with"
                };
                match elem {
                    Elem::Long => format!("r.{m}(8, |r| r.read_i64())?"),
                    Elem::Int => format!("r.{m}(4, |r| r.read_i32())?"),
                    Elem::Bare(s) => format!(
                        "r.{m}(super::types::{s}::MIN_BARE_LEN, super::types::{s}::deserialize_bare)?"
                    ),
                }
            }
            Kind::BoxedStruct(_) | Kind::BoxedEnum(_) => "Deserialize::deserialize(r)?".into(),
        }
    }
}

fn doc_escape(s: &str) -> String {
    s.replace('[', "\\[").replace(']', "\\]")
}

const HEADER: &str = r#"//! Every constructor and function of the MTProto TL schema as Rust types.
//!
//! GENERATED by `tests/tl_support/codegen.rs` from `mtproto-core/tl/mtproto.tl` (the official
//! schema, `../shared/spec/mtproto.tl`) and `mtproto-core/tl/extra.tl` (deprecated combinators and
//! the bare `rsa_public_key`). Do not edit by hand: change the `.tl` files or the generator and run
//! `MTPROTO_REGEN_TL=1 cargo test --test tl_schema`. A test fails when this file is out of date.
//!
//! Each struct has `CONSTRUCTOR_ID`, `MIN_BARE_LEN`, `bare_len` / `serialize_bare` /
//! `deserialize_bare` (the bare type), and implements [`Serialize`] / [`Deserialize`] as the boxed
//! type (constructor id first). Field types borrow from the input: `int128` is `&'a [u8; 16]`,
//! `int256` is `&'a [u8; 32]`, `bytes`/`string` are `&'a [u8]`, an `Object` is its raw encoded body.
//! In `message msg_id:long seqno:int bytes:int body:Object` the `bytes` field is implied by
//! `body.len()`. Nonces, salts, session and key ids are redacted in `Debug`; byte fields print
//! their length only.
#![allow(clippy::identity_op, clippy::needless_lifetimes, clippy::match_single_binding)]

use alloc::vec::Vec;
use core::fmt;

use super::{Deserialize, Identifiable, Reader, RemoteCall, Serialize, TlError, Writer, bytes_len};

/// Debug stand-in for a secret value.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Debug stand-in for a byte string: its length only.
struct ByteLen(usize);

impl fmt::Debug for ByteLen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

/// Sum of encoded sizes, saturating: it can only overflow for values that cannot exist in memory,
/// and a saturated length is then refused (no buffer or allocation is that large) instead of
/// wrapping to a short one.
fn len_sum(parts: impl IntoIterator<Item = usize>) -> usize {
    parts.into_iter().fold(0, usize::saturating_add)
}

/// `bytes:int body:Object`: a length, then that many raw bytes.
fn read_sized_object<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], TlError> {
    let n = r.read_i32()?;
    let len = usize::try_from(n).map_err(|_| TlError::NegativeLength(n))?;
    r.read_raw(len)
}
"#;

fn emit_struct(ctx: &Ctx, d: &Decl, out: &mut String) {
    let all = ctx.all;
    let name = pascal(&d.name);
    let id = d.id(all);
    let fields = ctx.fields(d);
    let lt = ctx.decl_needs_lt(d);
    let g = if lt { "<'a>" } else { "" };
    let anon = if lt { "<'_>" } else { "" };
    let has_double = fields.iter().any(|f| matches!(f.kind, Kind::Double));
    let eq = if has_double { "" } else { ", Eq" };
    let text = doc_escape(&d.text);
    writeln!(out, "/// `{text}`").unwrap();
    if d.explicit_id.is_none() {
        writeln!(
            out,
            "///\n/// (No id in the schema: `{id:#010x}` is the CRC32 of the declaration.)"
        )
        .unwrap();
    }
    if d.extra {
        writeln!(out, "///\n/// Not in the current official schema (deprecated or bare-only; see `tl/extra.tl`).").unwrap();
    }
    if fields.is_empty() {
        writeln!(out, "#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]").unwrap();
        writeln!(out, "pub struct {name};\n").unwrap();
    } else {
        writeln!(out, "#[derive(Clone, PartialEq{eq})]").unwrap();
        writeln!(out, "pub struct {name}{g} {{").unwrap();
        for f in &fields {
            writeln!(out, "    /// `{}`", doc_escape(&f.ty_text)).unwrap();
            writeln!(out, "    pub {}: {},", f.name, ctx.ty(&f.kind)).unwrap();
        }
        writeln!(out, "}}\n").unwrap();
        // Debug
        writeln!(out, "impl fmt::Debug for {name}{anon} {{").unwrap();
        writeln!(
            out,
            "    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {{"
        )
        .unwrap();
        writeln!(out, "        f.debug_struct(\"{name}\")").unwrap();
        for f in &fields {
            let n = &f.name;
            let v = if SECRET_FIELDS.contains(&n.as_str()) {
                "&Redacted".to_string()
            } else if matches!(f.kind, Kind::Bytes | Kind::ObjectRest | Kind::ObjectSized) {
                format!("&ByteLen(self.{n}.len())")
            } else {
                format!("&self.{n}")
            };
            writeln!(out, "            .field(\"{n}\", {v})").unwrap();
        }
        writeln!(out, "            .finish()\n    }}\n}}\n").unwrap();
    }
    // inherent impl
    let min: Vec<String> = if fields.is_empty() {
        vec!["0".into()]
    } else {
        fields.iter().map(|f| ctx.min_len(&f.kind)).collect()
    };
    writeln!(out, "impl{g} {name}{g} {{").unwrap();
    writeln!(out, "    /// The constructor id.").unwrap();
    writeln!(out, "    pub const CONSTRUCTOR_ID: u32 = {id:#010x};").unwrap();
    writeln!(out, "    /// The TL name of the combinator.").unwrap();
    writeln!(out, "    pub const NAME: &'static str = \"{}\";", d.name).unwrap();
    writeln!(
        out,
        "    /// The smallest bare encoding (without the constructor id)."
    )
    .unwrap();
    writeln!(
        out,
        "    pub const MIN_BARE_LEN: usize = {};",
        min.join(" + ")
    )
    .unwrap();
    writeln!(out).unwrap();
    writeln!(
        out,
        "    /// Encoded size of the bare value (without the constructor id)."
    )
    .unwrap();
    let terms: Vec<String> = fields.iter().flat_map(|f| ctx.len_terms(f)).collect();
    let body = match terms.as_slice() {
        [] => "0".to_string(),
        [one] => one.clone(),
        _ => format!(
            "len_sum([\n            {},\n        ])",
            terms.join(",\n            ")
        ),
    };
    writeln!(
        out,
        "    pub fn bare_len(&self) -> usize {{\n        {body}\n    }}\n"
    )
    .unwrap();
    writeln!(
        out,
        "    /// Writes the bare value (the fields, without the constructor id)."
    )
    .unwrap();
    let wparam = if fields.is_empty() { "_w" } else { "w" };
    writeln!(
        out,
        "    pub fn serialize_bare(&self, {wparam}: &mut Writer<'_>) -> Result<(), TlError> {{"
    )
    .unwrap();
    for f in &fields {
        writeln!(out, "        {}", ctx.write_stmt(f)).unwrap();
    }
    writeln!(out, "        Ok(())\n    }}\n").unwrap();
    writeln!(
        out,
        "    /// Reads the bare value (the fields, without the constructor id)."
    )
    .unwrap();
    let rlt = if lt { "'a" } else { "'_" };
    if fields.is_empty() {
        writeln!(out, "    pub fn deserialize_bare(_r: &mut Reader<{rlt}>) -> Result<Self, TlError> {{\n        Ok(Self)\n    }}").unwrap();
    } else {
        writeln!(
            out,
            "    pub fn deserialize_bare(r: &mut Reader<{rlt}>) -> Result<Self, TlError> {{"
        )
        .unwrap();
        writeln!(out, "        r.nested(|r| {{\n            Ok(Self {{").unwrap();
        for f in &fields {
            writeln!(out, "                {}: {},", f.name, ctx.read_expr(f)).unwrap();
        }
        writeln!(out, "            }})\n        }})\n    }}").unwrap();
    }
    writeln!(out, "}}\n").unwrap();
    writeln!(
        out,
        "impl Identifiable for {name}{anon} {{\n    const CONSTRUCTOR_ID: u32 = {id:#010x};\n}}\n"
    )
    .unwrap();
    writeln!(out, "impl Serialize for {name}{anon} {{").unwrap();
    writeln!(
        out,
        "    fn serialized_len(&self) -> usize {{\n        self.bare_len().saturating_add(4)\n    }}"
    )
    .unwrap();
    writeln!(out, "    fn serialize(&self, w: &mut Writer<'_>) -> Result<(), TlError> {{\n        w.write_u32(Self::CONSTRUCTOR_ID)?;\n        self.serialize_bare(w)\n    }}\n}}\n").unwrap();
    writeln!(out, "impl<'a> Deserialize<'a> for {name}{g} {{").unwrap();
    writeln!(
        out,
        "    const MIN_SERIALIZED_LEN: usize = 4 + Self::MIN_BARE_LEN;"
    )
    .unwrap();
    writeln!(out, "    fn deserialize(r: &mut Reader<'a>) -> Result<Self, TlError> {{\n        r.expect_constructor(Self::CONSTRUCTOR_ID)?;\n        Self::deserialize_bare(r)\n    }}\n}}\n").unwrap();
}

/// An enum over `decls` (all boxed), dispatching on the constructor id.
fn emit_enum(
    ctx: &Ctx,
    name: &str,
    doc: &str,
    decls: &[&Decl],
    strip: Option<&str>,
    out: &mut String,
) {
    let all = ctx.all;
    let lt = decls.iter().any(|d| ctx.decl_needs_lt(d));
    let g = if lt { "<'a>" } else { "" };
    let anon = if lt { "<'_>" } else { "" };
    let variant = |d: &Decl| -> String {
        let full = pascal(&d.name);
        if let Some(rest) = strip.and_then(|p| full.strip_prefix(p))
            && rest.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        {
            return rest.to_string();
        }
        full
    };
    let ty = |d: &Decl| -> String {
        let s = pascal(&d.name);
        let m = if d.is_function { "functions" } else { "types" };
        if ctx.decl_needs_lt(d) {
            format!("super::{m}::{s}<'a>")
        } else {
            format!("super::{m}::{s}")
        }
    };
    let any_double = decls
        .iter()
        .any(|d| ctx.fields(d).iter().any(|f| matches!(f.kind, Kind::Double)));
    let eq = if any_double { "" } else { ", Eq" };
    writeln!(out, "{doc}").unwrap();
    writeln!(
        out,
        "#[derive(Clone, Debug, PartialEq{eq})]\npub enum {name}{g} {{"
    )
    .unwrap();
    for d in decls {
        writeln!(out, "    /// `{}`", doc_escape(&d.text)).unwrap();
        writeln!(out, "    {}({}),", variant(d), ty(d)).unwrap();
    }
    writeln!(out, "}}\n").unwrap();
    writeln!(out, "impl{g} {name}{g} {{").unwrap();
    writeln!(out, "    /// The constructor id of the value.\n    pub fn constructor_id(&self) -> u32 {{\n        match self {{").unwrap();
    for d in decls {
        writeln!(
            out,
            "            Self::{}(_) => {:#010x},",
            variant(d),
            d.id(all)
        )
        .unwrap();
    }
    writeln!(out, "        }}\n    }}\n").unwrap();
    writeln!(out, "    /// The TL name of the value's combinator.\n    pub fn name(&self) -> &'static str {{\n        match self {{").unwrap();
    for d in decls {
        writeln!(
            out,
            "            Self::{}(_) => \"{}\",",
            variant(d),
            d.name
        )
        .unwrap();
    }
    writeln!(out, "        }}\n    }}\n}}\n").unwrap();
    writeln!(out, "impl Serialize for {name}{anon} {{").unwrap();
    writeln!(
        out,
        "    fn serialized_len(&self) -> usize {{\n        match self {{"
    )
    .unwrap();
    for d in decls {
        writeln!(
            out,
            "            Self::{}(x) => x.serialized_len(),",
            variant(d)
        )
        .unwrap();
    }
    writeln!(out, "        }}\n    }}").unwrap();
    writeln!(out, "    fn serialize(&self, w: &mut Writer<'_>) -> Result<(), TlError> {{\n        match self {{").unwrap();
    for d in decls {
        writeln!(
            out,
            "            Self::{}(x) => x.serialize(w),",
            variant(d)
        )
        .unwrap();
    }
    writeln!(out, "        }}\n    }}\n}}\n").unwrap();
    let min = decls
        .iter()
        .map(|d| format!("{}::MIN_BARE_LEN", ty(d).replace("<'a>", "")))
        .fold(None::<String>, |acc, m| {
            Some(match acc {
                None => m,
                Some(a) => format!("min({a}, {m})"),
            })
        })
        .unwrap();
    writeln!(out, "impl<'a> Deserialize<'a> for {name}{g} {{").unwrap();
    writeln!(out, "    const MIN_SERIALIZED_LEN: usize = 4 + {min};").unwrap();
    writeln!(out, "    fn deserialize(r: &mut Reader<'a>) -> Result<Self, TlError> {{\n        match r.peek_u32()? {{").unwrap();
    for d in decls {
        writeln!(
            out,
            "            {:#010x} => Ok(Self::{}(Deserialize::deserialize(r)?)),",
            d.id(all),
            variant(d)
        )
        .unwrap();
    }
    writeln!(
        out,
        "            id => Err(TlError::UnknownConstructor {{ id }}),\n        }}\n    }}\n}}\n"
    )
    .unwrap();
    for d in decls {
        writeln!(out, "impl{g} From<{}> for {name}{g} {{\n    fn from(x: {}) -> Self {{\n        Self::{}(x)\n    }}\n}}\n", ty(d), ty(d), variant(d)).unwrap();
    }
}

/// Generates the whole `schema.rs`.
pub fn generate(all: &[Decl]) -> String {
    let ctx = Ctx { all };
    let decls: Vec<&Decl> = all.iter().filter(|d| !d.builtin).collect();
    let types: Vec<&Decl> = decls.iter().copied().filter(|d| !d.is_function).collect();
    let funcs: Vec<&Decl> = decls.iter().copied().filter(|d| d.is_function).collect();
    let mut out = String::from(HEADER);
    out.push_str(
        "\nconst fn min(a: usize, b: usize) -> usize {\n    if a < b { a } else { b }\n}\n",
    );

    out.push_str("\n/// Constructors (the types section), one struct each.\npub mod types {\n    use super::*;\n\n");
    let mut body = String::new();
    for d in &types {
        emit_struct(&ctx, d, &mut body);
    }
    out.push_str(&indent(&body));
    out.push_str("}\n");

    // enums: result types in order of first appearance
    let mut results: Vec<&str> = Vec::new();
    for d in &types {
        if !results.contains(&d.result.as_str()) && d.result != "Object" {
            results.push(&d.result);
        }
    }
    let mut body = String::new();
    for r in &results {
        let ctors = ctx.ctors_of(r);
        let name = pascal(r);
        if ctors.len() == 1 {
            let s = pascal(&ctors[0].name);
            let lt = ctx.decl_needs_lt(ctors[0]);
            let g = if lt { "<'a>" } else { "" };
            writeln!(body, "/// The boxed type `{r}`: its only constructor is [`types::{s}`].\npub type {name}{g} = super::types::{s}{g};\n").unwrap();
        } else {
            let doc = format!("/// The boxed type `{r}`: dispatches on the constructor id.");
            emit_enum(&ctx, &name, &doc, &ctors, Some(&name), &mut body);
        }
    }
    out.push_str("\n/// Boxed types: an enum per type with several constructors, an alias otherwise.\npub mod enums {\n    use super::*;\n\n");
    out.push_str(&indent(&body));
    out.push_str("}\n");

    let mut body = String::new();
    for d in &funcs {
        emit_struct(&ctx, d, &mut body);
        let name = pascal(&d.name);
        let lt = ctx.decl_needs_lt(d);
        let anon = if lt { "<'_>" } else { "" };
        let rname = pascal(&d.result);
        let rlt = if ctx.enum_needs_lt(&rname) {
            "<'r>"
        } else {
            ""
        };
        writeln!(body, "impl RemoteCall for {name}{anon} {{\n    type Return<'r> = super::enums::{rname}{rlt};\n}}\n").unwrap();
    }
    out.push_str("\n/// RPC functions: serialize one to get the query; its `RemoteCall::Return` decodes the answer.\npub mod functions {\n    use super::*;\n\n");
    out.push_str(&indent(&body));
    out.push_str("}\n\n");

    let mut body = String::new();
    emit_enum(
        &ctx,
        "Object",
        "/// Any boxed constructor of the schema (the TL `Object` pseudotype): decodes whatever\n/// value comes, dispatching on its constructor id; an unknown id is\n/// [`TlError::UnknownConstructor`].",
        &types,
        None,
        &mut body,
    );
    emit_enum(
        &ctx,
        "Function",
        "/// Any function of the schema (what a server receives), dispatching on the constructor id.",
        &funcs,
        None,
        &mut body,
    );
    out.push_str(
        &body
            .replace("super::types::", "types::")
            .replace("super::functions::", "functions::"),
    );
    out
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| {
            if l.is_empty() {
                String::from("\n")
            } else {
                format!("    {l}\n")
            }
        })
        .collect()
}
