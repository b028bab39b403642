//! socket_set_option / socket_get_option through the C ABI with arbitrary
//! value trees built by the C builders, on sockets of every legacy mode in
//! three states (fresh, bound, listening), plus an unsupported mode.
//!
//! Invariants: every result is OK or a known code with a message; a refused
//! set stores nothing (get before == get after); an accepted set reads back
//! as the catalog's validator says (secrets as "<set>", write-only options
//! refuse to be read); the socket id is closed at the end of every run.
//! Options of modes this build cannot create yet are validated through the
//! option store directly, with the same invariants.
#![no_main]

use std::ffi::c_char;
use std::ptr;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

use unisock::ffi::sockets::{
    socket_get_option, socket_set_option, unisock_address, unisock_bind, unisock_close,
    unisock_create, unisock_listen, unisock_socket_count, unisock_status,
};
use unisock::ffi::values::UnisockValue;
use unisock::options::{catalog, store::OptionStore, validate, Access};
use unisock::{ResultCode, Value};
use unisock_fuzz::*;

const ID: i32 = 4242;

/// Mostly the legacy modes 0..=6; now and then REST_SERVER (14: known but not
/// built, must answer EE_MODENOTSUPP and log one line, hence rare) or any i64.
#[derive(Arbitrary, Debug)]
struct ModeSel(u8, i64);

#[derive(Arbitrary, Debug, Clone, Copy)]
enum OptSel {
    Core(u8),
    Http(u8),
    Cache(u8),
    Three(u8),
    Four(u8),
    Any(i64),
}

impl OptSel {
    fn id(self) -> i64 {
        match self {
            OptSel::Core(n) => (n % 21) as i64,
            OptSel::Http(n) => 100 + (n % 61) as i64,
            OptSel::Cache(n) => 200 + (n % 11) as i64,
            OptSel::Three(n) => 300 + (n % 11) as i64,
            OptSel::Four(n) => 440 + (n % 16) as i64,
            OptSel::Any(n) => n,
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input {
    mode: ModeSel,
    /// 0: fresh, 1: bound to 127.0.0.1, 2: bound and listening.
    state: u8,
    sets: Vec<(OptSel, FuzzValue)>,
    /// Which mode of the option's own set the store-level check uses.
    store_mode: u8,
}

/// Codes socket_set_option may answer when it refuses.
const SET_REFUSALS: &[ResultCode] = &[
    ResultCode::UnknownOption,
    ResultCode::OptionNotForMode,
    ResultCode::BadOptionValue,
    ResultCode::OptionReadOnly,
    ResultCode::OptionTooLate,
    ResultCode::TooLarge,
    // HTTPS modes load SO_TLS_CERT / SO_TLS_KEY / SO_TLS_CA when they are set.
    ResultCode::TlsConfig,
];

fn same_result(a: &Result<Value, ResultCode>, b: &Result<Value, ResultCode>) -> bool {
    match (a, b) {
        (Ok(x), Ok(y)) => same(x, y),
        (Err(x), Err(y)) => x == y,
        _ => false,
    }
}

/// What get must read back after `value` was accepted for `def`.
fn check_read_back(
    def: &unisock::options::OptionDef,
    model: &Value,
    got: &Result<Value, ResultCode>,
    what: &str,
) {
    let stored = validate::validate(def, model)
        .unwrap_or_else(|e| panic!("{what}: set accepted but validate refuses: {}", e.message));
    match (def.access, got) {
        (Access::WriteOnly, Err(ResultCode::OptionWriteOnly)) => {}
        (Access::WriteOnly, other) => panic!("{what}: write-only option read back {other:?}"),
        (Access::Secret, Ok(v)) => assert_eq!(v, &Value::str("<set>"), "{what}: secret read back"),
        (_, Ok(v)) if def.append => match v {
            Value::Array(items) => assert!(
                items.last().is_some_and(|l| same(l, &stored)),
                "{what}: appended value missing: {v:?} vs {stored:?}"
            ),
            other => panic!("{what}: appending option read back {other:?}"),
        },
        (Access::ReadWrite, Ok(v)) => {
            assert!(
                same(v, &stored),
                "{what}: read back {v:?}, stored {stored:?}"
            )
        }
        (_, other) => panic!("{what}: accepted set, then get gave {other:?}"),
    }
}

/// Validation at the store level, for every option, in one of its own modes
/// (most of them belong to modes this build cannot create yet).
fn check_store(opt: i64, model: &Value, store_mode: u8) {
    let Some(def) = catalog::find(opt) else {
        let mut s = OptionStore::default();
        let e = s.set(opt, model, 1, false).unwrap_err();
        assert_eq!(e.code, ResultCode::UnknownOption);
        return;
    };
    let modes: Vec<u8> = def.modes.iter().collect();
    if modes.is_empty() {
        return;
    }
    let mode = modes[store_mode as usize % modes.len()];
    for started in [false, true] {
        let mut s = OptionStore::default();
        let before = s.get(opt, mode).map_err(|e| e.code);
        match s.set(opt, model, mode, started) {
            Ok(d) => {
                assert_eq!(d.id as i64, opt);
                let after = s.get(opt, mode).map_err(|e| e.code);
                check_read_back(def, model, &after, "store");
            }
            Err(e) => {
                assert!(
                    SET_REFUSALS.contains(&e.code),
                    "store refusal {:?}: {}",
                    e.code,
                    e.message
                );
                assert!(
                    e.message.starts_with("socket_set_option: "),
                    "store message: {:?}",
                    e.message
                );
                assert!(s.is_empty(), "refused set stored something");
                let after = s.get(opt, mode).map_err(|e| e.code);
                assert!(same_result(&before, &after));
            }
        }
    }
}

fn status_of(id: i32) -> Option<Value> {
    let mut out: *mut UnisockValue = ptr::null_mut();
    let rc = unisock_status(id, &mut out);
    check_result(rc, "status");
    (rc == ResultCode::Ok)
        .then(|| Owned(out))
        .map(|o| read_value(o.as_ptr()))
}

fuzz_target!(|input: Input| {
    // Modes 22/23/29/30 and TLS files are the admin's to allow: allowed here.
    open_policy();
    let mode = match input.mode.0 {
        0..=229 => (input.mode.0 % 7) as i64,
        230..=249 => 10 + (input.mode.0 % 4) as i64, // the HTTP family
        250..=251 => 14,
        252 => 22 + (input.state % 2) as i64, // external processes (never started here)
        253..=254 => 29 + (input.mode.0 % 2) as i64, // the IPC bus
        _ => input.mode.1,
    };

    poison_last_error();
    let rc = unisock_create(ID, mode);
    let msg = check_result(rc, "create");
    let created = rc == ResultCode::Ok;
    let built_mode = unisock::modes::info(mode).is_some_and(|m| m.implemented);
    match mode {
        _ if built_mode => assert!(created, "create mode {mode}: {rc:?} {msg}"),
        10..=30 => {
            assert_eq!(rc, ResultCode::EeModenotsupp, "mode {mode}");
            assert!(msg.contains("not supported"), "{msg}");
        }
        _ => assert_eq!(rc, ResultCode::EeModenotsupp),
    }
    // Only the legacy and HTTP servers bind an address: clients have no
    // socket_bind, an IPC server binds its own path or port range, and an
    // external socket's bind starts its process.
    let binds = matches!(mode, 0..=6 | 10 | 12);

    if created {
        let st = status_of(ID).expect("status of a created socket");
        assert_eq!(field_int(&st, "id"), Some(ID as i64));
        assert_eq!(field_int(&st, "mode"), Some(mode));
        if binds && input.state % 3 >= 1 {
            let addr = b"127.0.0.1 0\0";
            let rc = unisock_bind(ID, 0, addr.as_ptr() as *const c_char);
            check_result(rc, "bind");
            assert_eq!(rc, ResultCode::Ok, "bind: {}", last_error());
            let mut a: *mut UnisockValue = ptr::null_mut();
            assert_eq!(unisock_address(ID, 1, &mut a), ResultCode::Ok);
            let local = read_value(Owned(a).as_ptr());
            let Value::Str(local) = local else {
                panic!("local address {local:?}")
            };
            assert!(local.starts_with("127.0.0.1 "), "{local}");
        }
        if binds && input.state % 3 == 2 {
            // TLS modes refuse without a certificate, datagrams cannot listen.
            let rc = unisock_listen(ID);
            check_result(rc, "listen");
        }
    }

    for (k, (sel, fv)) in input.sets.iter().take(8).enumerate() {
        let opt = sel.id();
        let built = build(fv, 0);
        let (handle, model) = match built {
            Some((h, v)) => {
                // The builders produced exactly the tree we asked for.
                let back = read_value(h.as_ptr());
                assert!(same(&back, &v), "built {back:?}, wanted {v:?}");
                (Some(h), v)
            }
            None => (None, Value::Undefined),
        };
        let what = format!("set #{k} option {opt} mode {mode}");

        let before = get_option(ID, opt);
        poison_last_error();
        let vp = handle.as_ref().map_or(ptr::null(), |h| h.as_ptr());
        let rc = socket_set_option(ID, opt, vp);
        let msg = check_result(rc, &what);
        if handle.is_none() {
            assert_eq!(rc, ResultCode::NullParameter, "{what}: NULL value");
            continue;
        }
        // The value is borrowed: still ours, still the same.
        let h = handle.unwrap();
        assert!(
            same(&read_value(h.as_ptr()), &model),
            "{what}: value changed"
        );

        let after = get_option(ID, opt);
        if !created {
            assert_eq!(rc, ResultCode::EeBadf, "{what}");
            assert_eq!(after.as_ref().err(), Some(&ResultCode::EeBadf));
        } else if rc == ResultCode::Ok {
            let def =
                catalog::find(opt).unwrap_or_else(|| panic!("{what}: unknown option accepted"));
            check_read_back(def, &model, &after, &what);
        } else {
            assert!(
                SET_REFUSALS.contains(&rc),
                "{what}: refused with {rc:?}: {msg}"
            );
            assert!(
                msg.starts_with("socket_set_option: "),
                "{what}: message {msg:?}"
            );
            assert!(
                same_result(&before, &after),
                "{what}: refused set changed the option: {before:?} -> {after:?}"
            );
            if rc == ResultCode::UnknownOption && catalog::find(opt).is_none() {
                assert!(msg.contains(&opt.to_string()), "{what}: {msg}");
            }
        }

        // NULL out-pointer for get: refused, nothing written anywhere.
        let rc = socket_get_option(ID, opt, ptr::null_mut());
        check_result(rc, "get_option(NULL out)");
        assert_ne!(rc, ResultCode::Ok);

        check_store(opt, &model, input.store_mode);
    }

    if created {
        assert_eq!(unisock_close(ID), ResultCode::Ok);
    }
    poison_last_error();
    let rc = unisock_close(ID);
    assert_eq!(rc, ResultCode::EeBadf);
    check_result(rc, "close twice");
    let (mut open, mut flushing) = (usize::MAX, usize::MAX);
    assert_eq!(
        unisock_socket_count(&mut open, &mut flushing),
        ResultCode::Ok
    );
    assert_eq!((open, flushing), (0, 0), "sockets left behind");
});
