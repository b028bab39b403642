//! What legacy sockets deliver: MUD frames (4-byte big-endian length + the
//! driver's save_svalue text), and text chunks that never split a UTF-8
//! character across two read callbacks.

/// Largest piece of data one read callback gets (upstream reads ≤ 65535 bytes).
pub const MAX_CHUNK: usize = 65535;

/// Reassembles MUD-mode frames from a byte stream.
#[derive(Debug, Default)]
pub struct MudDecoder {
    buf: Vec<u8>,
}

impl MudDecoder {
    /// Adds bytes; returns the complete frames and, when a bad length was
    /// met, the error after which the connection must close (as upstream
    /// does). Frames before the bad length are returned too, whatever way
    /// TCP split the bytes.
    pub fn push(&mut self, data: &[u8], max_len: usize) -> (Vec<Vec<u8>>, Option<String>) {
        self.buf.extend_from_slice(data);
        let mut frames = Vec::new();
        let mut at = 0;
        while self.buf.len() - at >= 4 {
            let len = u32::from_be_bytes([
                self.buf[at],
                self.buf[at + 1],
                self.buf[at + 2],
                self.buf[at + 3],
            ]) as usize;
            if len == 0 || len > max_len {
                self.buf.clear();
                return (
                    frames,
                    Some(format!(
                        "MUD frame length {len} is outside 1..{max_len}; closing"
                    )),
                );
            }
            if self.buf.len() - at - 4 < len {
                break;
            }
            frames.push(self.buf[at + 4..at + 4 + len].to_vec());
            at += 4 + len;
        }
        self.buf.drain(..at);
        (frames, None)
    }
}

/// Frames `payload` for MUD mode.
pub fn mud_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Turns a byte stream into valid UTF-8 text chunks: an incomplete character
/// at the end waits for the next read; invalid bytes become U+FFFD (upstream
/// sanitises the same way, but also broke characters split across reads).
#[derive(Debug, Default)]
pub struct Utf8Chunker {
    carry: Vec<u8>,
}

impl Utf8Chunker {
    pub fn push(&mut self, data: &[u8]) -> String {
        let mut bytes = std::mem::take(&mut self.carry);
        bytes.extend_from_slice(data);
        // Keep back an incomplete sequence at the very end (at most 3 bytes).
        let keep = incomplete_tail(&bytes);
        self.carry = bytes.split_off(bytes.len() - keep);
        // Valid text (the usual case) is taken as is, without a copy.
        String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Whatever is still held (at close): rendered lossily.
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.carry);
        String::from_utf8_lossy(&rest).into_owned()
    }
}

/// Length of a trailing, possibly valid but incomplete UTF-8 sequence.
fn incomplete_tail(b: &[u8]) -> usize {
    for back in 1..=3.min(b.len()) {
        let c = b[b.len() - back];
        if c & 0xC0 == 0x80 {
            continue; // continuation byte: look further back
        }
        let need = match c {
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return 0,
        };
        return if need > back { back } else { 0 };
    }
    0
}

/// Splits text into chunks of at most MAX_CHUNK bytes at character
/// boundaries (text that fits is returned as is, without a copy).
pub fn split_text(s: String) -> Vec<String> {
    if s.len() <= MAX_CHUNK {
        return if s.is_empty() { Vec::new() } else { vec![s] };
    }
    let mut out = Vec::new();
    let mut rest = s.as_str();
    while rest.len() > MAX_CHUNK {
        let mut cut = MAX_CHUNK;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        out.push(rest[..cut].to_string());
        rest = &rest[cut..];
    }
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mud_frames_reassemble_across_reads() {
        let mut d = MudDecoder::default();
        let mut wire = mud_frame(b"\"hello\"");
        wire.extend(mud_frame(b"42"));
        let (a, b) = wire.split_at(5);
        assert_eq!(d.push(a, 100), (vec![], None));
        assert_eq!(
            d.push(b, 100),
            (vec![b"\"hello\"".to_vec(), b"42".to_vec()], None)
        );
    }

    #[test]
    fn mud_bad_length_is_an_error() {
        let mut d = MudDecoder::default();
        assert!(d.push(&[0, 0, 0, 0], 100).1.is_some());
        assert!(d.push(&[0, 0, 1, 0], 100).1.is_some());
        // Frames before the bad length still arrive, however the bytes were split.
        let mut wire = mud_frame(b"42");
        wire.extend([0, 0, 0, 0]);
        let mut whole = MudDecoder::default();
        let (frames, err) = whole.push(&wire, 100);
        assert_eq!(frames, vec![b"42".to_vec()]);
        assert!(err.is_some());
    }

    #[test]
    fn utf8_split_characters_are_kept_whole() {
        let mut c = Utf8Chunker::default();
        let s = "héllo €";
        let b = s.as_bytes();
        let mut out = String::new();
        for byte in b {
            out.push_str(&c.push(&[*byte]));
        }
        assert_eq!(out, s);
        assert_eq!(c.push(&[0xff, b'a']), "\u{FFFD}a");
    }

    #[test]
    fn split_text_respects_boundaries() {
        let s = "é".repeat(MAX_CHUNK);
        let parts = split_text(s.clone());
        assert!(parts.iter().all(|p| p.len() <= MAX_CHUNK));
        assert_eq!(parts.concat(), s);
    }
}
