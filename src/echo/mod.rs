//! A family that exists only in the crate's unit tests: it shows that a
//! family is its folder plus one line in `registry.rs` (docs/ARCHITECTURE.md,
//! "Adding a family"), with efuns of its own reached through the generic
//! route. TEST_ECHO (mode 31, outside the spec's numbers) echoes every
//! socket_write back as a read event.

use crate::core::{unsupported, Cx, Endpoint, EventKind, FamilyDef, Unisock};
use crate::error::{Result, ResultCode};
use crate::modes::ModeSet;
use crate::reactor::Readiness;
use crate::value::Value;

/// The test-only mode number.
pub const TEST_ECHO: u8 = 31;

/// The family as `registry::FAMILIES` lists it (under cfg(test)).
pub static FAMILY: FamilyDef = FamilyDef {
    what: "an echo socket (TEST_ECHO 31)",
    modes: ModeSet::of(&[TEST_ECHO]),
    new_endpoint,
    adopt: None,
};

fn new_endpoint(_mode: u8) -> Result<Box<dyn Endpoint>> {
    Ok(Box::new(Echo::default()))
}

/// The family's own efuns.
pub enum Call<'a> {
    /// echo_say(value): a read event with `value`, as if it had been written.
    Say(&'a Value),
    /// echo_count: how many values were echoed.
    Count,
}

impl Call<'_> {
    fn efun(&self) -> &'static str {
        match self {
            Call::Say(_) => "echo_say",
            Call::Count => "echo_count",
        }
    }
}

/// An echo efun on socket `id` (where a C ABI entry point would call it).
pub fn call(u: &mut Unisock, id: i32, call: Call) -> Result<Value> {
    let efun = call.efun();
    u.family_call(id, &FAMILY, efun, |cx, ep| {
        match ep.downcast_mut::<Echo>() {
            Some(e) => Ok(e.efun(cx, call)),
            None => Err(unsupported(efun)),
        }
    })
}

#[derive(Default)]
struct Echo {
    echoed: i64,
}

impl Echo {
    fn echo(&mut self, cx: &mut Cx, data: &Value) {
        self.echoed += 1;
        cx.emit(EventKind::Read, Some(data.clone()), None);
    }

    fn efun(&mut self, cx: &mut Cx, call: Call) -> Value {
        match call {
            Call::Say(v) => {
                self.echo(cx, v);
                Value::Int(0)
            }
            Call::Count => Value::Int(self.echoed),
        }
    }
}

impl Endpoint for Echo {
    fn ready(&mut self, _cx: &mut Cx, _readiness: Readiness) {}

    fn write(&mut self, cx: &mut Cx, data: &Value, _target: Option<&str>) -> Result<ResultCode> {
        self.echo(cx, data);
        Ok(ResultCode::Ok)
    }

    fn close(&mut self, _cx: &mut Cx) -> bool {
        true
    }

    fn abort(&mut self, _cx: &mut Cx) {}

    fn status(&self, out: &mut Value) {
        out.insert(Value::str("echoed"), Value::Int(self.echoed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modes;

    fn read(u: &mut Unisock, id: i32) -> Value {
        let e = u.next_event().expect("an event");
        assert_eq!((e.kind, e.socket), (EventKind::Read, id));
        e.data.expect("data")
    }

    #[test]
    fn a_family_registered_by_one_line_serves_the_core_efuns() {
        crate::policy::open_for_tests();
        let mut u = Unisock::new(crate::registry::FAMILIES).unwrap();
        u.create(1, TEST_ECHO.into()).unwrap();
        assert_eq!(u.write(1, &Value::str("hi"), None).unwrap(), ResultCode::Ok);
        assert_eq!(read(&mut u, 1), Value::str("hi"));

        // Its own efuns, through the one generic route.
        let said = call(&mut u, 1, Call::Say(&Value::str("there"))).unwrap();
        assert_eq!(said, Value::Int(0));
        assert_eq!(read(&mut u, 1), Value::str("there"));
        assert_eq!(call(&mut u, 1, Call::Count).unwrap(), Value::Int(2));

        let status = u.status(Some(1)).unwrap();
        assert_eq!(status.get("mode_name"), Some(&Value::str("mode 31")));
        assert_eq!(status.get("echoed"), Some(&Value::Int(2)));

        // The route checks the mode, for this family's efuns and another's.
        u.create(2, modes::STREAM.into()).unwrap();
        let e = call(&mut u, 2, Call::Count).unwrap_err();
        assert_eq!(e.code, ResultCode::EeModenotsupp);
        assert_eq!(
            e.message,
            "echo_count: socket 2 is STREAM (mode 1), not an echo socket (TEST_ECHO 31)"
        );
        let e = crate::external::call(&mut u, 1, crate::external::Call::Stats).unwrap_err();
        assert_eq!(e.code, ResultCode::EeModenotsupp);
        assert_eq!(
            e.message,
            "external_get_process_stats: socket 1 is mode 31 (mode 31), not an external \
             process (EXTERNAL_PROCESS 22 or EXTERNAL_COMMAND_MODE 23)"
        );
        let e = call(&mut u, 3, Call::Count).unwrap_err();
        assert_eq!(e.code, ResultCode::EeBadf);

        u.close(1).unwrap();
        u.close(2).unwrap();
        assert_eq!(u.counts(), (0, 0));
    }
}
