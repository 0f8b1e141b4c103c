//! Buffers of connections that wait (a client connection for its next request, a backend
//! connection in its pool) and header maps of heads already written, per thread, a few
//! dozen at most: a busy connection takes them back instead of allocating.

use bytes::BytesMut;
use http::HeaderMap;
use std::cell::RefCell;

const MAX: usize = 64;
/// A new read buffer's size: room for a usual head and what follows it, and for the heads
/// of the next requests (each split off its front) before it fills up.
pub const USUAL: usize = 4 * 1024;
/// Larger buffers (a big head, a big response head) are not kept.
pub const LARGEST: usize = 16 * 1024;

/// Header maps with room for more fields than this are not kept.
const LARGEST_MAP: usize = 64;

thread_local! {
    static READ: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
    static OUT: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    static MAPS: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
}

type Spares<T> = std::thread::LocalKey<RefCell<Vec<T>>>;

/// Keeps `item` in this thread's `list`, unless it already holds [`MAX`].
fn keep<T>(list: &'static Spares<T>, item: T) {
    list.with(|l| {
        let mut l = l.borrow_mut();
        if l.len() < MAX {
            l.push(item);
        }
    });
}

fn take<T>(list: &'static Spares<T>) -> Option<T> {
    list.with(|l| l.borrow_mut().pop())
}

/// A header map written out (a request sent to a backend, a response sent to a client)
/// comes back emptied, with its room, for the next head parsed on this thread.
pub fn put_map(mut m: HeaderMap) {
    if m.capacity() > 0 && m.capacity() <= LARGEST_MAP {
        m.clear();
        keep(&MAPS, m);
    }
}

/// An empty header map with room for `n` fields.
pub fn take_map(n: usize) -> HeaderMap {
    match take(&MAPS) {
        Some(mut m) => {
            m.reserve(n);
            m
        }
        None => HeaderMap::with_capacity(n),
    }
}

pub fn put_read(mut b: BytesMut) {
    // A buffer still shared with a request's bytes could not be reused in place.
    if b.is_empty() && b.try_reclaim(1) && b.capacity() <= LARGEST {
        keep(&READ, b);
    }
}

/// A read buffer: a spare one, or a new one of [`USUAL`] bytes.
pub fn take_read() -> BytesMut {
    take(&READ).unwrap_or_else(|| BytesMut::with_capacity(USUAL))
}

pub fn put_out(mut b: Vec<u8>) {
    if b.capacity() > 0 && b.capacity() <= LARGEST {
        b.clear();
        keep(&OUT, b);
    }
}

pub fn take_out() -> Vec<u8> {
    take(&OUT).unwrap_or_default()
}
