//! Feeds arbitrary bytes to the RESP frame parser the way a connection does
//! and checks its contract: it never panics, never claims more bytes than it
//! was given, never reports an empty frame, answers `Incomplete` for every
//! proper prefix of a frame it accepted, and frames it accepts survive an
//! encode / parse round trip.
#![no_main]

use bytes::BytesMut;
use cairn_server::resp::frame::{Frame, FrameError, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Small limits so the fuzzer reaches them.
    let limits = Limits { max_bulk: 1024, max_array: 64, max_inline: 256, max_depth: 4 };
    let mut pos = 0;
    while pos < data.len() {
        let buf = &data[pos..];
        match Frame::parse_with(buf, &limits) {
            Ok((frame, n)) => {
                assert!(n > 0 && n <= buf.len(), "consumed {n} of {}", buf.len());
                for cut in [0, n / 2, n - 1] {
                    if cut < n {
                        assert_eq!(Frame::parse_with(&buf[..cut], &limits), Err(FrameError::Incomplete));
                    }
                }
                if !matches!(frame, Frame::Inline(_)) {
                    let mut out = BytesMut::new();
                    frame.encode(&mut out);
                    let (again, m) = Frame::parse_with(&out, &limits).expect("an encoded frame parses");
                    assert_eq!(again, frame);
                    assert_eq!(m, out.len());
                }
                let _ = frame.into_args();
                pos += n;
            }
            Err(FrameError::Incomplete) | Err(FrameError::Invalid(_)) => break,
        }
    }
});
