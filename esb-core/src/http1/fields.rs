//! Header fields of a parsed head: the header map (values are slices of the head's bytes,
//! not copies), the framing fields (`Transfer-Encoding`, `Content-Length`) and
//! comma-separated tokens.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue};

/// The header map of a head that httparse parsed out of `bytes`, with `room` free slots.
pub fn header_map(
    bytes: &Bytes,
    fields: &[httparse::Header<'_>],
    room: usize,
) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::with_capacity(fields.len() + room);
    for h in fields {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| "invalid header name: names are tokens (letters, digits, -)".to_owned())?;
        let value = bytes.slice_ref(h.value);
        // SAFETY: httparse admits only visible ASCII, space, tab and obs-text bytes in a
        // header value, which is what a HeaderValue may hold.
        let value = unsafe { HeaderValue::from_maybe_shared_unchecked(value) };
        headers.append(name, value);
    }
    Ok(headers)
}

/// Whether `buf` holds the blank line that ends a head (CRLF or bare LF line endings).
pub fn has_blank_line(buf: &[u8]) -> bool {
    let mut from = 0;
    while let Some(i) = buf[from..].iter().position(|&b| b == b'\n') {
        let at = from + i;
        match buf.get(at + 1) {
            Some(b'\n') => return true,
            Some(b'\r') if buf.get(at + 2) == Some(&b'\n') => return true,
            _ => from = at + 1,
        }
    }
    false
}

/// `None` without `Transfer-Encoding`; otherwise whether its last coding is `chunked`.
pub fn ends_chunked(headers: &HeaderMap) -> Option<bool> {
    if !headers.contains_key(TRANSFER_ENCODING) {
        return None;
    }
    let last = headers
        .get_all(TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(|c| c.trim_ascii())
        .rfind(|c| !c.is_empty());
    Some(last.is_some_and(|c| c.eq_ignore_ascii_case(b"chunked")))
}

/// The `Content-Length`, if any; an error when it is not a number or its values differ.
pub fn content_length(headers: &HeaderMap) -> Result<Option<u64>, &'static str> {
    let mut length = None;
    for v in headers.get_all(CONTENT_LENGTH) {
        for part in v.as_bytes().split(|&b| b == b',') {
            let part = part.trim_ascii();
            let n = (!part.is_empty() && part.len() <= 19 && part.iter().all(u8::is_ascii_digit))
                .then(|| std::str::from_utf8(part).ok()?.parse::<u64>().ok())
                .flatten();
            match (n, length) {
                (None, _) => {
                    return Err("invalid Content-Length: it must be a decimal number of bytes")
                }
                (Some(n), Some(l)) if n != l => {
                    return Err("Content-Length values differ: send one Content-Length")
                }
                (Some(n), _) => length = Some(n),
            }
        }
    }
    Ok(length)
}

/// Whether a comma-separated header holds `token` (case-insensitive).
pub fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}
