//! (stub, being written: CPU/memory/process limits through cgroups or rlimits)
#![allow(dead_code, unused_variables)]
use crate::value::Value;

#[derive(Clone, Default, Debug)]
pub struct Wanted {
    pub cpu_percent: Option<u32>,
    pub memory: Option<u64>,
    pub processes: Option<u64>,
}

impl Wanted {
    pub fn is_empty(&self) -> bool {
        self.cpu_percent.is_none() && self.memory.is_none() && self.processes.is_none()
    }
}

pub struct Limits;

impl Limits {
    pub fn prepare(w: &Wanted) -> Result<Limits, String> {
        Ok(Limits)
    }
    pub fn in_child(&self) -> std::io::Result<()> {
        Ok(())
    }
    pub fn started(&mut self, pid: i32) {}
    pub fn tick(&mut self) -> Option<std::time::Duration> {
        None
    }
    pub fn next_tick(&self) -> Option<std::time::Duration> {
        None
    }
    pub fn limit_hit(&self, signal: i32) -> bool {
        false
    }
    pub fn set_running(&mut self, pid: i32, limits: &Value) -> Result<(), String> {
        Err("not built".into())
    }
    pub fn report(&self) -> Value {
        Value::Mapping(vec![])
    }
    pub fn usage(&self) -> Option<(i64, i64)> {
        None
    }
    pub fn cleanup(&mut self) {}
}
