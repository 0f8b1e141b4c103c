//! Decoding a body's framing (`Content-Length` or `Transfer-Encoding: chunked`), of a
//! request or of a response, from the connection's read buffer as bytes arrive. Chunk
//! sizes are at most 15 hex digits, a chunk line's extensions at most [`MAX_EXTENSION`]
//! bytes and the trailers at most [`MAX_TRAILERS`]; anything else broken is a
//! [`FramingError`] naming what.

use bytes::{Buf, Bytes, BytesMut};

/// Longest chunk extension (`;name=value…`) accepted on one chunk-size line.
pub const MAX_EXTENSION: usize = 4096;
/// Longest trailer section accepted after the last chunk.
pub const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    #[error("invalid chunk size (expected hex digits, got {0:?})")]
    Size(char),
    #[error("chunk size overflows (more than 15 hex digits)")]
    Overflow,
    #[error("chunk extension longer than {MAX_EXTENSION} bytes")]
    Extension,
    #[error("missing CRLF after the chunk size")]
    SizeLine,
    #[error("missing CRLF after the chunk data")]
    DataEnd,
    #[error("trailers longer than {MAX_TRAILERS} bytes")]
    Trailers,
    #[error("invalid trailer line ending")]
    TrailerLine,
}

/// What decoding the buffered bytes gave.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Data(Bytes),
    /// The buffer holds no further part of the body: read more.
    NeedMore,
    End,
}

/// Where a body's decoding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Bytes still expected of a `Content-Length` body.
    Length(u64),
    Chunked(Chunk),
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk {
    Size {
        value: u64,
        digits: u8,
    },
    /// Whitespace after the size, before `;` or CR.
    SizeSpace {
        value: u64,
    },
    Extension {
        value: u64,
        len: usize,
    },
    SizeLf {
        value: u64,
    },
    Data(u64),
    DataCr,
    DataLf,
    Trailer {
        line: usize,
        total: usize,
    },
    TrailerLf {
        line: usize,
        total: usize,
    },
}

impl Framing {
    pub fn chunked() -> Framing {
        Framing::Chunked(Chunk::Size {
            value: 0,
            digits: 0,
        })
    }

    pub fn is_done(&self) -> bool {
        matches!(self, Framing::Done)
    }

    /// Takes the next part of the body out of `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, FramingError> {
        match self {
            Framing::Done => Ok(Decoded::End),
            Framing::Length(0) => {
                *self = Framing::Done;
                Ok(Decoded::End)
            }
            Framing::Length(rest) => {
                if buf.is_empty() {
                    return Ok(Decoded::NeedMore);
                }
                let n = (*rest).min(buf.len() as u64);
                *rest -= n;
                let data = buf.split_to(n as usize).freeze();
                if *rest == 0 {
                    *self = Framing::Done;
                }
                Ok(Decoded::Data(data))
            }
            Framing::Chunked(state) => {
                let out = decode_chunked(state, buf)?;
                if out == Decoded::End {
                    *self = Framing::Done;
                }
                Ok(out)
            }
        }
    }
}

fn decode_chunked(state: &mut Chunk, buf: &mut BytesMut) -> Result<Decoded, FramingError> {
    loop {
        if let Chunk::Data(rest) = state {
            if buf.is_empty() {
                return Ok(Decoded::NeedMore);
            }
            let n = (*rest).min(buf.len() as u64);
            *rest -= n;
            let data = buf.split_to(n as usize).freeze();
            if *rest == 0 {
                *state = Chunk::DataCr;
            }
            return Ok(Decoded::Data(data));
        }
        let Some(&b) = buf.first() else {
            return Ok(Decoded::NeedMore);
        };
        buf.advance(1);
        *state = match *state {
            Chunk::Size { value, digits } => match b {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    if digits == 15 {
                        return Err(FramingError::Overflow);
                    }
                    let d = (b as char).to_digit(16).expect("hex digit") as u64;
                    Chunk::Size {
                        value: value * 16 + d,
                        digits: digits + 1,
                    }
                }
                b'\n' => return Err(FramingError::SizeLine),
                _ if digits == 0 => return Err(FramingError::Size(b as char)),
                b' ' | b'\t' => Chunk::SizeSpace { value },
                b';' => Chunk::Extension { value, len: 0 },
                b'\r' => Chunk::SizeLf { value },
                _ => return Err(FramingError::Size(b as char)),
            },
            Chunk::SizeSpace { value } => match b {
                b' ' | b'\t' => Chunk::SizeSpace { value },
                b';' => Chunk::Extension { value, len: 0 },
                b'\r' => Chunk::SizeLf { value },
                _ => return Err(FramingError::Size(b as char)),
            },
            Chunk::Extension { value, len } => match b {
                b'\r' => Chunk::SizeLf { value },
                b'\n' => return Err(FramingError::SizeLine),
                _ if len >= MAX_EXTENSION => return Err(FramingError::Extension),
                _ => Chunk::Extension {
                    value,
                    len: len + 1,
                },
            },
            Chunk::SizeLf { value } => match b {
                b'\n' if value == 0 => Chunk::Trailer { line: 0, total: 0 },
                b'\n' => Chunk::Data(value),
                _ => return Err(FramingError::SizeLine),
            },
            Chunk::Data(_) => unreachable!("handled above"),
            Chunk::DataCr => match b {
                b'\r' => Chunk::DataLf,
                _ => return Err(FramingError::DataEnd),
            },
            Chunk::DataLf => match b {
                b'\n' => Chunk::Size {
                    value: 0,
                    digits: 0,
                },
                _ => return Err(FramingError::DataEnd),
            },
            Chunk::Trailer { line, total } => match b {
                b'\r' => Chunk::TrailerLf { line, total },
                b'\n' => return Err(FramingError::TrailerLine),
                _ if total >= MAX_TRAILERS => return Err(FramingError::Trailers),
                _ => Chunk::Trailer {
                    line: line + 1,
                    total: total + 1,
                },
            },
            Chunk::TrailerLf { line, total } => match b {
                b'\n' if line == 0 => return Ok(Decoded::End),
                b'\n' => Chunk::Trailer { line: 0, total },
                _ => return Err(FramingError::TrailerLine),
            },
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed `step` bytes at a time; the body, or the first error.
    fn decode_all(
        mut framing: Framing,
        input: &[u8],
        step: usize,
    ) -> Result<Vec<u8>, FramingError> {
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        let mut fed = 0;
        loop {
            match framing.decode(&mut buf)? {
                Decoded::Data(d) => body.extend_from_slice(&d),
                Decoded::End => return Ok(body),
                Decoded::NeedMore if fed >= input.len() => panic!("body did not end: {body:?}"),
                Decoded::NeedMore => {
                    let end = (fed + step).min(input.len());
                    buf.extend_from_slice(&input[fed..end]);
                    fed = end;
                }
            }
        }
    }

    #[test]
    fn chunked_bodies_decode_whatever_the_read_sizes() {
        let input =
            b"3\r\nabc\r\nA;ext=1;x=\"y\"\r\n0123456789\r\n1 \r\nZ\r\n0\r\nx-sum: 42\r\n\r\n";
        for step in [1, 2, 3, 7, input.len()] {
            assert_eq!(
                decode_all(Framing::chunked(), input, step).as_deref(),
                Ok(&b"abc0123456789Z"[..]),
                "step {step}"
            );
        }
        assert_eq!(decode_all(Framing::chunked(), b"0\r\n\r\n", 1), Ok(vec![]));
    }

    #[test]
    fn the_bytes_after_a_body_stay_in_the_buffer() {
        let mut buf = BytesMut::from(&b"2\r\nhi\r\n0\r\n\r\nGET / HTTP/1.1\r\n"[..]);
        let mut f = Framing::chunked();
        assert_eq!(
            f.decode(&mut buf),
            Ok(Decoded::Data(Bytes::from_static(b"hi")))
        );
        assert_eq!(f.decode(&mut buf), Ok(Decoded::End));
        assert_eq!(&buf[..], b"GET / HTTP/1.1\r\n");
        let mut buf = BytesMut::from(&b"helloGET"[..]);
        let mut f = Framing::Length(5);
        assert_eq!(
            f.decode(&mut buf),
            Ok(Decoded::Data(Bytes::from_static(b"hello")))
        );
        assert_eq!(f.decode(&mut buf), Ok(Decoded::End));
        assert_eq!(&buf[..], b"GET");
    }

    #[test]
    fn broken_chunked_framing_is_named() {
        let mut huge = b"5;".to_vec();
        huge.extend(std::iter::repeat_n(b'a', MAX_EXTENSION + 1));
        huge.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
        let mut trailers = b"0\r\n".to_vec();
        trailers.extend(std::iter::repeat_n(b'a', MAX_TRAILERS + 1));
        let cases: Vec<(&[u8], FramingError)> = vec![
            (b"zz\r\n", FramingError::Size('z')),
            (b"-5\r\n", FramingError::Size('-')),
            (b"\r\n", FramingError::Size('\r')),
            (b"fffffffffffffffff\r\n", FramingError::Overflow),
            (b"5\r\nhelloXX0\r\n\r\n", FramingError::DataEnd),
            (b"5\nhello", FramingError::SizeLine),
            (b"5 x\r\n", FramingError::Size('x')),
            (&huge, FramingError::Extension),
            (&trailers, FramingError::Trailers),
            (b"0\r\nx: 1\n\r\n", FramingError::TrailerLine),
        ];
        for (input, want) in cases {
            assert_eq!(
                decode_all(Framing::chunked(), input, 5),
                Err(want.clone()),
                "{:?}",
                String::from_utf8_lossy(&input[..input.len().min(40)])
            );
        }
    }
}
