//! Replay of the official auth key example (`mtproto_samples-auth_key.md`): with the sample's
//! random values injected, our client produces the sample's requests byte for byte and derives the
//! sample's auth key. Every constant below is copied from that page (hex dumps include the
//! 20-byte unencrypted-message header); nothing is copied from our own output.
//!
//! The RSA_PAD `temp_key` of step 4 is not published, so `req_DH_params.encrypted_data` cannot
//! be reproduced; instead a second run offers our demo key's fingerprint, and the test decrypts
//! `encrypted_data` with the demo private key to check that the RSA_PAD input is the sample's
//! `data` followed by the sample's `random_padding_bytes`.

mod common;

use std::collections::VecDeque;

use common::hex;
use mtproto::core::handshake::{
    ClientConfig, ClientHandshake, ClientStep, RsaKeySet, RsaPrivateKey,
};
use mtproto::core::plain;
use mtproto::core::time::UnixTime;
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};

// Constants from mtproto_samples-auth_key.md (hex dumps and inline values), extracted from the
// page's code blocks by a script (not typed by hand).

/// 40 bytes.
const REQ_PQ_MULTI: &str =
    "000000000000000060970500EBE5776714000000F18E7EBE79F0AFB50252E5FC96924BFCECDA4F05";

/// 100 bytes.
const RES_PQ: &str = concat!(
    "00000000000000000128FBD2EBE57767500000006324160579F0AFB50252E5FC96924BFCECDA4F05801775A3EFBFD270",
    "1AA28AD727BE464608130B7475669FEB8B00000015C4B51C0300000085FD64DE851D9DD0A5B7F709355FC30B216BE86C",
    "022BB4C3",
);

/// 100 bytes.
const P_Q_INNER_DATA: &str = concat!(
    "955FF5A908130B7475669FEB8B0000000444095E050000000447A8C84F00000079F0AFB50252E5FC96924BFCECDA4F05",
    "801775A3EFBFD2701AA28AD727BE4646264F835B0B7BDFF9C6ED6CF819FD6DF5DCD17E90D67ADD2C2C1E3775C7A6A0AC",
    "02000000",
);

/// 340 bytes.
const REQ_DH_PARAMS: &str = concat!(
    "000000000000000068E50800EBE5776740010000BEE412D779F0AFB50252E5FC96924BFCECDA4F05801775A3EFBFD270",
    "1AA28AD727BE46460444095E050000000447A8C84F00000085FD64DE851D9DD0FE00010035D750FBDF8B804F60951295",
    "9103977D8F3B90189B7B2DE9C14F53FF8B5910AB2371A1B8D855B5787B94BC67068CAE657367C68170C0DE7E3DBEA389",
    "80F15A4BE1C0A6F3B2C0FF279D68496585D2F58924EE2CCCB55746FABAAE2DC0CCBB9E168B79ABC0BC7E68BEE0130708",
    "E680938F7A2BFA633285DA63784C8EBEF6156755504F68006E66CDF346B13B8512ABE830706DD9265329EFDE99DFB0F7",
    "2AA11119140C941537353423295C519F04A25CACEE3293E8CF2C799515175E96DD36F913BB4B1A19D92EAE3BC8883A33",
    "3523AC18D4A5165A32FD67990497F1208EF643CA0093D01DCF2E537DCBCC22581630291B7217600B8725E657383D1569",
    "05B2BF16",
);

/// 652 bytes.
const SERVER_DH_PARAMS_OK: &str = concat!(
    "000000000000000001AC68E8EBE57767780200005C07E8D079F0AFB50252E5FC96924BFCECDA4F05801775A3EFBFD270",
    "1AA28AD727BE4646FE5002009A46DCE9D54DE42C5E4F0D19D776C8C1F318EB1AF8836500B5DA1B1A80D58038A554FEAF",
    "627E6DC4E4924943602D8E19488A6E38A0B81346257E4DB5BE6E9E00FE991FD6C56D618D3D0A2493202677AC7CF24584",
    "6C1494F60D08E61B7FEA8BB72DD8BA53F6CBF78F2B387757FE2E7F345A368ABBEC694EFDE066DC3D2375CF010D1E1BF4",
    "351724B269E68B541409E07649FEEE1DF6DC5B3C18166879CC67876782D43EC9B79AF8ACF67868F4AB7DE4082603B670",
    "EC622B5DFBBB9E908FE0244593A4D22474316020CE0E76A5C6AD021D3989451E0B3E8EE48C355992DB90300B376B296E",
    "18BB470300C7DF14BFAE05A452583EAD93167941208BBB5AC8099F0494AA27D6C1A5B678AD12B19FB7D423BB4A29C0EB",
    "03169EC538211D82FEB50F209652D00D3399986B3B0CA09CEB5E2FCCB49017FEE5F54930D9DE371172B3FF1080D733E5",
    "DD620B42DBB76A3E9C25B1B89AB8AA35C099322CA390E269D8818EA8722008DE537705B4071DA7DEF502FCD5A30D2026",
    "EA8A87A0F4915803A8271B665690E96AABDFC0B479538AE61BA701EDFF14F7212370958ED41EC8E41E427C407FBB0360",
    "565C1A6BDF285BC5120B11631B75803DFBF8AAEBDC47418A1F061747005ABA9314EE5E261C3E504EAE0ADAAC832B414B",
    "F6F7002982CE5B5AE2513761EE29FA1CBA090B9A39AACE2948A80E144DB2C622589D79FB42E3DAE491104E8A653DED76",
    "29CDE08B6C41E90E55B0EBCD4F1FC50FADDF4A7A9F6D711F0959DFEF04A744A6ADFD890B2AB405B9AD5F8E3F38928108",
    "F4CD0BA501A492FC463BC7BE8C506B5F7D24CC819A95929166B6E814",
);

/// 396 bytes.
const SET_CLIENT_DH_PARAMS: &str = concat!(
    "00000000000000006CE50800EBE57767780100001F5F04F579F0AFB50252E5FC96924BFCECDA4F05801775A3EFBFD270",
    "1AA28AD727BE4646FE500100FA29896EE19D3CCB08FB07CF1C922CFFBF5D38D98BA56D926D63064C77741F423BCE22B5",
    "A2C100E34BB5D7CE3027E85E65006205B6926C0E42EF29E7CC24EEC4523650F692A530FB95D57EF3604C490155FB8530",
    "C94E9E2EBDF272BDB3DD98FFCA65FF51E5DBCA4CF799D6660F6D0BA1A8B1CE6FE9D26F401B1B79E057EE273CAE14D8D8",
    "D60030C862E13B2E49FE97008AEA0EC8ADE90AE3DDDC641AE7C0844A37EFC4DA3B27308B9C40B1FD2028C12B37EA719D",
    "593DC7EDC892B8630B82E05168FCC0D76E7CA23106FEF13B09D3BAE83D612CDF2E3A5ADDE4E807EEED660C9921AD364C",
    "FF6614350F313A48AB3483F08AB81A226F7763A575F44A04BD53C58A49ABD2EE4A885F2610A8387803E418C371AF9378",
    "A0941F2DB0AA9CE019048B6C9ED0C7FCB33985624E2392233CAA5E66A3891AB18544685E96EF5C2B55E69EA2C62B33E6",
    "058DA2944F087B803F251A7C",
);

/// 72 bytes.
const DH_GEN_OK: &str = concat!(
    "000000000000000001CC0A7BEDE577673400000034F7CB3B79F0AFB50252E5FC96924BFCECDA4F05801775A3EFBFD270",
    "1AA28AD727BE464651070B3DB672B7602E4EE2FE761B36A2",
);

/// 92 bytes.
const RANDOM_PADDING_BYTES: &str = concat!(
    "C1C3E221C1EAECF4788AC3FEA0DECFEFD0E81AE6C6A1AB2AB8729D0634E08A3A12A9D53E06134F87B74BBD9EC90793B0",
    "91C7FBF4CDBCBE4536397902388D4F68EBAA138CCD068244DB026332B7FC17E5DFAC09E7A71FA5353E3EEBDC",
);

/// 256 bytes.
const B: &str = concat!(
    "F2987DDA0ABCE0B7CE23A7B850BE126641CBAABC1F4C250C839E1844E2E2CBE57BC0A30B45F6C21D8635F5E927DB0D74",
    "98A2F03C6A42D3FB2F3787D5B4D63C2F17A6EB197C0412237E528B68D3D70ADCDEEBD7CD6BACEC59D4FB8F17125ED00B",
    "95B34A2D5D8A2133937B5DFEF6DB09F0A3A1BC207A87D9FE4761C59880CA551432E4AFFCF3982B11EABC526977215F4A",
    "C2CE20FA7C808A971DA8C8A08FF26DEBB326EE580B551BEAF0C4B677FCE00E5C6AAEDA3A5A42F38C9C6E226EEDED0502",
    "A6BEFC991CC1E0B504E187206D172E72E05D958009FB8C27616EBDD28247262A33AF25E911C9DC22D9A88C6E31A623E6",
    "C1E1011CDBD184F6DFFC4F77F5370F16",
);

/// 12 bytes.
const CLIENT_PADDING: &str = "8347525EB8B63DE9CE3A1FCC";

/// 256 bytes.
const AUTH_KEY: &str = concat!(
    "83CBD31C0303361FF1C29437A77CBA749C84F28A118646038C7EDD29EF718A1F6A493047D476A6E678D97A4A5CC7990C",
    "EA552D68E109869E5BFC86570049CD8F2EB4BA10B6C4123FB8A977774B4C5185B5C96AF7BD7A71DB78E6E6148CED2048",
    "869A21B8ED7FBA7F6F2E7722BFA28447AB84A245CB0E6D01261191B753191E744DCFDA522D50167832EE4D5EE90AAA6F",
    "31821248F0F06BF5692EF604CFC4316CEDE078F71E17BCEBBE388589E6707AF5BA26E8DD063BB116C4B4E7BEF3B462C3",
    "350D0376D42F95D353E46BE4C378D2A60141A2339641F8B712EB3ECFB42B7F26F69E9BB15373E0AC4BE266E1681859DD",
    "AAB8CD7D877BB847D2A8BD068A784943",
);

/// 32 bytes.
const NEW_NONCE: &str = "264F835B0B7BDFF9C6ED6CF819FD6DF5DCD17E90D67ADD2C2C1E3775C7A6A0AC";

/// Serves scripted chunks in order: a request whose length equals the next chunk's gets that
/// chunk; any other request (here only RSA_PAD's unpublished `temp_key`) gets ChaCha bytes.
struct Script {
    chunks: VecDeque<Vec<u8>>,
    fallback: ChaCha20Rng,
}

impl rand_core::TryRng for Script {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, core::convert::Infallible> {
        Ok(self.fallback.next_u32())
    }
    fn try_next_u64(&mut self) -> Result<u64, core::convert::Infallible> {
        Ok(self.fallback.next_u64())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), core::convert::Infallible> {
        match self.chunks.front() {
            Some(c) if c.len() == dst.len() => {
                dst.copy_from_slice(c);
                self.chunks.pop_front();
            }
            _ => self.fallback.fill_bytes(dst),
        }
        Ok(())
    }
}
impl rand_core::TryCryptoRng for Script {}

const NONCE: &str = "79F0AFB50252E5FC96924BFCECDA4F05";
const SERVER_TIME: u64 = 1_735_910_891;

fn script() -> Script {
    Script {
        chunks: [
            hex(NONCE),
            hex(NEW_NONCE),
            hex(RANDOM_PADDING_BYTES),
            hex(B),
            hex(CLIENT_PADDING),
        ]
        .into_iter()
        .collect(),
        fallback: ChaCha20Rng::seed_from_u64(1),
    }
}

/// Body of an unencrypted message dump.
fn body(dump: &str) -> Vec<u8> {
    hex(dump)[20..].to_vec()
}

/// Runs the client through the whole sample; `res_pq` is the server's resPQ body.
fn run(keys: RsaKeySet, res_pq: &[u8], rng: &mut Script) -> (Vec<u8>, Vec<u8>) {
    let now = UnixTime::from_secs(SERVER_TIME);
    let mut client = ClientHandshake::new(ClientConfig::new(keys, 2));

    // Step 1: req_pq_multi, byte-identical (also inside the sample's envelope).
    let req_pq = client.start(rng).unwrap();
    assert_eq!(req_pq, body(REQ_PQ_MULTI));
    let msg_id = i64::from_le_bytes(hex(REQ_PQ_MULTI)[8..16].try_into().unwrap());
    assert_eq!(plain::wrap(msg_id, &req_pq), hex(REQ_PQ_MULTI));

    // Steps 2-5: resPQ in, req_DH_params out.
    let ClientStep::Send(req_dh) = client.handle(now, res_pq, rng).unwrap() else {
        panic!("expected req_DH_params");
    };
    assert_eq!(req_dh.len(), body(REQ_DH_PARAMS).len());

    // Steps 6-7: the sample's server_DH_params_ok in, set_client_DH_params out: byte-identical.
    let ClientStep::Send(set_dh) = client.handle(now, &body(SERVER_DH_PARAMS_OK), rng).unwrap()
    else {
        panic!("expected set_client_DH_params");
    };
    assert_eq!(set_dh, body(SET_CLIENT_DH_PARAMS));

    // Step 9: the sample's dh_gen_ok; the key is the sample's auth_key.
    let ClientStep::Done(result) = client.handle(now, &body(DH_GEN_OK), rng).unwrap() else {
        panic!("expected the auth key");
    };
    assert_eq!(
        result.auth_key.as_bytes().as_slice(),
        hex(AUTH_KEY).as_slice()
    );
    // Derived values listed in the page's verification notes.
    assert_eq!(
        result.auth_key.id().to_le_bytes().to_vec(),
        hex("0438720625F291F6")
    );
    assert_eq!(
        result.server_salt.to_le_bytes().to_vec(),
        hex("A658F6F8E4C40D89")
    );
    assert_eq!(result.time_offset, 0);
    assert_eq!(result.expires_at, None);
    assert!(rng.chunks.is_empty(), "every sample value was consumed");
    assert!(client.is_done());
    (req_dh, set_dh)
}

#[test]
fn client_replays_the_official_sample() {
    let mut rng = script();
    let (req_dh, _) = run(RsaKeySet::telegram_production(), &body(RES_PQ), &mut rng);
    // Everything before encrypted_data is byte-identical: constructor, nonce, server_nonce,
    // p, q, fingerprint 85FD64DE851D9DD0, and the 256-byte string header.
    assert_eq!(req_dh[..64], body(REQ_DH_PARAMS)[..64]);
}

#[test]
fn rsa_pad_input_is_the_sample_data() {
    // Same exchange, but the server offers the demo key: we can then open encrypted_data.
    let demo = RsaPrivateKey::demo();
    let mut res_pq = body(RES_PQ);
    res_pq[56..64].copy_from_slice(&demo.public_key().fingerprint().to_le_bytes());
    let mut rng = script();
    let keys = RsaKeySet::new().with(demo.public_key().clone());
    let (req_dh, _) = run(keys, &res_pq, &mut rng);
    assert_eq!(req_dh[..52], body(REQ_DH_PARAMS)[..52]);
    let data_with_padding = demo.decrypt_pad(&req_dh[64..320], &mut rng).unwrap();
    assert_eq!(data_with_padding[..100], hex(P_Q_INNER_DATA));
    assert_eq!(data_with_padding[100..], hex(RANDOM_PADDING_BYTES));
}
