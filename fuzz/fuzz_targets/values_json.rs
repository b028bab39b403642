//! unisock_value_from_json / unisock_value_to_json through the C ABI.
//!
//! Byte 0 picks the mode:
//! - even: the rest is JSON text for unisock_value_from_json. A refusal is
//!   PARSE with a message; an accepted value must render, and its rendering
//!   must be stable: to_json(from_json(to_json(v))) == to_json(v).
//! - odd: the rest is an arbitrary value tree built with the C builders;
//!   the same stability must hold for its rendering, and the rendering must
//!   parse back.
//!
//! Either way, values that were never through JSON must survive a clone.
#![no_main]

use std::ptr;

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;

use unisock::ffi::values::{unisock_value_clone, UnisockValue};
use unisock::ResultCode;
use unisock_fuzz::*;


fn stable(v: &Owned, what: &str) {
    let t1 = to_json(v.as_ptr()).unwrap_or_else(|rc| panic!("{what}: to_json refused: {rc:?}"));
    assert!(
        !t1.contains('\n'),
        "{what}: to_json is not one line: {t1:?}"
    );
    let v2 = match from_json(t1.as_bytes()) {
        Ok(v2) => v2,
        Err(e) => panic!("{what}: to_json output does not parse back: {e}\n{t1}"),
    };
    let t2 = to_json(v2.as_ptr()).expect("to_json of a parsed value");
    let v3 = from_json(t2.as_bytes()).expect("parse again");
    let (r2, r3) = (read_value(v2.as_ptr()), read_value(v3.as_ptr()));
    assert_eq!(t1, t2, "{what}: JSON rendering not stable after one round");
    assert!(same(&r2, &r3), "{what}: parse not stable");

    let mut c: *mut UnisockValue = ptr::null_mut();
    assert_eq!(unisock_value_clone(v.as_ptr(), &mut c), ResultCode::Ok);
    let c = Owned(c);
    assert!(
        same(&read_value(v.as_ptr()), &read_value(c.as_ptr())),
        "{what}: clone differs"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        // Empty input (and a NULL pointer with len 0) must be a clean refusal.
        assert!(from_json(&[]).is_err());
        return;
    };
    if sel % 2 == 0 {
        match from_json(rest) {
            Ok(v) => {
                // JSON text is UTF-8; anything else must have been refused.
                assert!(
                    std::str::from_utf8(rest).is_ok(),
                    "accepted JSON that is not UTF-8"
                );
                stable(&v, "from_json");
            }
            Err(msg) => {
                assert!(msg.starts_with("bad JSON"), "{msg}");
            }
        }
    } else {
        let mut u = Unstructured::new(rest);
        let Ok(fv) = arbitrary_value(&mut u) else {
            return;
        };
        let Some((h, model)) = build(&fv, 0) else {
            return;
        };
        assert!(same(&read_value(h.as_ptr()), &model), "built tree differs");
        stable(&h, "tree");
    }
});
