//! Unit tests of WebSocket request decoding.

use super::*;

const LIMITS: Limits = Limits {
    max_message_bytes: 1000,
    max_key_bytes: 8,
    max_value_bytes: 32,
    max_json_depth: 4,
};

fn code(text: &str) -> &'static str {
    match parse_object(text, &LIMITS) {
        Err(e) => e.code,
        Ok(m) => decode(&m, &LIMITS).1.err().map_or("ok", |e| e.code),
    }
}

#[test]
fn subscribe_takes_an_integer_key_as_get_does() {
    let m = parse_object(r#"{"type":"subscribe","store":"n","key":42}"#, &LIMITS).unwrap();
    match decode(&m, &LIMITS).1.unwrap() {
        Request::Subscribe { filter, .. } => assert_eq!(filter.key.as_deref(), Some("42")),
        other => panic!("{other:?}"),
    }
    assert_eq!(code(r#"{"type":"subscribe","key":4.5}"#), "invalid_field");
}

#[test]
fn bad_messages_get_named_codes() {
    assert_eq!(code("nope"), "invalid_json");
    assert_eq!(code("[1]"), "invalid_message");
    assert_eq!(code(r#"{"key":"a"}"#), "missing_field");
    assert_eq!(code(r#"{"type":"fly"}"#), "unknown_type");
    assert_eq!(code(r#"{"type":"get"}"#), "missing_field");
    assert_eq!(code(r#"{"type":"get","key":[1]}"#), "invalid_field");
    assert_eq!(code(r#"{"type":"get","key":"123456789"}"#), "key_too_large");
    assert_eq!(code(r#"{"type":"set","key":"a"}"#), "missing_field");
    assert_eq!(
        code(r#"{"type":"set","key":"a","value":"0123456789012345678901234567890123"}"#),
        "value_too_large"
    );
    assert_eq!(code(r#"{"type":"set","key":"a","value":[[[[1]]]]}"#), "too_deep");
    assert_eq!(
        code(&format!(r#"{{"type":"set","key":"a","value":"{}"}}"#, "x".repeat(1000))),
        "message_too_large"
    );
    assert_eq!(code(r#"{"type":"set","key":"a","value":1,"ttl":-1}"#), "invalid_field");
    assert_eq!(
        code(r#"{"type":"batch","ops":[{"op":"fly","key":"a"}]}"#),
        "invalid_field"
    );
    assert_eq!(code(r#"{"type":"store_content"}"#), "missing_field");
    assert_eq!(
        code(r#"{"type":"store_content","content_base64":"!!"}"#),
        "invalid_field"
    );
}

#[test]
fn decodes_set_with_options_and_null_value() {
    let m = parse_object(
        r#"{"type":"set","id":7,"key":"k","value":null,"ttl":1.5,"if_absent":true}"#,
        &LIMITS,
    )
    .unwrap();
    let (id, req) = decode(&m, &LIMITS);
    assert_eq!(id, Some(serde_json::json!(7)));
    let Request::Put {
        verb,
        store,
        value,
        options,
        ..
    } = req.unwrap()
    else {
        panic!("not a put")
    };
    assert_eq!(
        (verb, store.as_str(), value),
        (PutVerb::Set, "default", Value::Json(Json::Null))
    );
    assert_eq!(options.ttl, Some(std::time::Duration::from_millis(1500)));
    assert!(options.if_absent);
}
