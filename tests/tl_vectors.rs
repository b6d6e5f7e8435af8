//! Byte-exact vectors from the spec: the auth-key sample of `mtproto_samples-auth_key.md` (every
//! TL payload of the handshake), the RSA key fingerprint of `rsa_keys_and_dh_prime.md`, and the
//! examples of `mtproto_serialize.md` / `mtproto_TL.md`. Hex strings are copied verbatim from
//! the spec files; nothing here comes from our own output.

mod common;

use common::hex;
use mtproto::core::tl::schema::{Object, enums, functions, types};
use mtproto::core::tl::{Deserialize, Reader, Serialize, TlError, Writer, bytes_len};

/// The TL payload of a plain-text message dump: after auth_key_id (8), msg_id (8) and length (4).
fn plain_body(dump: &str) -> Vec<u8> {
    let all = hex(dump);
    let len = u32::from_le_bytes(all[16..20].try_into().unwrap()) as usize;
    assert_eq!(all.len(), 20 + len, "dump length field");
    all[20..].to_vec()
}

const NONCE: &str = "79F0AFB50252E5FC96924BFCECDA4F05";
const SERVER_NONCE: &str = "801775A3EFBFD2701AA28AD727BE4646";
const NEW_NONCE: &str = "264F835B0B7BDFF9C6ED6CF819FD6DF5DCD17E90D67ADD2C2C1E3775C7A6A0AC";

fn arr16(s: &str) -> [u8; 16] {
    hex(s).try_into().unwrap()
}

#[test]
fn req_pq_multi_sample() {
    let body = plain_body(REQ_PQ_MULTI);
    let nonce = arr16(NONCE);
    let q = functions::ReqPqMulti { nonce: &nonce };
    assert_eq!(q.serialized_len(), body.len());
    assert_eq!(q.to_vec().unwrap(), body);
    assert_eq!(functions::ReqPqMulti::from_bytes(&body).unwrap(), q);
}

#[test]
fn res_pq_sample() {
    let body = plain_body(RES_PQ);
    let r = enums::ResPq::from_bytes(&body).unwrap();
    assert_eq!(r.nonce, &arr16(NONCE));
    assert_eq!(r.server_nonce, &arr16(SERVER_NONCE));
    // "bigendian conversion to decimal => 1372318559046200203"
    assert_eq!(
        u64::from_be_bytes(r.pq.try_into().unwrap()),
        1372318559046200203
    );
    let fps: Vec<i64> = ["85FD64DE851D9DD0", "A5B7F709355FC30B", "216BE86C022BB4C3"]
        .iter()
        .map(|h| i64::from_le_bytes(hex(h).try_into().unwrap()))
        .collect();
    assert_eq!(r.server_public_key_fingerprints, fps);
    assert_eq!(r.server_public_key_fingerprints[0], -3414540481677951611);
    assert_eq!(r.serialized_len(), body.len());
    assert_eq!(r.to_vec().unwrap(), body);
}

#[test]
fn p_q_inner_data_dc_sample() {
    let data = hex(&P_Q_INNER_DATA_DC.replace(' ', ""));
    let pq = hex("130B7475669FEB8B");
    let p = 1141464581u32.to_be_bytes();
    let q = 1202243663u32.to_be_bytes();
    let (nonce, server_nonce) = (arr16(NONCE), arr16(SERVER_NONCE));
    let new_nonce: [u8; 32] = hex(NEW_NONCE).try_into().unwrap();
    let inner = types::PQInnerDataDc {
        pq: &pq,
        p: &p,
        q: &q,
        nonce: &nonce,
        server_nonce: &server_nonce,
        new_nonce: &new_nonce,
        dc: 2,
    };
    assert_eq!(inner.serialized_len(), data.len());
    assert_eq!(inner.to_vec().unwrap(), data);
    match enums::PQInnerData::from_bytes(&data).unwrap() {
        enums::PQInnerData::Dc(x) => assert_eq!(x, inner),
        other => panic!("wrong variant {other:?}"),
    }
}

#[test]
fn req_dh_params_sample() {
    let body = plain_body(REQ_DH_PARAMS);
    let f = functions::ReqDhParams::from_bytes(&body).unwrap();
    assert_eq!(f.nonce, &arr16(NONCE));
    assert_eq!(f.server_nonce, &arr16(SERVER_NONCE));
    assert_eq!(f.p, &1141464581u32.to_be_bytes());
    assert_eq!(f.q, &1202243663u32.to_be_bytes());
    assert_eq!(f.public_key_fingerprint, -3414540481677951611);
    assert_eq!(f.encrypted_data.len(), 256);
    assert_eq!(&f.encrypted_data[..4], &hex("35D750FB")[..]);
    assert_eq!(f.to_vec().unwrap(), body);
    // The same bytes through the any-function decoder.
    let any = mtproto::core::tl::schema::Function::from_bytes(&body).unwrap();
    assert_eq!(any.constructor_id(), 0xd712e4be);
}

#[test]
fn server_dh_params_ok_sample() {
    let body = plain_body(SERVER_DH_PARAMS_OK);
    let enums::ServerDhParams::Ok(ok) = enums::ServerDhParams::from_bytes(&body).unwrap() else {
        panic!("expected server_DH_params_ok");
    };
    assert_eq!(ok.nonce, &arr16(NONCE));
    assert_eq!(ok.server_nonce, &arr16(SERVER_NONCE));
    // "encrypted_answer | 56, 596": a 0xfe-prefixed string of 0x000250 = 592 bytes.
    assert_eq!(ok.encrypted_answer.len(), 592);
    assert_eq!(&ok.encrypted_answer[..4], &hex("9A46DCE9")[..]);
    assert_eq!(ok.encrypted_answer[588..], hex("66B6E814")[..]);
    assert_eq!(bytes_len(592), 596);
    assert_eq!(ok.to_vec().unwrap(), body);
}

#[test]
fn server_dh_inner_data_sample() {
    let data = hex(SERVER_DH_INNER_DATA);
    let d = types::ServerDhInnerData::from_bytes(&data).unwrap();
    assert_eq!(d.nonce, &arr16(NONCE));
    assert_eq!(d.g, 3);
    assert_eq!(d.dh_prime.len(), 256);
    assert_eq!(&d.dh_prime[..4], &hex("C71CAEB9")[..]);
    assert_eq!(d.g_a.len(), 256);
    assert_eq!(d.server_time, 1735910891);
    assert_eq!(d.to_vec().unwrap(), data);
}

#[test]
fn client_dh_inner_data_sample() {
    let data = hex(CLIENT_DH_INNER_DATA);
    let d = types::ClientDhInnerData::from_bytes(&data).unwrap();
    assert_eq!(d.server_nonce, &arr16(SERVER_NONCE));
    assert_eq!(d.retry_id, 0);
    assert_eq!(d.g_b.len(), 256);
    assert_eq!(&d.g_b[..4], &hex("5EEDFBF6")[..]);
    assert_eq!(d.to_vec().unwrap(), data);
}

#[test]
fn set_client_dh_params_sample() {
    let body = plain_body(SET_CLIENT_DH_PARAMS);
    let f = functions::SetClientDhParams::from_bytes(&body).unwrap();
    assert_eq!(f.encrypted_data.len(), 336);
    assert_eq!(f.to_vec().unwrap(), body);
}

#[test]
fn dh_gen_ok_sample() {
    let body = plain_body(DH_GEN_OK);
    let ans = enums::SetClientDhParamsAnswer::from_bytes(&body).unwrap();
    let enums::SetClientDhParamsAnswer::DhGenOk(ok) = &ans else {
        panic!("expected dh_gen_ok, got {ans:?}");
    };
    assert_eq!(
        ok.new_nonce_hash1,
        &arr16("51070B3DB672B7602E4EE2FE761B36A2")
    );
    assert_eq!(ans.to_vec().unwrap(), body);
    // Any-object decoding gives the same constructor.
    assert_eq!(Object::from_bytes(&body).unwrap().name(), "dh_gen_ok");
}

#[test]
fn debug_output_redacts_secrets() {
    let body = plain_body(DH_GEN_OK);
    let ans = enums::SetClientDhParamsAnswer::from_bytes(&body).unwrap();
    let dbg = format!("{ans:?}");
    assert!(dbg.contains("<redacted>"), "{dbg}");
    for secret in ["121, 240", "79F0", "0x79"] {
        assert!(!dbg.contains(secret), "{dbg}");
    }
    let body = plain_body(RES_PQ);
    let dbg = format!("{:?}", types::ResPq::from_bytes(&body).unwrap());
    assert!(
        !dbg.contains("121, 240") && dbg.contains("pq: <8 bytes>"),
        "{dbg}"
    );
}

/// `rsa_keys_and_dh_prime.md`: the fingerprint is the low 64 bits of SHA1 over the *bare*
/// `rsa_public_key n:string e:string`, giving `85FD64DE851D9DD0` for the production key.
#[test]
fn rsa_public_key_fingerprint() {
    let n = hex(PROD_RSA_N);
    assert_eq!(n.len(), 256);
    let e = 65537u32.to_be_bytes();
    let key = types::RsaPublicKey { n: &n, e: &e[1..] };
    let mut buf = vec![0u8; key.bare_len()];
    let mut w = Writer::new(&mut buf);
    key.serialize_bare(&mut w).unwrap();
    assert_eq!(w.position(), 260 + 4);
    let digest = sha1(&buf);
    assert_eq!(digest[12..], hex("85FD64DE851D9DD0")[..]);
}

/// `mtproto_serialize.md`: strings of L <= 253 take one length byte, L >= 254 take 0xfe + 3
/// bytes; both padded with zeros to a multiple of 4.
#[test]
fn string_encoding_rules() {
    let cases: [(usize, usize); 6] = [(0, 4), (1, 4), (3, 4), (4, 8), (253, 256), (254, 260)];
    for (len, total) in cases {
        let data: Vec<u8> = (0..len).map(|i| (i as u8) | 1).collect();
        let enc = Serialize::to_vec(data.as_slice()).unwrap();
        assert_eq!(enc.len(), total, "len {len}");
        if len <= 253 {
            assert_eq!(enc[0] as usize, len);
            assert_eq!(&enc[1..1 + len], &data[..]);
            assert!(enc[1 + len..].iter().all(|&b| b == 0));
        } else {
            assert_eq!(&enc[..4], &[254, len as u8, (len >> 8) as u8, 0]);
            assert_eq!(&enc[4..4 + len], &data[..]);
        }
        assert_eq!(<&[u8]>::from_bytes(&enc).unwrap(), &data[..]);
    }
    // Non-canonical forms are rejected with a typed error.
    assert_eq!(
        <&[u8]>::from_bytes(&[1, 7, 0, 1]),
        Err(TlError::NonCanonical)
    );
    assert_eq!(
        <&[u8]>::from_bytes(&[254, 3, 0, 0, 1, 2, 3, 0]),
        Err(TlError::NonCanonical)
    );
    assert_eq!(
        <&[u8]>::from_bytes(&[255, 0, 0, 0]),
        Err(TlError::NonCanonical)
    );
    assert!(matches!(
        <&[u8]>::from_bytes(&[254, 0, 1, 0, 0, 0, 0, 0]),
        Err(TlError::UnexpectedEnd { .. })
    ));
    // A boxed Bool is boolTrue#997275b5 / boolFalse#bc799737.
    assert_eq!(true.to_vec().unwrap(), hex("B5757299"));
    assert_eq!(false.to_vec().unwrap(), hex("379779BC"));
    assert_eq!(
        bool::from_bytes(&hex("00000000")),
        Err(TlError::InvalidBool(0))
    );
    // `double` is IEEE-754 little endian.
    assert_eq!(1.5f64.to_vec().unwrap(), hex("000000000000F83F"));
}

/// The 4-byte-aligned padding must keep the reader aligned for the field that follows.
#[test]
fn reader_borrows_without_copying() {
    let body = plain_body(RES_PQ);
    let r = types::ResPq::from_bytes(&body).unwrap();
    let base = body.as_ptr() as usize;
    assert_eq!(r.nonce.as_ptr() as usize, base + 4);
    assert_eq!(r.pq.as_ptr() as usize, base + 4 + 32 + 1);
    let mut rd = Reader::new(&body).unwrap();
    rd.read_u32().unwrap();
    assert_eq!(rd.read_int128().unwrap().as_ptr() as usize, base + 4);
}

/// Straightforward SHA-1 (FIPS 180-4) as an independent reference for the fingerprint test.
fn sha1(msg: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut m = msg.to_vec();
    let bit_len = (msg.len() as u64) * 8;
    m.push(0x80);
    while m.len() % 64 != 56 {
        m.push(0);
    }
    m.extend_from_slice(&bit_len.to_be_bytes());
    for chunk in m.chunks(64) {
        let mut w = [0u32; 80];
        for i in 0..16 {
            w[i] = u32::from_be_bytes(chunk[4 * i..4 * i + 4].try_into().unwrap());
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// Hex dump of step "req_pq_multi" in `mtproto_samples-auth_key.md` (verbatim).
const REQ_PQ_MULTI: &str = concat!(
    "000000000000000060970500EBE5776714000000F18E7EBE79F0AFB50252E5FC",
    "96924BFCECDA4F05",
);

/// Hex dump of step "res_pq" in `mtproto_samples-auth_key.md` (verbatim).
const RES_PQ: &str = concat!(
    "00000000000000000128FBD2EBE57767500000006324160579F0AFB50252E5FC",
    "96924BFCECDA4F05801775A3EFBFD2701AA28AD727BE464608130B7475669FEB",
    "8B00000015C4B51C0300000085FD64DE851D9DD0A5B7F709355FC30B216BE86C",
    "022BB4C3",
);

/// Hex dump of step "p_q_inner_data_dc" in `mtproto_samples-auth_key.md` (verbatim).
const P_Q_INNER_DATA_DC: &str = concat!(
    "955FF5A908130B7475669FEB8B0000000444095E050000000447A8C84F000000",
    "79F0AFB50252E5FC96924BFCECDA4F05801775A3EFBFD2701AA28AD727BE4646",
    "264F835B0B7BDFF9C6ED6CF819FD6DF5DCD17E90D67ADD2C2C1E3775C7A6A0AC",
    "02000000",
);

/// Hex dump of step "req_dh_params" in `mtproto_samples-auth_key.md` (verbatim).
const REQ_DH_PARAMS: &str = concat!(
    "000000000000000068E50800EBE5776740010000BEE412D779F0AFB50252E5FC",
    "96924BFCECDA4F05801775A3EFBFD2701AA28AD727BE46460444095E05000000",
    "0447A8C84F00000085FD64DE851D9DD0FE00010035D750FBDF8B804F60951295",
    "9103977D8F3B90189B7B2DE9C14F53FF8B5910AB2371A1B8D855B5787B94BC67",
    "068CAE657367C68170C0DE7E3DBEA38980F15A4BE1C0A6F3B2C0FF279D684965",
    "85D2F58924EE2CCCB55746FABAAE2DC0CCBB9E168B79ABC0BC7E68BEE0130708",
    "E680938F7A2BFA633285DA63784C8EBEF6156755504F68006E66CDF346B13B85",
    "12ABE830706DD9265329EFDE99DFB0F72AA11119140C941537353423295C519F",
    "04A25CACEE3293E8CF2C799515175E96DD36F913BB4B1A19D92EAE3BC8883A33",
    "3523AC18D4A5165A32FD67990497F1208EF643CA0093D01DCF2E537DCBCC2258",
    "1630291B7217600B8725E657383D156905B2BF16",
);

/// Hex dump of step "server_dh_params_ok" in `mtproto_samples-auth_key.md` (verbatim).
const SERVER_DH_PARAMS_OK: &str = concat!(
    "000000000000000001AC68E8EBE57767780200005C07E8D079F0AFB50252E5FC",
    "96924BFCECDA4F05801775A3EFBFD2701AA28AD727BE4646FE5002009A46DCE9",
    "D54DE42C5E4F0D19D776C8C1F318EB1AF8836500B5DA1B1A80D58038A554FEAF",
    "627E6DC4E4924943602D8E19488A6E38A0B81346257E4DB5BE6E9E00FE991FD6",
    "C56D618D3D0A2493202677AC7CF245846C1494F60D08E61B7FEA8BB72DD8BA53",
    "F6CBF78F2B387757FE2E7F345A368ABBEC694EFDE066DC3D2375CF010D1E1BF4",
    "351724B269E68B541409E07649FEEE1DF6DC5B3C18166879CC67876782D43EC9",
    "B79AF8ACF67868F4AB7DE4082603B670EC622B5DFBBB9E908FE0244593A4D224",
    "74316020CE0E76A5C6AD021D3989451E0B3E8EE48C355992DB90300B376B296E",
    "18BB470300C7DF14BFAE05A452583EAD93167941208BBB5AC8099F0494AA27D6",
    "C1A5B678AD12B19FB7D423BB4A29C0EB03169EC538211D82FEB50F209652D00D",
    "3399986B3B0CA09CEB5E2FCCB49017FEE5F54930D9DE371172B3FF1080D733E5",
    "DD620B42DBB76A3E9C25B1B89AB8AA35C099322CA390E269D8818EA8722008DE",
    "537705B4071DA7DEF502FCD5A30D2026EA8A87A0F4915803A8271B665690E96A",
    "ABDFC0B479538AE61BA701EDFF14F7212370958ED41EC8E41E427C407FBB0360",
    "565C1A6BDF285BC5120B11631B75803DFBF8AAEBDC47418A1F061747005ABA93",
    "14EE5E261C3E504EAE0ADAAC832B414BF6F7002982CE5B5AE2513761EE29FA1C",
    "BA090B9A39AACE2948A80E144DB2C622589D79FB42E3DAE491104E8A653DED76",
    "29CDE08B6C41E90E55B0EBCD4F1FC50FADDF4A7A9F6D711F0959DFEF04A744A6",
    "ADFD890B2AB405B9AD5F8E3F38928108F4CD0BA501A492FC463BC7BE8C506B5F",
    "7D24CC819A95929166B6E814",
);

/// Hex dump of step "server_dh_inner_data" in `mtproto_samples-auth_key.md` (verbatim).
const SERVER_DH_INNER_DATA: &str = concat!(
    "BA0D89B579F0AFB50252E5FC96924BFCECDA4F05801775A3EFBFD2701AA28AD7",
    "27BE464603000000FE000100C71CAEB9C6B1C9048E6C522F70F13F73980D4023",
    "8E3E21C14934D037563D930F48198A0AA7C14058229493D22530F4DBFA336F6E",
    "0AC925139543AED44CCE7C3720FD51F69458705AC68CD4FE6B6B13ABDC974651",
    "2969328454F18FAF8C595F642477FE96BB2A941D5BCD1D4AC8CC49880708FA9B",
    "378E3C4F3A9060BEE67CF9A4A4A695811051907E162753B56B0F6B410DBA74D8",
    "A84B2A14B3144E0EF1284754FD17ED950D5965B4B9DD46582DB1178D169C6BC4",
    "65B0D6FF9CA3928FEF5B9AE4E418FC15E83EBEA0F87FA9FF5EED70050DED2849",
    "F47BF959D956850CE929851F0D8115F635B105EE2E4E15D04B2454BF6F4FADF0",
    "34B10403119CD8E3B92FCC5BFE000100236F6D779877A357465CEC030AC5FDA6",
    "D6B377372BFA75574289988FD87D966A29B47E0C00BC788900304EA5E03F3856",
    "058C309A6CB508553913788D41A61B1D82B0A2F932C68F18FC21851E66D8649A",
    "D9E2092F08C96AD67810724369BF0511E74E1F71F1A825EDDFA1D5DC30E35969",
    "3C0366FF9FB6828699ACFD1F037116F95ADD42F6C64B580B3287AA32FBA518E4",
    "B8C9C7B52413B501247DB05ADDD891794394DB529E66890603BCD75CF70E6151",
    "398EE85F6D8178EA72C6A61937BCE32BFDAEA86B57A27EBC379933F54C7D44F3",
    "E407ED26685D88F0F10A344CDF62F4E20974B374BA1D41DF223A867DD19713CF",
    "0FF71F24465D79258B1742916EE35EE3EBE57767",
);

/// Hex dump of step "client_dh_inner_data" in `mtproto_samples-auth_key.md` (verbatim).
const CLIENT_DH_INNER_DATA: &str = concat!(
    "54B6436679F0AFB50252E5FC96924BFCECDA4F05801775A3EFBFD2701AA28AD7",
    "27BE46460000000000000000FE0001005EEDFBF6A2199CD1B06182C5C4E0DC26",
    "B69ECDE1AD6430D192CD8A69E7434B66A42900AF29B3F41C619AD383FB372170",
    "5CF52C34C0507433F743592EE5D4FC50F64E0F8686870E36179AF8C8F4587BD5",
    "72E98AF4A8247DE2F524BCD48642B38F36104046D7502CDC14BF39A88422B4B1",
    "111D886A326C473D1145E69E37C676E1E8FDA07E470482F853886700AE1E7FFD",
    "E69FF6D40547C515110B74C6680C844B61504FE0A2D3E08BB7BAE70016C97D7E",
    "6B7FA4CEBFE6B5BE30C884849ADE39CC50FD9B4FB16F671EFE8533D0BF7FF8BF",
    "13957F1E0D55E713199CEACC72419AF60CDB1D561084565E9F090141B9F8732B",
    "2E806C1B01B25BAFFC4EE1BD5525CB8A",
);

/// Hex dump of step "set_client_dh_params" in `mtproto_samples-auth_key.md` (verbatim).
const SET_CLIENT_DH_PARAMS: &str = concat!(
    "00000000000000006CE50800EBE57767780100001F5F04F579F0AFB50252E5FC",
    "96924BFCECDA4F05801775A3EFBFD2701AA28AD727BE4646FE500100FA29896E",
    "E19D3CCB08FB07CF1C922CFFBF5D38D98BA56D926D63064C77741F423BCE22B5",
    "A2C100E34BB5D7CE3027E85E65006205B6926C0E42EF29E7CC24EEC4523650F6",
    "92A530FB95D57EF3604C490155FB8530C94E9E2EBDF272BDB3DD98FFCA65FF51",
    "E5DBCA4CF799D6660F6D0BA1A8B1CE6FE9D26F401B1B79E057EE273CAE14D8D8",
    "D60030C862E13B2E49FE97008AEA0EC8ADE90AE3DDDC641AE7C0844A37EFC4DA",
    "3B27308B9C40B1FD2028C12B37EA719D593DC7EDC892B8630B82E05168FCC0D7",
    "6E7CA23106FEF13B09D3BAE83D612CDF2E3A5ADDE4E807EEED660C9921AD364C",
    "FF6614350F313A48AB3483F08AB81A226F7763A575F44A04BD53C58A49ABD2EE",
    "4A885F2610A8387803E418C371AF9378A0941F2DB0AA9CE019048B6C9ED0C7FC",
    "B33985624E2392233CAA5E66A3891AB18544685E96EF5C2B55E69EA2C62B33E6",
    "058DA2944F087B803F251A7C",
);

/// Hex dump of step "dh_gen_ok" in `mtproto_samples-auth_key.md` (verbatim).
const DH_GEN_OK: &str = concat!(
    "000000000000000001CC0A7BEDE577673400000034F7CB3B79F0AFB50252E5FC",
    "96924BFCECDA4F05801775A3EFBFD2701AA28AD727BE464651070B3DB672B760",
    "2E4EE2FE761B36A2",
);

/// Production RSA key modulus, `rsa_keys_and_dh_prime.md`.
const PROD_RSA_N: &str = concat!(
    "E8BB3305C0B52C6CF2AFDF7637313489E63E05268E5BADB601AF417786472E5F",
    "93B85438968E20E6729A301C0AFC121BF7151F834436F7FDA680847A66BF64AC",
    "CEC78EE21C0B316F0EDAFE2F41908DA7BD1F4A5107638EEB67040ACE472A14F9",
    "0D9F7C2B7DEF99688BA3073ADB5750BB02964902A359FE745D8170E36876D4FD",
    "8A5D41B2A76CBFF9A13267EB9580B2D06D10357448D20D9DA2191CB5D8C93982",
    "961CDFDEDA629E37F1FB09A0722027696032FE61ED663DB7A37F6F263D370F69",
    "DB53A0DC0A1748BDAAFF6209D5645485E6E001D1953255757E4B8E42813347B1",
    "1DA6AB500FD0ACE7E6DFA3736199CCAF9397ED0745A427DCFA6CD67BCB1ACFF3",
);
