//! Header fields of a parsed head: the header map (values are slices of the head's bytes,
//! not copies) or the fields as sent ([`RawFields`]), the framing fields
//! (`Transfer-Encoding`, `Content-Length`), comma-separated tokens and the
//! connection-level (hop-by-hop) fields a proxy never forwards.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue};

/// The header map of a head that httparse parsed out of `bytes`, of the fields `keep`
/// keeps (by name).
pub fn header_map(
    bytes: &Bytes,
    fields: &[httparse::Header<'_>],
    keep: impl Fn(&str) -> bool,
) -> Result<HeaderMap, String> {
    let mut headers = super::spare::take_map(fields.len());
    for h in fields.iter().filter(|h| keep(h.name)) {
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

/// Most fields a head's [`RawFields`] holds.
pub const RAW_MAX: usize = 16;

/// The end-to-end fields of a response head, as the backend sent them: slices of the
/// head's bytes (connection-level fields left out). Small, as it is moved along with the
/// response: offsets are 16 bits (a head is at most 64 KiB).
#[derive(Clone)]
pub struct RawFields {
    bytes: Bytes,
    /// Name start, name end, value start, value end, in `bytes`.
    spans: [[u16; 4]; RAW_MAX],
    len: u8,
    /// Which of the fields is the first `Content-Length`, and whether there is a `Date`.
    length: Option<u8>,
    date: bool,
}

impl RawFields {
    /// Names and values in the order the backend sent them.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.spans[..self.len as usize]
            .iter()
            .map(|&[ns, ne, vs, ve]| {
                (
                    &self.bytes[ns as usize..ne as usize],
                    &self.bytes[vs as usize..ve as usize],
                )
            })
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value of the first `Content-Length`, if any.
    pub fn content_length(&self) -> Option<&[u8]> {
        let [_, _, vs, ve] = self.spans[self.length? as usize];
        Some(&self.bytes[vs as usize..ve as usize])
    }

    pub fn has_date(&self) -> bool {
        self.date
    }

    /// The fields `keep` keeps of a head httparse parsed out of `bytes` (at most 64 KiB
    /// long), if there are at most [`RAW_MAX`] of them.
    pub fn of(
        bytes: &Bytes,
        all: &[httparse::Header<'_>],
        keep: impl Fn(&str) -> bool,
    ) -> Option<RawFields> {
        let base = bytes.as_ptr() as usize;
        let at = |s: &[u8]| u16::try_from(s.as_ptr() as usize - base).ok();
        let mut raw = RawFields {
            bytes: bytes.clone(),
            spans: [[0; 4]; RAW_MAX],
            len: 0,
            length: None,
            date: false,
        };
        for h in all.iter().filter(|h| keep(h.name)) {
            let i = raw.len;
            let span = raw.spans.get_mut(i as usize)?;
            let (name, value) = (h.name.as_bytes(), h.value);
            let (n, v) = (at(name)?, at(value)?);
            *span = [
                n,
                n.checked_add(name.len() as u16)?,
                v,
                v.checked_add(value.len() as u16)?,
            ];
            match name.len() {
                4 if name.eq_ignore_ascii_case(b"date") => raw.date = true,
                14 if raw.length.is_none() && name.eq_ignore_ascii_case(b"content-length") => {
                    raw.length = Some(i)
                }
                _ => {}
            }
            raw.len += 1;
        }
        Some(raw)
    }
}

/// Whether `buf` holds the blank line that ends a head (CRLF or bare LF line endings).
pub fn has_blank_line(buf: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', buf).any(|at| match buf.get(at + 1) {
        Some(b'\n') => true,
        Some(b'\r') => buf.get(at + 2) == Some(&b'\n'),
        _ => false,
    })
}

/// `None` without `Transfer-Encoding`; otherwise whether its last coding is `chunked`.
pub fn ends_chunked(headers: &HeaderMap) -> Option<bool> {
    if !headers.contains_key(TRANSFER_ENCODING) {
        return None;
    }
    Some(last_coding_is_chunked(
        headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .map(|v| v.as_bytes()),
    ))
}

/// The items of a comma-separated field value, trimmed (empty ones included).
pub fn tokens(value: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(<[u8]>::trim_ascii)
}

/// The last coding a `Transfer-Encoding` value names, if any.
pub fn last_coding(value: &[u8]) -> Option<&[u8]> {
    tokens(value).rfind(|c| !c.is_empty())
}

/// Whether the last coding of these `Transfer-Encoding` values is `chunked`.
pub fn last_coding_is_chunked<'a>(values: impl Iterator<Item = &'a [u8]>) -> bool {
    let last = values.filter_map(last_coding).last();
    last.is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"))
}

/// The `Content-Length`, if any; an error when it is not a number or its values differ.
pub fn content_length(headers: &HeaderMap) -> Result<Option<u64>, &'static str> {
    length_of(headers.get_all(CONTENT_LENGTH).iter().map(|v| v.as_bytes()))
}

/// The length these `Content-Length` values give, if any.
pub fn length_of<'a>(values: impl Iterator<Item = &'a [u8]>) -> Result<Option<u64>, &'static str> {
    let mut length = None;
    for v in values {
        for part in tokens(v) {
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
    headers
        .get_all(name)
        .iter()
        .any(|v| tokens(v.as_bytes()).any(|t| t.eq_ignore_ascii_case(token.as_bytes())))
}

/// Connection-level headers that are never forwarded (RFC 9110 §7.6.1). `Connection`
/// comes first: it may name further ones.
pub static HOP_BY_HOP: [HeaderName; 9] = [
    http::header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    http::header::TE,
    http::header::TRAILER,
    TRANSFER_ENCODING,
    http::header::UPGRADE,
];

/// Which of [`HOP_BY_HOP`] a field name is (any case); only names of a hop-by-hop name's
/// length are compared.
pub fn hop_by_hop_index(name: &[u8]) -> Option<usize> {
    if !matches!(name.len(), 2 | 7 | 10 | 16..=19) {
        return None;
    }
    HOP_BY_HOP
        .iter()
        .position(|h| h.as_str().as_bytes().eq_ignore_ascii_case(name))
}

/// Names a `Connection` value lists besides `keep-alive` and `close` (headers that go with
/// the connection too).
pub fn listed_in_connection(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    tokens(value).filter(|t| {
        !t.is_empty() && !t.eq_ignore_ascii_case(b"keep-alive") && !t.eq_ignore_ascii_case(b"close")
    })
}

/// Removes the connection-level headers, and those `Connection` names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // One pass over the names present, comparing only those of a hop-by-hop name's
    // length: usually at most `Connection` is there.
    let mut found = [false; 9];
    let mut any = false;
    for k in headers.keys() {
        if let Some(i) = hop_by_hop_index(k.as_str().as_bytes()) {
            found[i] = true;
            any = true;
        }
    }
    if !any {
        return;
    }
    if found[0] {
        let listed: Vec<HeaderName> = headers
            .get_all(http::header::CONNECTION)
            .iter()
            .flat_map(|v| listed_in_connection(v.as_bytes()))
            .filter_map(|n| HeaderName::from_bytes(n).ok())
            .collect();
        for n in listed {
            headers.remove(n);
        }
    }
    for (h, present) in HOP_BY_HOP.iter().zip(found) {
        if present {
            headers.remove(h);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert(
            "connection",
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert("x-keep", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-keep"));
    }

    #[test]
    fn hop_by_hop_names_are_found_in_any_case() {
        assert_eq!(hop_by_hop_index(b"Connection"), Some(0));
        assert_eq!(hop_by_hop_index(b"TRANSFER-ENCODING"), Some(7));
        assert_eq!(hop_by_hop_index(b"te"), Some(5));
        assert_eq!(hop_by_hop_index(b"user-agent"), None);
        assert_eq!(hop_by_hop_index(b"content-length"), None);
        let listed: Vec<&[u8]> = listed_in_connection(b"keep-alive, X-Private ,close,").collect();
        assert_eq!(listed, [&b"X-Private"[..]]);
    }

    #[test]
    fn a_head_ends_at_a_blank_line_with_either_line_end() {
        assert!(has_blank_line(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n"));
        assert!(has_blank_line(b"GET / HTTP/1.1\nhost: a\n\nbody"));
        assert!(has_blank_line(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(!has_blank_line(b"GET / HTTP/1.1\r\nhost: a\r\n"));
        assert!(!has_blank_line(b"GET / HTTP/1.1\r\nhost: a\r\n\r"));
        assert!(!has_blank_line(b"GET / HTTP/1.1\r\n \r\n"));
        assert!(!has_blank_line(b""));
    }
}
