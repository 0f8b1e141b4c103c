//! Buffers of connections that wait (a client connection for its next request, a backend
//! connection in its pool), per thread, a few dozen at most: a busy connection takes them
//! back instead of allocating.

use bytes::BytesMut;
use std::cell::RefCell;

const MAX: usize = 64;
/// Larger buffers (a big head, a big response head) are not kept.
pub const LARGEST: usize = 16 * 1024;

thread_local! {
    static READ: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
    static OUT: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

pub fn put_read(mut b: BytesMut) {
    // A buffer still shared with a request's bytes could not be reused in place.
    if b.is_empty() && b.try_reclaim(1) && b.capacity() <= LARGEST {
        READ.with(|r| {
            let mut r = r.borrow_mut();
            if r.len() < MAX {
                r.push(b);
            }
        });
    }
}

pub fn take_read() -> BytesMut {
    READ.with(|r| r.borrow_mut().pop()).unwrap_or_default()
}

pub fn put_out(mut b: Vec<u8>) {
    if b.capacity() > 0 && b.capacity() <= LARGEST {
        b.clear();
        OUT.with(|o| {
            let mut o = o.borrow_mut();
            if o.len() < MAX {
                o.push(b);
            }
        });
    }
}

pub fn take_out() -> Vec<u8> {
    OUT.with(|o| o.borrow_mut().pop()).unwrap_or_default()
}
