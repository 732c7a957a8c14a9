use super::*;

fn bulk_args(args: &[&[u8]]) -> Vec<u8> {
    let mut out = BytesMut::new();
    Frame::Array(args.iter().map(|a| Frame::Bulk(a.to_vec())).collect()).encode(&mut out);
    out.to_vec()
}

fn err(buf: &[u8]) -> String {
    match Frame::parse(buf) {
        Err(FrameError::Invalid(m)) => m,
        other => panic!("expected a protocol error for {buf:?}, got {other:?}"),
    }
}

#[test]
fn parses_a_command_array() {
    let b = bulk_args(&[b"SET", b"k", b"v\r\nwith crlf"]);
    let (f, n) = Frame::parse(&b).unwrap();
    assert_eq!(n, b.len());
    assert_eq!(
        f.into_args().unwrap(),
        vec![b"SET".to_vec(), b"k".to_vec(), b"v\r\nwith crlf".to_vec()]
    );
}

#[test]
fn incomplete_at_every_split_point() {
    let mut b = bulk_args(&[b"MSET", b"a", b"1", b"", b"binary\x00\xff"]);
    b.extend_from_slice(b":-42\r\n+OK\r\n$-1\r\n*0\r\n");
    let mut whole = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        let (f, n) = Frame::parse(&b[pos..]).unwrap();
        for cut in 0..n {
            assert_eq!(
                Frame::parse(&b[pos..pos + cut]),
                Err(FrameError::Incomplete),
                "cut at {cut} of {n}"
            );
        }
        whole.push(f);
        pos += n;
    }
    assert_eq!(whole.len(), 5);
    assert_eq!(whole[1], Frame::Integer(-42));
    assert_eq!(whole[2], Frame::Simple("OK".into()));
    assert_eq!(whole[3], Frame::Null);
    assert_eq!(whole[4], Frame::Array(vec![]));
}

#[test]
fn pipelined_frames_parse_one_at_a_time() {
    let mut b = bulk_args(&[b"PING"]);
    b.extend(bulk_args(&[b"GET", b"k"]));
    let (f1, n1) = Frame::parse(&b).unwrap();
    let (f2, n2) = Frame::parse(&b[n1..]).unwrap();
    assert_eq!(f1.into_args().unwrap(), vec![b"PING".to_vec()]);
    assert_eq!(f2.into_args().unwrap(), vec![b"GET".to_vec(), b"k".to_vec()]);
    assert_eq!(n1 + n2, b.len());
}

#[test]
fn inline_commands() {
    let (f, n) = Frame::parse(b"SET k \"a b\\n\\x41\" 'it\\'s'\r\nrest").unwrap();
    assert_eq!(n, 27);
    assert_eq!(
        f.into_args().unwrap(),
        vec![b"SET".to_vec(), b"k".to_vec(), b"a b\nA".to_vec(), b"it's".to_vec()]
    );
    let (f, _) = Frame::parse(b"PING\n").unwrap();
    assert_eq!(f, Frame::Inline(vec![b"PING".to_vec()]));
    let (f, _) = Frame::parse(b"   \r\n").unwrap();
    assert_eq!(f, Frame::Inline(vec![]));
    assert_eq!(Frame::parse(b"GET k"), Err(FrameError::Incomplete));
    assert!(err(b"SET k \"open\r\n").contains("unbalanced quotes"));
    assert!(err(b"SET k \"a\"b\r\n").contains("closing quote"));
}

#[test]
fn invalid_frames() {
    assert!(err(b"*x\r\n").contains("invalid multibulk length"));
    assert!(err(b"*-5\r\n").contains("invalid multibulk length"));
    assert!(err(b"$abc\r\n").contains("invalid bulk length"));
    assert!(err(b"$-2\r\n").contains("invalid bulk length"));
    assert!(err(b"$3\r\nabcXY").contains("CRLF"));
    assert!(err(b":12\n").contains("CRLF"));
    assert!(err(b"*1\r\n%3\r\n").contains("expected a RESP type byte"));
    assert!(err(b"+\xff\r\n").contains("UTF-8"));
    assert!(Frame::Integer(1).into_args().is_err());
    assert!(Frame::Array(vec![Frame::Array(vec![])]).into_args().is_err());
}

#[test]
fn size_limits_apply_before_the_data_arrives() {
    let l = Limits {
        max_bulk: 10,
        max_array: 3,
        max_inline: 16,
        max_depth: 2,
    };
    let parse = |b: &[u8]| Frame::parse_with(b, &l);
    // The header alone is enough to refuse: nothing is waited for or allocated.
    assert!(matches!(parse(b"$11\r\n"), Err(FrameError::Invalid(m)) if m.contains("bulk length 11")));
    assert!(parse(b"$10\r\n0123456789\r\n").is_ok());
    assert!(matches!(parse(b"*4\r\n"), Err(FrameError::Invalid(m)) if m.contains("multibulk length 4")));
    assert!(matches!(parse(b"*1\r\n*1\r\n*1\r\n"), Err(FrameError::Invalid(m)) if m.contains("nested")));
    assert!(
        matches!(parse(b"GET aaaaaaaaaaaaaaaaaaaaaa"), Err(FrameError::Invalid(m)) if m.contains("too big inline"))
    );
    assert_eq!(parse(b"GET aaaaaaa"), Err(FrameError::Incomplete));
    assert!(matches!(
        parse(b"$99999999999999999999999999999999999"),
        Err(FrameError::Invalid(_))
    ));
    assert!(matches!(Frame::parse(b"*99999999999\r\n"), Err(FrameError::Invalid(_))));
    assert!(matches!(
        Frame::parse(b"$999999999999\r\n"),
        Err(FrameError::Invalid(_))
    ));
}

#[test]
fn encode_round_trips() {
    let f = Frame::Array(vec![
        Frame::Simple("OK".into()),
        Frame::Error("ERR x".into()),
        Frame::Integer(i64::MIN),
        Frame::Integer(0),
        Frame::Bulk(vec![0, 1, 2]),
        Frame::Null,
        Frame::Array(vec![Frame::Integer(7)]),
    ]);
    let mut out = BytesMut::new();
    f.encode(&mut out);
    assert_eq!(Frame::parse(&out).unwrap(), (f, out.len()));
}

/// A deterministic smoke version of `fuzz/fuzz_targets/resp_frame.rs`:
/// mutated valid frames never panic the parser, never make it claim bytes
/// it was not given, and every proper prefix of an accepted frame is
/// `Incomplete`.
#[test]
fn mutated_frames_keep_the_parser_contract() {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let seeds: Vec<Vec<u8>> = vec![
        bulk_args(&[b"SET", b"key", b"value"]),
        b"*2\r\n*1\r\n:5\r\n$-1\r\n".to_vec(),
        b"PING \"a\\x41\" 'b'\r\n".to_vec(),
        b"+OK\r\n-ERR x\r\n:12\r\n".to_vec(),
    ];
    let limits = Limits {
        max_bulk: 64,
        max_array: 8,
        max_inline: 32,
        max_depth: 3,
    };
    for i in 0..20_000 {
        let mut b = seeds[i % seeds.len()].clone();
        for _ in 0..(rand() % 4) {
            let pos = (rand() as usize) % b.len();
            match rand() % 3 {
                0 => b[pos] = rand() as u8,
                1 => b.insert(pos, b"\r\n*$:-+0123456789"[(rand() % 17) as usize]),
                _ => {
                    b.remove(pos);
                }
            }
            if b.is_empty() {
                b.push(b'*');
            }
        }
        if let Ok((f, n)) = Frame::parse_with(&b, &limits) {
            assert!(n > 0 && n <= b.len());
            for cut in 0..n {
                assert_eq!(
                    Frame::parse_with(&b[..cut], &limits),
                    Err(FrameError::Incomplete),
                    "{b:?} cut {cut}"
                );
            }
            if !matches!(f, Frame::Inline(_)) {
                let mut out = BytesMut::new();
                f.encode(&mut out);
                assert_eq!(Frame::parse_with(&out, &limits), Ok((f, out.len())));
            }
        }
    }
}
