use super::stdio::cut_incomplete_char;
use super::watches::{hold, is_overflow};
use crate::value::Value;
use std::collections::VecDeque;

#[test]
fn a_character_cut_at_the_end_waits() {
    let text = "aé€😀".as_bytes();
    for cut in 0..=text.len() {
        let mut head = text[..cut].to_vec();
        let carry = cut_incomplete_char(&mut head);
        assert!(std::str::from_utf8(&head).is_ok(), "cut at {cut}");
        assert!(carry.len() <= 3);
        let mut rest = carry;
        rest.extend_from_slice(&text[cut..]);
        head.extend(rest);
        assert_eq!(head, text);
    }
}

#[test]
fn held_events_keep_the_newest_behind_one_overflow_marker() {
    let ev = |i: i64| Value::mapping([("type", Value::str("file_event")), ("n", Value::Int(i))]);
    let mut q = VecDeque::new();
    for i in 0..4 {
        hold(&mut q, ev(i), 4);
    }
    assert_eq!(q.len(), 4);
    hold(&mut q, ev(4), 4); // full: the marker and the newest
    assert!(is_overflow(&q[0]));
    let n = |q: &VecDeque<Value>| -> Vec<i64> {
        q.iter()
            .skip(1)
            .map(|v| v.get("n").and_then(Value::as_int).unwrap())
            .collect()
    };
    assert_eq!(n(&q), vec![2, 3, 4]);
    for i in 5..9 {
        hold(&mut q, ev(i), 4); // one out per one in, the marker stays
    }
    assert_eq!(q.len(), 4);
    assert!(is_overflow(&q[0]) && !is_overflow(&q[1]));
    assert_eq!(n(&q), vec![6, 7, 8]);
}

#[test]
fn binary_is_left_whole() {
    let mut b = vec![0xff, b'a', 0xc3];
    assert!(cut_incomplete_char(&mut b).is_empty());
    assert_eq!(b, vec![0xff, b'a', 0xc3]);
}
