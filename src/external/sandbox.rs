//! (stub, being written: no_new_privs, landlock, seccomp, network namespace)
#![allow(dead_code, unused_variables)]
use crate::value::Value;

pub struct Sandbox;

impl Sandbox {
    pub fn prepare(
        value: &Value,
        cwd: &std::path::Path,
        runs_as_root: bool,
    ) -> Result<Option<Sandbox>, String> {
        Ok(None)
    }
    pub fn in_child(&self) -> std::io::Result<()> {
        Ok(())
    }
    pub fn report(&self) -> Value {
        Value::Mapping(vec![])
    }
}
