//! The traits are open: user code implements `Serialize`/`Deserialize`/`RemoteCall` for its own
//! API types (the `mtproto_TL.md` example, `invokeWithLayer`, `flags.N?T` fields), and the
//! reader's hard limits hold for them too.

use mtproto::core::tl::schema::{enums, functions};
use mtproto::core::tl::{
    Deserialize, Identifiable, Limits, Raw, Reader, RemoteCall, Serialize, TlError, Writer,
    bytes_len, flag,
};

fn words(ws: &[u32]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.to_le_bytes()).collect()
}

// ---- mtproto_TL.md example schema ----
// user#d23c81a3 id:int first_name:string last_name:string = User;
// no_user#c67599d1 id:int = User;
// getUsers#2d84d5f5 (Vector int) = Vector User;

#[derive(Debug, PartialEq)]
enum User<'a> {
    User {
        id: i32,
        first_name: &'a str,
        last_name: &'a str,
    },
    NoUser {
        id: i32,
    },
}

impl Serialize for User<'_> {
    fn serialized_len(&self) -> usize {
        match self {
            User::User {
                first_name,
                last_name,
                ..
            } => 8 + first_name.serialized_len() + last_name.serialized_len(),
            User::NoUser { .. } => 8,
        }
    }
    fn serialize(&self, w: &mut Writer<'_>) -> Result<(), TlError> {
        match self {
            User::User {
                id,
                first_name,
                last_name,
            } => {
                w.write_u32(0xd23c81a3)?;
                w.write_i32(*id)?;
                first_name.serialize(w)?;
                last_name.serialize(w)
            }
            User::NoUser { id } => {
                w.write_u32(0xc67599d1)?;
                w.write_i32(*id)
            }
        }
    }
}

impl<'a> Deserialize<'a> for User<'a> {
    const MIN_SERIALIZED_LEN: usize = 8;
    fn deserialize(r: &mut Reader<'a>) -> Result<Self, TlError> {
        r.nested(|r| match r.read_u32()? {
            0xd23c81a3 => Ok(User::User {
                id: r.read_i32()?,
                first_name: r.read_str()?,
                last_name: r.read_str()?,
            }),
            0xc67599d1 => Ok(User::NoUser { id: r.read_i32()? }),
            id => Err(TlError::UnknownConstructor { id }),
        })
    }
}

struct GetUsers(Vec<i32>);

impl Identifiable for GetUsers {
    const CONSTRUCTOR_ID: u32 = 0x2d84d5f5;
}

impl Serialize for GetUsers {
    fn serialized_len(&self) -> usize {
        4 + self.0.serialized_len()
    }
    fn serialize(&self, w: &mut Writer<'_>) -> Result<(), TlError> {
        w.write_u32(Self::CONSTRUCTOR_ID)?;
        self.0.serialize(w)
    }
}

impl RemoteCall for GetUsers {
    type Return<'r> = Vec<User<'r>>;
}

#[test]
fn tl_md_get_users_example() {
    // "F5 D5 84 2D 15 C4 B5 1C 03 00 00 00 02 00 00 00 03 00 00 00 04 00 00 00"
    let q = GetUsers(vec![2, 3, 4]);
    let expected = words(&[0x2d84d5f5, 0x1cb5c415, 3, 2, 3, 4]);
    assert_eq!(q.to_vec().unwrap(), expected);
    assert_eq!(q.serialized_len(), 24);
    assert_eq!(
        expected,
        [
            0xF5, 0xD5, 0x84, 0x2D, 0x15, 0xC4, 0xB5, 0x1C, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4,
            0, 0, 0
        ]
    );

    let answer = words(&[
        0x1cb5c415, 0x3, 0xd23c81a3, 0x2, 0x74655005, 0x00007265, 0x72615006, 0x72656b, 0xc67599d1,
        0x3, 0xd23c81a3, 0x4, 0x686f4a04, 0x6e, 0x656f4403,
    ]);
    let users = <GetUsers as RemoteCall>::Return::from_bytes(&answer).unwrap();
    assert_eq!(
        users,
        vec![
            User::User {
                id: 2,
                first_name: "Peter",
                last_name: "Parker"
            },
            User::NoUser { id: 3 },
            User::User {
                id: 4,
                first_name: "John",
                last_name: "Doe"
            },
        ]
    );
    assert_eq!(users.to_vec().unwrap(), answer);
}

// ---- invokeWithLayer#da9b0d0d {X:Type} layer:int query:!X = X; (api_invoking.md) ----

struct InvokeWithLayer<Q> {
    layer: i32,
    query: Q,
}

impl<Q: Serialize> Serialize for InvokeWithLayer<Q> {
    fn serialized_len(&self) -> usize {
        8 + self.query.serialized_len()
    }
    fn serialize(&self, w: &mut Writer<'_>) -> Result<(), TlError> {
        w.write_u32(0xda9b0d0d)?;
        w.write_i32(self.layer)?;
        self.query.serialize(w)
    }
}

impl<Q: RemoteCall> RemoteCall for InvokeWithLayer<Q> {
    type Return<'r> = Q::Return<'r>;
}

fn decode_answer<'a, F: RemoteCall>(_: &F, bytes: &'a [u8]) -> Result<F::Return<'a>, TlError> {
    F::Return::from_bytes(bytes)
}

#[test]
fn invoke_with_layer_wraps_any_query() {
    let ping = functions::Ping {
        ping_id: 0x0102030405060708,
    };
    let call = InvokeWithLayer {
        layer: 201,
        query: ping,
    };
    let bytes = call.to_vec().unwrap();
    let mut expected = words(&[0xda9b0d0d, 201, 0x7abe77ec]);
    expected.extend(0x0102030405060708i64.to_le_bytes());
    assert_eq!(bytes, expected);
    assert_eq!(call.serialized_len(), bytes.len());

    // The answer type follows the inner query: Pong.
    let pong = words(&[0x347773c5, 1, 0, 8, 0]);
    let answer: enums::Pong = decode_answer(&call, &pong).unwrap();
    assert_eq!(answer.msg_id, 1);
    assert_eq!(answer.ping_id, 8);

    // Pre-serialized bytes pass through untouched.
    let raw_query = words(&[0xdeadbeef, 7]);
    let wrapped = InvokeWithLayer {
        layer: 1,
        query: Raw(&raw_query),
    }
    .to_vec()
    .unwrap();
    assert_eq!(&wrapped[8..], &raw_query[..]);
}

// ---- flags: example#0badf00d flags:# a:flags.0?int b:flags.1?true c:string = Example ----

#[derive(Debug, PartialEq)]
struct Example<'a> {
    a: Option<i32>,
    b: bool,
    c: &'a [u8],
}

impl Serialize for Example<'_> {
    fn serialized_len(&self) -> usize {
        8 + self.a.map_or(0, |_| 4) + bytes_len(self.c.len())
    }
    fn serialize(&self, w: &mut Writer<'_>) -> Result<(), TlError> {
        let flags = u32::from(self.a.is_some()) | (u32::from(self.b) << 1);
        w.write_u32(0x0badf00d)?;
        w.write_u32(flags)?;
        if let Some(a) = self.a {
            w.write_i32(a)?;
        }
        w.write_bytes(self.c)
    }
}

impl<'a> Deserialize<'a> for Example<'a> {
    fn deserialize(r: &mut Reader<'a>) -> Result<Self, TlError> {
        r.expect_constructor(0x0badf00d)?;
        let flags = r.read_u32()?;
        Ok(Example {
            a: if flag(flags, 0) {
                Some(r.read_i32()?)
            } else {
                None
            },
            b: flag(flags, 1),
            c: r.read_bytes()?,
        })
    }
}

#[test]
fn conditional_fields_and_true_flags() {
    for (a, b) in [
        (None, false),
        (Some(-5), false),
        (None, true),
        (Some(9), true),
    ] {
        let v = Example { a, b, c: b"hi" };
        let bytes = v.to_vec().unwrap();
        assert_eq!(bytes.len(), v.serialized_len());
        let flags = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
        assert_eq!(flags, u32::from(a.is_some()) | (u32::from(b) << 1));
        // `true` takes no bytes; the int only when its bit is set.
        assert_eq!(bytes.len(), 8 + if a.is_some() { 4 } else { 0 } + 4);
        assert_eq!(Example::from_bytes(&bytes).unwrap(), v);
    }
    assert!(!flag(u32::MAX, 32));
}

// ---- limits ----

/// `tree#00000001 children:Vector<Tree> = Tree;` — recursion to test the depth limit.
#[derive(Debug, PartialEq)]
struct Tree(Vec<Tree>);

impl Serialize for Tree {
    fn serialized_len(&self) -> usize {
        4 + self.0.serialized_len()
    }
    fn serialize(&self, w: &mut Writer<'_>) -> Result<(), TlError> {
        w.write_u32(1)?;
        self.0.serialize(w)
    }
}

impl<'a> Deserialize<'a> for Tree {
    const MIN_SERIALIZED_LEN: usize = 12;
    fn deserialize(r: &mut Reader<'a>) -> Result<Self, TlError> {
        r.nested(|r| {
            r.expect_constructor(1)?;
            Ok(Tree(r.read_vector()?))
        })
    }
}

fn chain(depth: usize) -> Tree {
    (0..depth).fold(Tree(vec![]), |t, _| Tree(vec![t]))
}

#[test]
fn nesting_depth_is_limited() {
    let shallow = chain(10).to_vec().unwrap();
    assert_eq!(Tree::from_bytes(&shallow).unwrap(), chain(10));
    // Each level is a constructor plus a vector: 2 levels of the default 32.
    let deep = chain(100).to_vec().unwrap();
    assert_eq!(Tree::from_bytes(&deep), Err(TlError::TooDeep { max: 32 }));
    let tight = Limits {
        max_depth: 5,
        ..Limits::DEFAULT
    };
    let mut r = Reader::with_limits(&shallow, tight).unwrap();
    assert_eq!(Tree::deserialize(&mut r), Err(TlError::TooDeep { max: 5 }));
}

#[test]
fn huge_vector_claims_fail_before_allocating() {
    // A 4-byte bare vector header claiming 2^31 elements.
    let claim = 0x8000_0000u32.to_le_bytes();
    let mut r = Reader::new(&claim).unwrap();
    assert_eq!(
        r.read_bare_vector_with(8, |r| r.read_i64()),
        Err(TlError::VectorTooLong {
            len: 0x8000_0000,
            max: 1 << 20
        })
    );
    // Even with no count limit, the remaining input bounds it.
    let open = Limits {
        max_vector_len: u32::MAX,
        ..Limits::DEFAULT
    };
    let mut r = Reader::with_limits(&claim, open).unwrap();
    assert_eq!(
        r.read_vector_len(8),
        Err(TlError::VectorExceedsInput {
            len: 0x8000_0000,
            remaining: 0
        })
    );
    // Boxed, as a msgs_ack: 3 elements claimed, 2 present.
    let ack = words(&[0x62d6b459, 0x1cb5c415, 3, 1, 0, 2, 0]);
    assert_eq!(
        enums::MsgsAck::from_bytes(&ack),
        Err(TlError::VectorExceedsInput {
            len: 3,
            remaining: 16
        })
    );
    let tight = Limits {
        max_vector_len: 2,
        ..Limits::DEFAULT
    };
    let mut r = Reader::with_limits(&ack, tight).unwrap();
    assert_eq!(
        enums::MsgsAck::deserialize(&mut r),
        Err(TlError::VectorTooLong { len: 3, max: 2 })
    );
}

#[test]
fn message_size_and_other_typed_errors() {
    let small = Limits {
        max_message_size: 8,
        ..Limits::DEFAULT
    };
    assert_eq!(
        Reader::with_limits(&[0; 12], small).err(),
        Some(TlError::MessageTooLarge { len: 12, max: 8 })
    );
    // Unknown constructor ids carry the id.
    let unknown = words(&[0x12345678, 0]);
    assert_eq!(
        mtproto::core::tl::schema::Object::from_bytes(&unknown),
        Err(TlError::UnknownConstructor { id: 0x12345678 })
    );
    assert_eq!(
        enums::ServerDhParams::from_bytes(&words(&[0x347773c5])),
        Err(TlError::UnknownConstructor { id: 0x347773c5 })
    );
    // A single-constructor type checks its id.
    assert_eq!(
        enums::Pong::from_bytes(&words(&[0x62d6b459, 0, 0, 0, 0])),
        Err(TlError::UnexpectedConstructor {
            expected: 0x347773c5,
            found: 0x62d6b459
        })
    );
    // message.bytes must not be negative nor claim more than is there.
    let container = |len: u32| words(&[0x73f1f8dc, 1, 4, 0, 2, len, 0x2144ca19]);
    assert_eq!(
        mtproto::core::tl::schema::Object::from_bytes(&container(0xffff_fffc)),
        Err(TlError::NegativeLength(-4))
    );
    assert!(matches!(
        mtproto::core::tl::schema::Object::from_bytes(&container(8)),
        Err(TlError::UnexpectedEnd { .. })
    ));
    let good = container(4);
    let ok = mtproto::core::tl::schema::Object::from_bytes(&good).unwrap();
    assert_eq!(ok.name(), "msg_container");
    // Trailing bytes after a complete value.
    assert_eq!(
        enums::Pong::from_bytes(&words(&[0x347773c5, 0, 0, 0, 0, 9])),
        Err(TlError::TrailingBytes { remaining: 4 })
    );
    // The writer reports a too-small buffer instead of panicking.
    let mut buf = [0u8; 10];
    assert_eq!(
        functions::Ping { ping_id: 1 }.serialize_into(&mut buf),
        Err(TlError::BufferTooSmall {
            needed: 8,
            available: 6
        })
    );
    // Display is implemented for every error.
    assert!(
        TlError::UnknownConstructor { id: 0xabc }
            .to_string()
            .contains("0x00000abc")
    );
}
