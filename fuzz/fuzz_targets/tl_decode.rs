#![no_main]
//! Decode any boxed MTProto object (and function, and each multi-constructor boxed type); whatever
//! decodes must re-encode to exactly the bytes it was decoded from, with an exact size report.

use libfuzzer_sys::fuzz_target;
use mtproto_core::tl::schema::{Function, Object, enums};
use mtproto_core::tl::{Deserialize, Reader, Serialize};

fn check<'a, T: Deserialize<'a> + Serialize + PartialEq + core::fmt::Debug>(data: &'a [u8]) {
    // Whole input.
    if let Ok(v) = T::from_bytes(data) {
        let out = v.to_vec().expect("re-encode");
        assert_eq!(v.serialized_len(), out.len());
        assert_eq!(out, data, "{v:?}");
    }
    // A prefix, as a stream decoder would see it.
    if let Ok(mut r) = Reader::new(data) {
        if let Ok(v) = T::deserialize(&mut r) {
            let used = r.position();
            let out = v.to_vec().expect("re-encode");
            assert_eq!(&out[..], &data[..used], "{v:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check::<Object>(data);
    check::<Function>(data);
    check::<enums::PQInnerData>(data);
    check::<enums::ServerDhParams>(data);
    check::<enums::SetClientDhParamsAnswer>(data);
    check::<enums::BadMsgNotification>(data);
    check::<enums::MsgDetailedInfo>(data);
    check::<Vec<i64>>(data);
});
