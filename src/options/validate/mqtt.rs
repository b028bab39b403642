//! Checks of the MQTT options (130–139).

use super::fields::*;
use super::no_controls;
use crate::value::Value;

pub(crate) fn mqtt_broker(v: &Value) -> Result<Value, String> {
    let s = str_of(v);
    let rest = s
        .strip_prefix("mqtt://")
        .or_else(|| s.strip_prefix("mqtts://"))
        .unwrap_or(s);
    if rest.contains("://") {
        return Err("the scheme must be mqtt:// or mqtts://".into());
    }
    host_port(rest)?;
    Ok(v.clone())
}

pub(crate) fn mqtt_string(v: &Value, min: usize) -> Result<Value, String> {
    let s = str_of(v);
    if s.len() < min || s.len() > 65535 {
        return Err(format!("{} bytes long ({min}..65535)", s.len()));
    }
    if s.contains('\0') {
        return Err("contains a NUL character".into());
    }
    Ok(v.clone())
}

pub(crate) fn mqtt_client_id(v: &Value) -> Result<Value, String> {
    mqtt_string(v, 1)?;
    no_controls(str_of(v), "the client id")?;
    Ok(v.clone())
}

pub(crate) fn mqtt_username(v: &Value) -> Result<Value, String> {
    mqtt_string(v, 0)
}

pub(crate) fn mqtt_will_topic(v: &Value) -> Result<Value, String> {
    mqtt_string(v, 1)?;
    let s = str_of(v);
    if let Some(i) = s.find(['+', '#']) {
        return Err(format!(
            "wildcard {:?} at position {}",
            &s[i..i + 1],
            s[..i].chars().count() + 1
        ));
    }
    Ok(v.clone())
}

pub(crate) fn mqtt_payload(v: &Value) -> Result<Value, String> {
    let n = v.as_bytes().map_or(0, <[u8]>::len);
    if n > 65535 {
        return Err(format!("{n} bytes long (at most 65535)"));
    }
    Ok(v.clone())
}
