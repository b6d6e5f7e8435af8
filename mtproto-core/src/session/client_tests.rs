//! ClientSession at the plaintext level: a scripted server writes the messages by hand.

use alloc::vec;
use alloc::vec::Vec;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::client::*;
use super::container::{self, ContainerIter, OutMessage};
use super::gzip;
use super::msgid::{msg_id_for_nanos, msg_id_time_nanos};
use crate::time::{Instant, Now, UnixTime};
use crate::tl::schema::{Object, types};
use crate::tl::{Deserialize, Serialize};

const T0: u64 = 1_700_000_000;

fn now_at(mono_ms: u64, unix_secs: u64) -> Now {
    Now {
        mono: Instant::from_millis(mono_ms),
        unix: UnixTime::from_nanos(unix_secs * 1_000_000_000 + mono_ms % 1000 * 1_000_000),
    }
}

/// A scripted server with its own (true) clock.
struct Server {
    last: i64,
    session_id: i64,
}

impl Server {
    /// A server msg_id for server time `secs` (odd, increasing).
    fn id(&mut self, secs: u64) -> i64 {
        let mut id = (msg_id_for_nanos((secs * 1_000_000_000) as i64) & !3) | 1;
        if id <= self.last {
            id = (self.last & !3) + 4 + 1;
        }
        self.last = id;
        id
    }
}

struct Sent {
    msg_id: i64,
    seq_no: i32,
    body: Vec<u8>,
}

/// Decomposes what the client sent into its messages (container unpacked).
fn sent_messages(h: &OutHeader, body: &[u8]) -> Vec<Sent> {
    if body[..4] == types::MsgContainer::CONSTRUCTOR_ID.to_le_bytes() {
        ContainerIter::new(&body[4..])
            .unwrap()
            .map(|m| {
                let m = m.unwrap();
                assert!(m.msg_id < h.msg_id, "inner ids below the container's");
                Sent {
                    msg_id: m.msg_id,
                    seq_no: m.seqno,
                    body: m.body.to_vec(),
                }
            })
            .collect()
    } else {
        vec![Sent {
            msg_id: h.msg_id,
            seq_no: h.seq_no,
            body: body.to_vec(),
        }]
    }
}

fn drain(s: &mut ClientSession, now: Now) -> Vec<(OutHeader, Vec<Sent>)> {
    let mut out = Vec::new();
    loop {
        let mut buf = Vec::new();
        let Some(h) = s.poll_message(now, &mut buf) else {
            break;
        };
        assert_eq!(h.msg_id % 4, 0);
        let msgs = sent_messages(&h, &buf);
        out.push((h, msgs));
    }
    out
}

fn requests_in(sent: &[(OutHeader, Vec<Sent>)], tag: u32) -> Vec<i64> {
    sent.iter()
        .flat_map(|(_, m)| m.iter())
        .filter(|m| m.body[..4] == tag.to_le_bytes())
        .map(|m| m.msg_id)
        .collect()
}

fn events(s: &mut ClientSession) -> Vec<Event> {
    core::iter::from_fn(|| s.poll_event()).collect()
}

fn rpc_result(req_msg_id: i64, result: &[u8]) -> Vec<u8> {
    let mut b = types::RpcResult::CONSTRUCTOR_ID.to_le_bytes().to_vec();
    b.extend_from_slice(&req_msg_id.to_le_bytes());
    b.extend_from_slice(result);
    b
}

const REQ: u32 = 0xc0de_0001;
fn req(n: u32) -> Vec<u8> {
    let mut b = REQ.to_le_bytes().to_vec();
    b.extend_from_slice(&n.to_le_bytes());
    b
}

fn setup(offset: i64) -> (ClientSession, Server, ChaCha20Rng) {
    setup_with(offset, SessionConfig::default())
}

fn setup_with(offset: i64, config: SessionConfig) -> (ClientSession, Server, ChaCha20Rng) {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let mut s = ClientSession::new(config, 0x5a17, offset, &mut rng);
    s.on_key_created(0x5a17, offset);
    let sid = s.session_id();
    (
        s,
        Server {
            last: 0,
            session_id: sid,
        },
        rng,
    )
}

fn deliver(
    s: &mut ClientSession,
    srv: &mut Server,
    now: Now,
    server_secs: u64,
    seq_no: i32,
    body: &[u8],
    rng: &mut ChaCha20Rng,
) -> i64 {
    let msg_id = srv.id(server_secs);
    s.handle_message(
        now,
        Incoming {
            salt: 0,
            session_id: srv.session_id,
            msg_id,
            seq_no,
            body,
        },
        rng,
    );
    msg_id
}

#[test]
fn requests_go_out_in_one_container_and_results_match() {
    let (mut s, mut srv, mut rng) = setup(0);
    let now = now_at(0, T0);
    let ids: Vec<_> = (0..3).map(|i| s.invoke_raw(&req(i)).unwrap()).collect();
    let sent = drain(&mut s, now);
    assert_eq!(sent.len(), 1, "one container");
    let (h, msgs) = &sent[0];
    assert_eq!(h.salt, 0x5a17);
    assert_eq!(h.seq_no % 2, 0, "containers are not content-related");
    let reqs = requests_in(&sent, REQ);
    assert_eq!(reqs.len(), 3);
    assert!(msgs.iter().all(|m| m.seq_no % 2 == 1));
    // Content-related seq_nos increase by 2.
    let seqs: Vec<_> = msgs.iter().map(|m| m.seq_no).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 2), "{seqs:?}");

    // Results in reverse order; an rpc_error with a number.
    let err = types::RpcError {
        error_code: 420,
        error_message: b"FLOOD_WAIT_31",
    }
    .to_vec()
    .unwrap();
    deliver(
        &mut s,
        &mut srv,
        now,
        T0,
        1,
        &rpc_result(reqs[2], &[9, 9, 9, 9]),
        &mut rng,
    );
    deliver(
        &mut s,
        &mut srv,
        now,
        T0,
        3,
        &rpc_result(reqs[0], &err),
        &mut rng,
    );
    let ev = events(&mut s);
    assert!(ev.contains(&Event::RpcResult {
        id: ids[2],
        body: vec![9, 9, 9, 9]
    }));
    assert!(ev.iter().any(|e| matches!(e, Event::RpcError { id, error }
        if *id == ids[0] && error.value == Some(31) && error.is("FLOOD_WAIT"))));
    assert_eq!(s.pending_requests(), 1);
    // Both answers were content-related: they get acknowledged.
    let later = now_at(1_000, T0 + 1);
    let sent = drain(&mut s, later);
    let acks = requests_in(&sent, types::MsgsAck::CONSTRUCTOR_ID);
    assert_eq!(acks.len(), 1);
}

#[test]
fn bad_server_salt_is_applied_at_once_and_the_request_resent_with_a_new_id() {
    let (mut s, mut srv, mut rng) = setup(0);
    let now = now_at(0, T0);
    let id = s.invoke_raw(&req(1)).unwrap();
    let first = requests_in(&drain(&mut s, now), REQ)[0];
    let bad = types::BadServerSalt {
        bad_msg_id: first,
        bad_msg_seqno: 1,
        error_code: 48,
        new_server_salt: 0x1234,
    }
    .to_vec()
    .unwrap();
    deliver(&mut s, &mut srv, now, T0, 0, &bad, &mut rng);
    let sent = drain(&mut s, now);
    let again = requests_in(&sent, REQ);
    assert_eq!(again.len(), 1);
    assert!(again[0] > first, "a fresh, higher msg_id");
    assert_eq!(sent[0].0.salt, 0x1234);
    deliver(
        &mut s,
        &mut srv,
        now,
        T0,
        1,
        &rpc_result(again[0], &[1, 0, 0, 0]),
        &mut rng,
    );
    assert!(events(&mut s).contains(&Event::RpcResult {
        id,
        body: vec![1, 0, 0, 0]
    }));
    // A notice about a message we never sent is ignored.
    let stray = types::BadServerSalt {
        bad_msg_id: 4,
        bad_msg_seqno: 1,
        error_code: 48,
        new_server_salt: 0x9999,
    }
    .to_vec()
    .unwrap();
    deliver(&mut s, &mut srv, now, T0, 0, &stray, &mut rng);
    assert_eq!(s.salt(), 0x1234);
}

/// A scripted server that answers every request with bad_msg 16/17 while its msg_id is outside
/// the window, else with a result. Returns the rounds until all answered.
fn converge(client_skew_secs: i64, offset: i64) -> (ClientSession, usize, Vec<Event>) {
    let (mut s, mut srv, mut rng) = setup(offset);
    let server_secs = T0;
    let local = (T0 as i64 + client_skew_secs) as u64;
    let now = now_at(0, local);
    let id = s.invoke_raw(&req(1)).unwrap();
    let mut all = Vec::new();
    for round in 1..=10 {
        let sent = drain(&mut s, now);
        for (_, msgs) in &sent {
            for m in msgs {
                if m.body[..4] != REQ.to_le_bytes() {
                    continue;
                }
                let skew = msg_id_time_nanos(m.msg_id) / 1_000_000_000 - server_secs as i64;
                let body = if !(-300..=30).contains(&skew) {
                    types::BadMsgNotification {
                        bad_msg_id: m.msg_id,
                        bad_msg_seqno: m.seq_no,
                        error_code: if skew < 0 { 16 } else { 17 },
                    }
                    .to_vec()
                    .unwrap()
                } else {
                    rpc_result(m.msg_id, &[7, 7, 7, 7])
                };
                srv.session_id = s.session_id();
                deliver(&mut s, &mut srv, now, server_secs, 1, &body, &mut rng);
            }
        }
        let ev = events(&mut s);
        let done = ev
            .iter()
            .any(|e| matches!(e, Event::RpcResult { id: i, .. } if *i == id));
        all.extend(ev);
        if done {
            return (s, round, all);
        }
    }
    panic!("did not converge in 10 rounds");
}

#[test]
fn saved_key_restored_with_the_clock_two_minutes_ahead_converges() {
    // Saved offset 0, local clock 2 min + 300 s ahead of the server (beyond the +30 s window).
    let (s, rounds, ev) = converge(420, 0);
    assert_eq!(rounds, 2, "one bad_msg 17, then the answer");
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::TimeSynced { offset_secs } if *offset_secs == -420))
    );
    assert!(
        ev.contains(&Event::UpdatesGapPossible),
        "17 starts a new session"
    );
    assert_eq!(s.stats().new_sessions, 1);
}

#[test]
fn a_client_clock_behind_at_start_converges_without_a_new_session() {
    let (s, rounds, ev) = converge(-420, 0);
    assert_eq!(rounds, 2);
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::TimeSynced { offset_secs } if *offset_secs == 420))
    );
    assert_eq!(s.stats().new_sessions, 0, "16 only moves the clock up");
}

#[test]
fn restored_session_ahead_by_two_minutes_with_a_high_floor_converges() {
    // The grammers #335 case: the saved floor itself is too high.
    let (mut s, mut srv, mut rng) = setup(0);
    let ahead = now_at(0, T0 + 400);
    s.invoke_raw(&req(0)).unwrap();
    drain(&mut s, ahead); // ids at T0 + 400 set the floor
    let saved = s.export();
    let mut r = ClientSession::restore(SessionConfig::default(), &saved);
    let now = now_at(10, T0 + 400);
    let id = r.invoke_raw(&req(1)).unwrap();
    srv.session_id = r.session_id();
    let mut answered = false;
    for _ in 0..4 {
        for (_, msgs) in drain(&mut r, now) {
            for m in msgs.iter().filter(|m| m.body[..4] == REQ.to_le_bytes()) {
                let skew = msg_id_time_nanos(m.msg_id) / 1_000_000_000 - T0 as i64;
                srv.session_id = r.session_id();
                let body = if skew > 30 {
                    types::BadMsgNotification {
                        bad_msg_id: m.msg_id,
                        bad_msg_seqno: m.seq_no,
                        error_code: 17,
                    }
                    .to_vec()
                    .unwrap()
                } else {
                    rpc_result(m.msg_id, &[1, 1, 1, 1])
                };
                deliver(&mut r, &mut srv, now, T0, 1, &body, &mut rng);
            }
        }
        if events(&mut r)
            .iter()
            .any(|e| matches!(e, Event::RpcResult { id: i, .. } if *i == id))
        {
            answered = true;
            break;
        }
    }
    assert!(answered, "the floor was re-derived");
}

#[test]
fn a_clock_jump_mid_session_resyncs_instead_of_failing() {
    let (mut s, mut srv, mut rng) = setup(0);
    // Our clock jumps 10 minutes ahead: server messages now look 600 s old.
    let jumped = now_at(5_000, T0 + 600);
    let mut evs = Vec::new();
    for i in 0..3 {
        let body = types::MsgsAck {
            msg_ids: vec![4 * i],
        }
        .to_vec()
        .unwrap();
        deliver(&mut s, &mut srv, jumped, T0, 0, &body, &mut rng);
        evs.extend(events(&mut s));
    }
    assert_eq!(s.stats().out_of_window, 3);
    assert!(
        evs.iter()
            .any(|e| matches!(e, Event::TimeSynced { offset_secs } if *offset_secs == -600))
    );
    // Our ids ran 600 s ahead: the floor came down in a new session.
    assert_eq!(s.stats().new_sessions, 1);
    srv.session_id = s.session_id();
    // After the resync an update in server time is accepted.
    deliver(&mut s, &mut srv, jumped, T0, 1, &req(5), &mut rng);
    assert!(events(&mut s).contains(&Event::Update { body: req(5) }));
}

#[test]
fn wrong_session_replays_and_window_violations_are_dropped() {
    let (mut s, mut srv, mut rng) = setup(0);
    let now = now_at(0, T0);
    // Wrong session_id.
    let real = srv.session_id;
    srv.session_id = real ^ 1;
    deliver(&mut s, &mut srv, now, T0, 1, &req(1), &mut rng);
    srv.session_id = real;
    assert_eq!(s.stats().wrong_session, 1);
    // Replay.
    let id = deliver(&mut s, &mut srv, now, T0, 1, &req(2), &mut rng);
    s.handle_message(
        now,
        Incoming {
            salt: 0,
            session_id: real,
            msg_id: id,
            seq_no: 1,
            body: &req(2),
        },
        &mut rng,
    );
    assert_eq!(s.stats().duplicates, 1);
    // Too old, too new (each from a fresh id sequence so the time is what it says).
    let mut old = Server {
        last: 0,
        session_id: real,
    };
    deliver(&mut s, &mut old, now, T0 - 301, 1, &req(3), &mut rng);
    let mut srv2 = Server {
        last: 0,
        session_id: real,
    };
    deliver(&mut s, &mut srv2, now, T0 + 31, 1, &req(4), &mut rng);
    assert_eq!(s.stats().out_of_window, 2);
    let ev = events(&mut s);
    assert_eq!(
        ev,
        vec![Event::Update { body: req(2) }],
        "only the one good update"
    );
}

#[test]
fn a_bad_msg_notice_outside_the_window_is_still_honoured() {
    let (mut s, mut srv, mut rng) = setup(0);
    let now = now_at(0, T0);
    s.invoke_raw(&req(1)).unwrap();
    let first = requests_in(&drain(&mut s, now), REQ)[0];
    // Inside a container, 20 minutes in the future.
    let notice = types::BadMsgNotification {
        bad_msg_id: first,
        bad_msg_seqno: 1,
        error_code: 16,
    }
    .to_vec()
    .unwrap();
    let inner_id = srv.id(T0 + 1200);
    let mut c = Vec::new();
    container::write_container_header(&mut c, 1);
    container::write_inner(
        &mut c,
        &OutMessage {
            msg_id: inner_id,
            seq_no: 0,
            body: &notice,
        },
    );
    deliver(&mut s, &mut srv, now, T0 + 1200, 0, &c, &mut rng);
    assert!(
        s.clock().offset_secs() >= 1199,
        "synced to the notice's time"
    );
    let again = requests_in(&drain(&mut s, now), REQ);
    assert_eq!(again.len(), 1);
    assert!(again[0] > first);
}

#[test]
fn container_rules_duplicates_nesting_and_bombs() {
    let (mut s, mut srv, mut rng) = setup(0);
    let now = now_at(0, T0);
    let a = srv.id(T0);
    // A duplicate inside a container is processed once.
    let mut c = Vec::new();
    container::write_container_header(&mut c, 2);
    container::write_inner(
        &mut c,
        &OutMessage {
            msg_id: a,
            seq_no: 1,
            body: &req(1),
        },
    );
    container::write_inner(
        &mut c,
        &OutMessage {
            msg_id: a,
            seq_no: 1,
            body: &req(1),
        },
    );
    deliver(&mut s, &mut srv, now, T0, 0, &c, &mut rng);
    assert_eq!(events(&mut s), vec![Event::Update { body: req(1) }]);
    // A nested container is not processed.
    let b = srv.id(T0);
    let mut inner = Vec::new();
    container::write_container_header(&mut inner, 1);
    container::write_inner(
        &mut inner,
        &OutMessage {
            msg_id: b,
            seq_no: 1,
            body: &req(2),
        },
    );
    let c2 = srv.id(T0);
    let mut outer = Vec::new();
    container::write_container_header(&mut outer, 1);
    container::write_inner(
        &mut outer,
        &OutMessage {
            msg_id: c2,
            seq_no: 0,
            body: &inner,
        },
    );
    deliver(&mut s, &mut srv, now, T0, 0, &outer, &mut rng);
    assert!(events(&mut s).is_empty());
    // A gzip bomb (64 MiB of zeros) is refused, not inflated.
    let bomb = types::GzipPacked {
        packed_data: &gzip::deflate(&vec![0u8; 64 << 20]),
    }
    .to_vec()
    .unwrap();
    let before = s.stats().malformed;
    deliver(&mut s, &mut srv, now, T0, 1, &bomb, &mut rng);
    assert!(events(&mut s).is_empty());
    assert_eq!(s.stats().malformed, before + 1);
    // A small gzip_packed update is delivered inflated.
    let packed = types::GzipPacked {
        packed_data: &gzip::deflate(&req(9)),
    }
    .to_vec()
    .unwrap();
    deliver(&mut s, &mut srv, now, T0, 1, &packed, &mut rng);
    assert_eq!(events(&mut s), vec![Event::Update { body: req(9) }]);
    // An rpc_result for a request we never made: counted, no event, no panic.
    deliver(
        &mut s,
        &mut srv,
        now,
        T0,
        1,
        &rpc_result(123_456, &[1, 2, 3, 4]),
        &mut rng,
    );
    assert!(events(&mut s).is_empty());
    assert_eq!(s.stats().unknown_results, 1);
    // Garbage bodies of every length never panic.
    for n in 0..64 {
        let junk: Vec<u8> = (0..n).map(|i| (i * 37) as u8).collect();
        deliver(&mut s, &mut srv, now, T0, 1, &junk, &mut rng);
    }
}

#[test]
fn acks_and_unpolled_updates_stay_bounded() {
    let (mut s, mut srv, mut rng) = setup(0);
    let now = now_at(0, T0);
    // A million content-related updates, never polled, never flushed.
    for i in 0..1_000_000u32 {
        deliver(&mut s, &mut srv, now, T0, 1, &req(i), &mut rng);
    }
    let cfg = SessionConfig::default();
    assert_eq!(s.queued_events(), cfg.max_queued_updates);
    assert_eq!(
        s.stats().dropped_updates,
        1_000_000 - cfg.max_queued_updates as u64
    );
    // The acknowledgements are capped at one msgs_ack's worth.
    let sent = drain(&mut s, now_at(1, T0));
    let acks: Vec<_> = sent
        .iter()
        .flat_map(|(_, m)| m.iter())
        .filter(|m| m.body[..4] == types::MsgsAck::CONSTRUCTOR_ID.to_le_bytes())
        .collect();
    assert_eq!(acks.len(), 1);
    let Object::MsgsAck(a) = Object::from_bytes(&acks[0].body).unwrap() else {
        panic!()
    };
    assert_eq!(a.msg_ids.len(), 8192);
    // Draining the events ends with a gap notice.
    let ev = events(&mut s);
    assert_eq!(ev.last(), Some(&Event::UpdatesGapPossible));
    // A huge msgs_ack from the server is harmless.
    let big = types::MsgsAck {
        msg_ids: (0..100_000).collect(),
    }
    .to_vec()
    .unwrap();
    deliver(&mut s, &mut srv, now, T0, 0, &big, &mut rng);
}

#[test]
fn new_session_created_resends_older_requests_and_reports_a_gap() {
    let (mut s, mut srv, mut rng) = setup(0);
    let now = now_at(0, T0);
    let id = s.invoke_raw(&req(1)).unwrap();
    let first = requests_in(&drain(&mut s, now), REQ)[0];
    let nsc = types::NewSessionCreated {
        first_msg_id: first + 4,
        unique_id: 1,
        server_salt: 0x77,
    }
    .to_vec()
    .unwrap();
    deliver(&mut s, &mut srv, now, T0, 1, &nsc, &mut rng);
    assert_eq!(s.salt(), 0x77);
    assert!(events(&mut s).contains(&Event::UpdatesGapPossible));
    let again = requests_in(&drain(&mut s, now), REQ);
    assert_eq!(again.len(), 1);
    deliver(
        &mut s,
        &mut srv,
        now,
        T0,
        1,
        &rpc_result(again[0], &[5, 5, 5, 5]),
        &mut rng,
    );
    // The old msg_id's late answer is unknown now; the new one matches.
    deliver(
        &mut s,
        &mut srv,
        now,
        T0,
        1,
        &rpc_result(first, &[6, 6, 6, 6]),
        &mut rng,
    );
    let ev = events(&mut s);
    let results: Vec<_> = ev
        .iter()
        .filter(|e| matches!(e, Event::RpcResult { .. }))
        .collect();
    assert_eq!(
        results,
        vec![&Event::RpcResult {
            id,
            body: vec![5, 5, 5, 5]
        }],
        "exactly once"
    );
}

#[test]
fn seq_no_errors_start_a_new_session() {
    for code in [32, 33] {
        let (mut s, mut srv, mut rng) = setup(0);
        let now = now_at(0, T0);
        s.invoke_raw(&req(1)).unwrap();
        let old_session = s.session_id();
        let first = requests_in(&drain(&mut s, now), REQ)[0];
        let bad = types::BadMsgNotification {
            bad_msg_id: first,
            bad_msg_seqno: 1,
            error_code: code,
        }
        .to_vec()
        .unwrap();
        deliver(&mut s, &mut srv, now, T0, 0, &bad, &mut rng);
        assert_ne!(s.session_id(), old_session, "code {code}");
        let sent = drain(&mut s, now);
        let again: Vec<_> = sent
            .iter()
            .flat_map(|(_, m)| m.iter())
            .filter(|m| m.body[..4] == REQ.to_le_bytes())
            .collect();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].seq_no, 1, "seq_nos restart in the new session");
    }
}

#[test]
fn pings_pong_and_time_out() {
    let (mut s, mut srv, mut rng) = setup(0);
    let now = now_at(0, T0);
    let ping_id = s.ping();
    let sent = drain(&mut s, now);
    let ping_msg = requests_in(
        &sent,
        crate::tl::schema::functions::PingDelayDisconnect::CONSTRUCTOR_ID,
    )[0];
    let pong = types::Pong {
        msg_id: ping_msg,
        ping_id,
    }
    .to_vec()
    .unwrap();
    deliver(&mut s, &mut srv, now_at(40, T0), T0, 0, &pong, &mut rng);
    assert!(events(&mut s).contains(&Event::Pong {
        ping_id,
        rtt_micros: 40_000
    }));
    // A ping without a pong closes the session at the deadline, and the deadline is a timer.
    s.ping();
    drain(&mut s, now_at(100, T0));
    let deadline = s.poll_timeout().unwrap();
    assert!(deadline <= Instant::from_millis(100 + 30_000));
    s.handle_timeout(now_at(100 + 30_000, T0 + 30));
    assert!(s.is_closed());
    assert!(events(&mut s).contains(&Event::Closed(CloseReason::PongTimeout)));
}

#[test]
fn state_info_resends_lost_requests_and_cancel_drops_answers() {
    let (mut s, mut srv, mut rng) = setup(0);
    let now = now_at(0, T0);
    let a = s.invoke_raw(&req(1)).unwrap();
    let b = s.invoke_raw(&req(2)).unwrap();
    let sent = requests_in(&drain(&mut s, now), REQ);
    // No ack for 15 s: the session asks about both.
    let later = now_at(15_000, T0 + 15);
    s.handle_timeout(later);
    let out = drain(&mut s, later);
    let state_req: Vec<_> = out
        .iter()
        .flat_map(|(_, m)| m.iter())
        .filter(|m| m.body[..4] == types::MsgsStateReq::CONSTRUCTOR_ID.to_le_bytes())
        .collect();
    assert_eq!(state_req.len(), 1);
    // The server never got the first (2 = not received), has the second (4).
    let info = types::MsgsStateInfo {
        req_msg_id: state_req[0].msg_id,
        info: &[2, 4],
    }
    .to_vec()
    .unwrap();
    deliver(&mut s, &mut srv, later, T0 + 15, 0, &info, &mut rng);
    let again = requests_in(&drain(&mut s, later), REQ);
    assert_eq!(again.len(), 1, "only the lost one is resent");
    assert!(again[0] > sent[1]);
    // Cancel the second: rpc_drop_answer goes out; its late answer is discarded.
    assert!(s.cancel(b));
    let drops = requests_in(
        &drain(&mut s, later),
        crate::tl::schema::functions::RpcDropAnswer::CONSTRUCTOR_ID,
    );
    assert_eq!(drops.len(), 1);
    deliver(
        &mut s,
        &mut srv,
        later,
        T0 + 15,
        1,
        &rpc_result(sent[1], &[1, 1, 1, 1]),
        &mut rng,
    );
    deliver(
        &mut s,
        &mut srv,
        later,
        T0 + 15,
        1,
        &rpc_result(again[0], &[2, 2, 2, 2]),
        &mut rng,
    );
    let ev = events(&mut s);
    assert_eq!(
        ev,
        vec![Event::RpcResult {
            id: a,
            body: vec![2, 2, 2, 2]
        }]
    );
}

#[test]
fn future_salts_are_requested_and_rotated_by_server_time() {
    let (mut s, mut srv, mut rng) = setup(0);
    let now = now_at(0, T0);
    let sent = drain(&mut s, now); // nothing to send but the salt request
    let req_ids = requests_in(
        &sent,
        crate::tl::schema::functions::GetFutureSalts::CONSTRUCTOR_ID,
    );
    assert_eq!(req_ids.len(), 1);
    let salts = types::FutureSalts {
        req_msg_id: req_ids[0],
        now: T0 as i32,
        salts: vec![
            types::FutureSalt {
                valid_since: T0 as i32 - 10,
                valid_until: T0 as i32 + 1800,
                salt: 0xa,
            },
            types::FutureSalt {
                valid_since: T0 as i32 + 1800,
                valid_until: T0 as i32 + 3600,
                salt: 0xb,
            },
        ],
    }
    .to_vec()
    .unwrap();
    deliver(
        &mut s,
        &mut srv,
        now,
        T0,
        0,
        &rpc_result(req_ids[0], &salts),
        &mut rng,
    );
    s.invoke_raw(&req(1)).unwrap();
    assert_eq!(drain(&mut s, now)[0].0.salt, 0xa);
    s.invoke_raw(&req(2)).unwrap();
    let sent = drain(&mut s, now_at(1_900_000, T0 + 1900));
    assert_eq!(sent[0].0.salt, 0xb, "rotated by server time");
}

// Found by an independent review: each failed before its fix.
#[test]
fn restore_never_reuses_the_last_msg_id() {
    let (mut s, _srv, _rng) = setup(0);
    s.invoke_raw(&req(0)).unwrap();
    s.invoke_raw(&req(1)).unwrap();
    // Two messages at the same instant: the second id is the first + 4.
    let now = now_at(0, T0);
    let sent = drain(&mut s, now);
    let mut all: Vec<i64> = sent.iter().map(|(h, _)| h.msg_id).collect();
    all.extend(sent.iter().flat_map(|(_, m)| m.iter().map(|m| m.msg_id)));
    let saved = s.export();
    let mut r = ClientSession::restore(SessionConfig::default(), &saved);
    r.invoke_raw(&req(2)).unwrap();
    let again = drain(&mut r, now);
    let first = again
        .iter()
        .flat_map(|(h, m)| m.iter().map(|m| m.msg_id).chain([h.msg_id]))
        .min()
        .unwrap();
    assert!(
        first > saved.last_msg_id,
        "restored session reuses msg_id: next {first:#x} <= saved last {:#x} (earlier ids {all:x?})",
        saved.last_msg_id
    );
}

#[test]
fn top_level_gzip_of_a_container_is_processed() {
    let (mut s, mut srv, mut rng) = setup(0);
    let now = now_at(0, T0);
    let mut c = Vec::new();
    container::write_container_header(&mut c, 1);
    let inner_id = srv.id(T0);
    container::write_inner(
        &mut c,
        &OutMessage {
            msg_id: inner_id,
            seq_no: 1,
            body: &req(9),
        },
    );
    let packed = gzip::deflate(&c);
    let body = types::GzipPacked {
        packed_data: &packed,
    }
    .to_vec()
    .unwrap();
    deliver(&mut s, &mut srv, now, T0, 0, &body, &mut rng);
    let ev = events(&mut s);
    assert!(
        ev.contains(&Event::Update { body: req(9) }),
        "{ev:?} stats {:?}",
        s.stats()
    );
}

#[test]
fn the_result_that_proves_a_clock_jump_is_delivered_not_re_executed() {
    let (mut s, mut srv, mut rng) = setup(0);
    let id = s.invoke_raw(&req(1)).unwrap();
    let sent = drain(&mut s, now_at(0, T0));
    let r = requests_in(&sent, REQ)[0];
    // Our clock jumps 10 min ahead; the answer (server time T0) arrives.
    let jumped = now_at(5_000, T0 + 600);
    deliver(
        &mut s,
        &mut srv,
        jumped,
        T0,
        1,
        &rpc_result(r, &[9, 9, 9, 9]),
        &mut rng,
    );
    let ev = events(&mut s);
    let resent = requests_in(&drain(&mut s, jumped), REQ);
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::RpcResult { id: i, .. } if *i == id)),
        "answer dropped: events {ev:?}, stats {:?}, request re-sent as {resent:x?}",
        s.stats()
    );
}

#[test]
fn a_request_whose_answer_the_server_forgot_ends_with_an_error_not_a_wait() {
    // No pings: this scripted server would not answer them (and a pong timeout closes).
    let (mut s, mut srv, mut rng) = setup_with(
        0,
        SessionConfig {
            ping_interval_ms: 0,
            ..SessionConfig::default()
        },
    );
    let id = s.invoke_raw(&req(1)).unwrap();
    let sent = requests_in(&drain(&mut s, now_at(0, T0)), REQ);
    let limit = SessionConfig::default().max_lost_answer_checks;
    let mut t = 0;
    let mut outcome = None;
    for _ in 0..=limit + 1 {
        t += 61_000;
        let now = now_at(t, T0 + t / 1000);
        s.handle_timeout(now);
        let out = drain(&mut s, now);
        let Some(q) = out
            .iter()
            .flat_map(|(_, m)| m.iter())
            .find(|m| m.body[..4] == types::MsgsStateReq::CONSTRUCTOR_ID.to_le_bytes())
        else {
            continue;
        };
        // "received" (4), nothing known about processing or an answer.
        let info = types::MsgsStateInfo {
            req_msg_id: q.msg_id,
            info: &[4],
        }
        .to_vec()
        .unwrap();
        deliver(&mut s, &mut srv, now, T0 + t / 1000, 0, &info, &mut rng);
        let evs = events(&mut s);
        if let Some(e) = evs
            .into_iter()
            .find(|e| matches!(e, Event::RpcError { .. }))
        {
            outcome = Some(e);
            break;
        }
    }
    assert!(
        matches!(outcome, Some(Event::RpcError { id: i, ref error }) if i == id && error.message == "ANSWER_LOST"),
        "{outcome:?}"
    );
    assert_eq!(s.pending_requests(), 0);
    let _ = sent;
}

#[test]
fn notices_coalesce_so_unpolled_events_stay_bounded() {
    let (mut s, mut srv, mut rng) = setup(0);
    let now = now_at(0, T0);
    for i in 0..10_000 {
        let nsc = types::NewSessionCreated {
            first_msg_id: 0,
            unique_id: i,
            server_salt: 1,
        }
        .to_vec()
        .unwrap();
        deliver(&mut s, &mut srv, now, T0, 1, &nsc, &mut rng);
    }
    assert_eq!(s.queued_events(), 1, "one UpdatesGapPossible waits");
}

#[test]
fn the_offset_is_learned_upward_from_ordinary_authenticated_messages() {
    let (mut s, mut srv, mut rng) = setup(0);
    // The server is 20 s ahead (inside the window): its messages raise our estimate.
    deliver(
        &mut s,
        &mut srv,
        now_at(0, T0),
        T0 + 20,
        1,
        &req(1),
        &mut rng,
    );
    assert_eq!(s.clock().offset_secs(), 20);
    assert!(events(&mut s).contains(&Event::TimeSynced { offset_secs: 20 }));
    // A message from our past never lowers it.
    let mut old = Server {
        last: 0,
        session_id: s.session_id(),
    };
    deliver(
        &mut s,
        &mut old,
        now_at(0, T0),
        T0 - 100,
        1,
        &req(2),
        &mut rng,
    );
    assert_eq!(s.clock().offset_secs(), 20);
    // New msg_ids follow the learned server time.
    s.invoke_raw(&req(3)).unwrap();
    let id = requests_in(&drain(&mut s, now_at(0, T0)), REQ)[0];
    assert_eq!(msg_id_time_nanos(id) / 1_000_000_000, (T0 + 20) as i64);
}
