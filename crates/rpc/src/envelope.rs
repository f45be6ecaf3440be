//! The JSON-RPC 2.0 envelope of an HTTP request, checked the way geth checks it, before
//! jsonrpsee dispatches the calls.
//!
//! jsonrpsee answers some envelopes differently from the spec and from geth (an object
//! or array `id` is taken for a notification and answered with `null`; valid JSON that
//! is no request object is a parse error; a batch over the limit is -32010; it cannot
//! echo an `id` such as `-1` or `1.5`). [`plan`] looks at the whole body first:
//!
//! | body | answer |
//! |---|---|
//! | not JSON | -32700 `parse error`, id `null` |
//! | `[]` | -32600 `empty batch` |
//! | a batch of more than `max_batch` entries | `[{-32600 "batch too large"}]` with the id of its first call |
//! | an entry that is no object, or has an object/array `id` | -32600 `invalid request`, id `null` |
//! | an entry without `"jsonrpc":"2.0"` or without a string `method` | -32600 `invalid request`, its id |
//! | an entry without `id` (a notification) | nothing (it is still executed) |
//!
//! Valid calls go to jsonrpsee; a body without calls (only notifications) is answered
//! with an empty body, as geth does. Entries are only borrowed from the body (never
//! copied or decoded into values), and a batch is counted before anything is kept for
//! its entries, so a request costs at most a small multiple of its size.

use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::fmt;

/// Invalid JSON (-32700).
pub const PARSE_ERROR: i32 = -32700;
/// Not a valid request object (-32600).
pub const INVALID_REQUEST: i32 = -32600;

/// What to do with an HTTP JSON-RPC body.
#[derive(Debug, PartialEq, Eq)]
pub enum Plan {
    /// Hand the body to jsonrpsee as it is and return its answer.
    Forward,
    /// Hand the body to jsonrpsee (its notifications are executed) and answer with an
    /// empty body.
    ForwardSilently,
    /// Answer with this body; nothing to execute.
    Answer(String),
    /// Hand `body` to jsonrpsee and repair its answer with `fix`.
    Rewrite { body: String, fix: Fix },
}

/// How to turn jsonrpsee's answer to a rewritten body into the answer to the original.
#[derive(Debug, PartialEq, Eq)]
pub enum Fix {
    /// One call, sent with id 0 because jsonrpsee cannot carry its id: put it back.
    Id(String),
    /// A batch whose calls were sent with their position as id.
    Batch(Vec<Slot>),
}

/// One entry of a batch, in the original order.
#[derive(Debug, PartialEq, Eq)]
pub enum Slot {
    /// A call forwarded with its position as id; answer with the original `id`.
    Call { id: String },
    /// Answered here (an invalid entry).
    Answered(String),
    /// A notification: forwarded, never answered.
    Notification,
}

/// An entry of a request as it is on the wire.
#[derive(Debug, Default, Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<&'a RawValue>,
    /// `None`: absent; `Some("null")`: present and null.
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    params: Option<&'a RawValue>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// What one entry is.
#[derive(Debug)]
enum Entry<'a> {
    Call {
        id: &'a RawValue,
        method: &'a RawValue,
        params: Option<&'a RawValue>,
    },
    Notification,
    Invalid {
        id: Option<&'a RawValue>,
    },
}

fn first_byte(raw: &RawValue) -> Option<u8> {
    raw.get().as_bytes().first().copied()
}

fn classify(raw: &RawValue) -> Entry<'_> {
    if first_byte(raw) != Some(b'{') {
        return Entry::Invalid { id: None };
    }
    // Every field is kept raw, so only a duplicate key can fail here.
    let Ok(env) = serde_json::from_str::<Envelope<'_>>(raw.get()) else {
        return Entry::Invalid { id: None };
    };
    if env
        .id
        .and_then(first_byte)
        .is_some_and(|b| b == b'{' || b == b'[')
    {
        return Entry::Invalid { id: None };
    }
    let version_ok = env.jsonrpc.is_some_and(|v| v.get() == "\"2.0\"");
    match (version_ok, env.method) {
        (true, Some(method)) if first_byte(method) == Some(b'"') => match env.id {
            Some(id) => Entry::Call {
                id,
                method,
                params: env.params,
            },
            None => Entry::Notification,
        },
        _ => Entry::Invalid { id: env.id },
    }
}

/// Whether jsonrpsee can echo `id` exactly: `null`, a string without escapes, or an
/// integer in `u64` without sign, fraction or exponent.
fn id_passes(id: &RawValue) -> bool {
    let text = id.get();
    match text.as_bytes().first() {
        Some(b'n') => true,
        Some(b'"') => !text.contains('\\'),
        Some(b'0'..=b'9') => {
            text.bytes().all(|b| b.is_ascii_digit())
                && (text == "0" || !text.starts_with('0'))
                && text.parse::<u64>().is_ok()
        }
        _ => false,
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: i32,
    message: &'a str,
}

/// `{"jsonrpc":"2.0","id":…,"error":{…}}` for an id as it was sent (`None`: null).
pub fn error_json(id: Option<&RawValue>, code: i32, message: &str) -> String {
    let error = serde_json::to_string(&ErrorBody { code, message })
        .unwrap_or_else(|_| format!("{{\"code\":{code},\"message\":\"error\"}}"));
    let id = id.map_or("null", RawValue::get);
    format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"error\":{error}}}")
}

/// The entries of a batch, at most `limit` of them kept; `count` is the total.
struct Entries<'a> {
    kept: Vec<&'a RawValue>,
    count: usize,
}

struct EntriesVisitor {
    limit: usize,
}

impl<'de> Visitor<'de> for EntriesVisitor {
    type Value = Entries<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut kept = Vec::new();
        let mut count = 0usize;
        while count < self.limit {
            match seq.next_element::<&'de RawValue>()? {
                Some(entry) => {
                    kept.push(entry);
                    count = count.saturating_add(1);
                }
                None => return Ok(Entries { kept, count }),
            }
        }
        // Over the limit: count the rest without keeping anything.
        while seq.next_element::<IgnoredAny>()?.is_some() {
            count = count.saturating_add(1);
        }
        Ok(Entries { kept, count })
    }
}

fn batch_entries(body: &str, limit: usize) -> Result<Entries<'_>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(body);
    let entries = de.deserialize_seq(EntriesVisitor {
        limit: limit.saturating_add(1),
    })?;
    de.end()?;
    Ok(entries)
}

/// Decides what to do with `body` (an HTTP POST body with a JSON content type).
pub fn plan(body: &[u8], max_batch: usize) -> Plan {
    let parse_error = || Plan::Answer(error_json(None, PARSE_ERROR, "parse error"));
    let Ok(text) = std::str::from_utf8(body) else {
        return parse_error();
    };
    // Validates the whole body as JSON without keeping anything of it.
    let Ok(root) = serde_json::from_str::<&RawValue>(text) else {
        return parse_error();
    };
    if first_byte(root) != Some(b'[') {
        return match classify(root) {
            Entry::Invalid { id } => {
                Plan::Answer(error_json(id, INVALID_REQUEST, "invalid request"))
            }
            Entry::Notification => Plan::ForwardSilently,
            Entry::Call { id, .. } if id_passes(id) => Plan::Forward,
            Entry::Call { id, method, params } => Plan::Rewrite {
                body: call_json(0, method, params),
                fix: Fix::Id(id.get().to_string()),
            },
        };
    }
    let Ok(entries) = batch_entries(root.get(), max_batch) else {
        return parse_error();
    };
    if entries.count == 0 {
        return Plan::Answer(error_json(None, INVALID_REQUEST, "empty batch"));
    }
    let classified: Vec<Entry<'_>> = entries.kept.iter().map(|e| classify(e)).collect();
    if entries.count > max_batch {
        // Like geth: one error, in an array, carrying the id of the first call.
        let first_call = classified.iter().find_map(|e| match e {
            Entry::Call { id, .. } => Some(*id),
            _ => None,
        });
        let error = error_json(first_call, INVALID_REQUEST, "batch too large");
        return Plan::Answer(format!("[{error}]"));
    }
    let calls = classified
        .iter()
        .filter(|e| matches!(e, Entry::Call { .. }))
        .count();
    let clean = classified.iter().all(|e| match e {
        Entry::Call { id, .. } => id_passes(id),
        Entry::Notification => true,
        Entry::Invalid { .. } => false,
    });
    if clean {
        return if calls == 0 {
            Plan::ForwardSilently
        } else {
            Plan::Forward
        };
    }
    let mut forwarded = Vec::new();
    let mut slots = Vec::with_capacity(classified.len());
    for (position, (entry, raw)) in classified.iter().zip(&entries.kept).enumerate() {
        match entry {
            Entry::Call { id, method, params } => {
                forwarded.push(call_json(position, method, *params));
                slots.push(Slot::Call {
                    id: id.get().to_string(),
                });
            }
            Entry::Notification => {
                forwarded.push(raw.get().to_string());
                slots.push(Slot::Notification);
            }
            Entry::Invalid { id } => slots.push(Slot::Answered(error_json(
                *id,
                INVALID_REQUEST,
                "invalid request",
            ))),
        }
    }
    if forwarded.is_empty() {
        return Plan::Answer(merge_batch(&slots, &[]));
    }
    Plan::Rewrite {
        body: format!("[{}]", forwarded.join(",")),
        fix: Fix::Batch(slots),
    }
}

fn call_json(id: usize, method: &RawValue, params: Option<&RawValue>) -> String {
    let method = method.get();
    match params {
        Some(params) => format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":{method},\"params\":{}}}",
            params.get()
        ),
        None => format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":{method}}}"),
    }
}

/// A response as jsonrpsee writes it, borrowed.
#[derive(Deserialize)]
struct Response<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    error: Option<&'a RawValue>,
}

/// `response` with its id replaced by `id` (raw JSON); `None` if it is not a response.
fn with_id(response: &Response<'_>, id: &str) -> Option<String> {
    match (response.result, response.error) {
        (Some(result), None) => Some(format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{}}}",
            result.get()
        )),
        (None, Some(error)) => Some(format!(
            "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"error\":{}}}",
            error.get()
        )),
        _ => None,
    }
}

/// The answer to the original request, from jsonrpsee's answer to the rewritten one.
/// `None`: answer with an empty body.
pub fn repair(fix: &Fix, answer: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(answer).ok()?.trim();
    match fix {
        Fix::Id(id) => {
            let fixed = serde_json::from_str::<Response<'_>>(text)
                .ok()
                .and_then(|r| with_id(&r, id));
            Some(fixed.unwrap_or_else(|| text.to_string()))
        }
        Fix::Batch(slots) => {
            if text.is_empty() || text == "null" {
                return Some(merge_batch(slots, &[])).filter(|s| s != "[]");
            }
            // Anything but an array (e.g. "response too big") is the whole answer.
            let Ok(responses) = serde_json::from_str::<Vec<Response<'_>>>(text) else {
                return Some(text.to_string());
            };
            let merged = merge_batch(slots, &responses);
            Some(merged).filter(|s| s != "[]")
        }
    }
}

fn merge_batch(slots: &[Slot], responses: &[Response<'_>]) -> String {
    let by_position = |position: usize| {
        responses
            .iter()
            .find(|r| r.id.and_then(|id| id.get().parse::<usize>().ok()) == Some(position))
    };
    let mut out = Vec::with_capacity(slots.len());
    for (position, slot) in slots.iter().enumerate() {
        match slot {
            Slot::Call { id } => {
                let answer = by_position(position).and_then(|r| with_id(r, id));
                out.push(answer.unwrap_or_else(|| {
                    let id = RawValue::from_string(id.clone()).ok();
                    error_json(id.as_deref(), -32603, "internal error: no response")
                }));
            }
            Slot::Answered(error) => out.push(error.clone()),
            Slot::Notification => {}
        }
    }
    format!("[{}]", out.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn answer(body: &str) -> Value {
        match plan(body.as_bytes(), 10) {
            Plan::Answer(a) => serde_json::from_str(&a).unwrap(),
            other => panic!("{body}: expected an answer, got {other:?}"),
        }
    }

    fn error(code: i64, message: &str, id: Value) -> Value {
        json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
    }

    #[test]
    fn malformed_json_is_a_parse_error() {
        for body in [
            "",
            "{",
            "{\"jsonrpc\":\"2.0\",,}",
            "\u{0}",
            "[1,]",
            "{} {}",
            "nul",
        ] {
            assert_eq!(
                answer(body),
                error(-32700, "parse error", Value::Null),
                "{body:?}"
            );
        }
        assert_eq!(
            plan(&[0xff, 0xfe], 10),
            Plan::Answer(error_json(None, PARSE_ERROR, "parse error"))
        );
    }

    #[test]
    fn valid_json_that_is_no_request_is_an_invalid_request() {
        for body in ["1", "null", "{}", "\"x\"", "true", "{\"id\":1}"] {
            let expected_id = if body == "{\"id\":1}" {
                json!(1)
            } else {
                Value::Null
            };
            assert_eq!(
                answer(body),
                error(-32600, "invalid request", expected_id),
                "{body}"
            );
        }
        // No version, wrong version, a method that is no string: the id is echoed.
        for body in [
            r#"{"id":7,"method":"eth_chainId"}"#,
            r#"{"jsonrpc":"1.0","id":7,"method":"eth_chainId"}"#,
            r#"{"jsonrpc":"2.0","id":7,"method":123}"#,
            r#"{"jsonrpc":"2.0","id":7}"#,
        ] {
            assert_eq!(
                answer(body),
                error(-32600, "invalid request", json!(7)),
                "{body}"
            );
        }
    }

    #[test]
    fn object_or_array_ids_are_invalid_requests_with_null_id() {
        for body in [
            r#"{"jsonrpc":"2.0","id":{"a":1},"method":"eth_chainId"}"#,
            r#"{"jsonrpc":"2.0","id":[1],"method":"eth_chainId"}"#,
        ] {
            assert_eq!(answer(body), error(-32600, "invalid request", Value::Null));
        }
    }

    #[test]
    fn calls_and_notifications() {
        let call = r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#;
        assert_eq!(plan(call.as_bytes(), 10), Plan::Forward);
        for id in ["null", "\"abc\"", "0", "18446744073709551615"] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"m"}}"#);
            assert_eq!(plan(body.as_bytes(), 10), Plan::Forward, "{id}");
        }
        let notification = r#"{"jsonrpc":"2.0","method":"eth_chainId"}"#;
        assert_eq!(plan(notification.as_bytes(), 10), Plan::ForwardSilently);
        let notifications = format!("[{notification},{notification}]");
        assert_eq!(plan(notifications.as_bytes(), 10), Plan::ForwardSilently);
        let mixed = format!("[{call},{notification}]");
        assert_eq!(plan(mixed.as_bytes(), 10), Plan::Forward);
    }

    #[test]
    fn ids_jsonrpsee_cannot_carry_are_restored() {
        for id in [
            "-1",
            "1.5",
            "1e3",
            "18446744073709551616",
            "\"a\\u0041\"",
            "01",
        ] {
            let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"eth_chainId"}}"#);
            let Plan::Rewrite { body: sent, fix } = plan(body.as_bytes(), 10) else {
                // "01" is not JSON at all.
                assert_eq!(id, "01");
                continue;
            };
            assert_eq!(sent, r#"{"jsonrpc":"2.0","id":0,"method":"eth_chainId"}"#);
            let fixed = repair(&fix, br#"{"jsonrpc":"2.0","id":0,"result":"0xa5b8"}"#).unwrap();
            assert_eq!(
                fixed,
                format!(r#"{{"jsonrpc":"2.0","id":{id},"result":"0xa5b8"}}"#)
            );
            let fixed = repair(&fix, br#"{"jsonrpc":"2.0","id":0,"result":null}"#).unwrap();
            assert_eq!(
                fixed,
                format!(r#"{{"jsonrpc":"2.0","id":{id},"result":null}}"#)
            );
        }
    }

    #[test]
    fn batches() {
        assert_eq!(answer("[]"), error(-32600, "empty batch", Value::Null));
        assert_eq!(answer(" [ ] "), error(-32600, "empty batch", Value::Null));
        let body = r#"[1, {"jsonrpc":"2.0","id":{"x":1},"method":"a"},
            {"jsonrpc":"2.0","id":"keep","method":"a","params":[1]},
            {"jsonrpc":"2.0","method":"notify"},
            {"jsonrpc":"2.0","id":-5,"method":"b"}]"#;
        let Plan::Rewrite { body: sent, fix } = plan(body.as_bytes(), 10) else {
            panic!("expected a rewrite");
        };
        let sent: Value = serde_json::from_str(&sent).unwrap();
        assert_eq!(
            sent,
            json!([
                {"jsonrpc": "2.0", "id": 2, "method": "a", "params": [1]},
                {"jsonrpc": "2.0", "method": "notify"},
                {"jsonrpc": "2.0", "id": 4, "method": "b"},
            ])
        );
        // jsonrpsee may answer in any order.
        let reply = br#"[{"jsonrpc":"2.0","id":4,"error":{"code":-32601,"message":"m"}},
                          {"jsonrpc":"2.0","id":2,"result":"0x1"}]"#;
        let fixed: Value = serde_json::from_str(&repair(&fix, reply).unwrap()).unwrap();
        assert_eq!(
            fixed,
            json!([
                error(-32600, "invalid request", Value::Null),
                error(-32600, "invalid request", Value::Null),
                {"jsonrpc": "2.0", "id": "keep", "result": "0x1"},
                {"jsonrpc": "2.0", "id": -5, "error": {"code": -32601, "message": "m"}},
            ])
        );
        // Only invalid entries: answered here.
        assert_eq!(
            answer("[1, 2]"),
            json!([
                error(-32600, "invalid request", Value::Null),
                error(-32600, "invalid request", Value::Null)
            ])
        );
        // Invalid entries and notifications: the notifications run, the errors answer.
        let body = r#"[1, {"jsonrpc":"2.0","method":"notify"}]"#;
        let Plan::Rewrite { fix, .. } = plan(body.as_bytes(), 10) else {
            panic!("expected a rewrite");
        };
        let fixed: Value = serde_json::from_str(&repair(&fix, b"null").unwrap()).unwrap();
        assert_eq!(
            fixed,
            json!([error(-32600, "invalid request", Value::Null)])
        );
    }

    #[test]
    fn a_batch_over_the_limit_is_refused_with_the_first_call_id() {
        let call = |id: usize| format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"eth_chainId"}}"#);
        let ok: Vec<String> = (0..10).map(call).collect();
        assert_eq!(
            plan(format!("[{}]", ok.join(",")).as_bytes(), 10),
            Plan::Forward
        );
        let mut over: Vec<String> = vec!["1".into(), r#"{"jsonrpc":"2.0","method":"n"}"#.into()];
        over.extend((7..100).map(call));
        assert_eq!(
            answer(&format!("[{}]", over.join(","))),
            json!([error(-32600, "batch too large", json!(7))])
        );
        // A huge batch of tiny entries is counted, not collected.
        let huge = format!("[{}1]", "1,".repeat(1_000_000));
        assert_eq!(
            answer(&huge),
            json!([error(-32600, "batch too large", Value::Null)])
        );
    }

    #[test]
    fn deep_nesting_is_answered_without_recursing() {
        // Skipping a value is iterative in serde_json: a deep array is a batch of one
        // entry that is no request, a deep id is no valid id.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            answer(&deep),
            json!([error(-32600, "invalid request", Value::Null)])
        );
        let deep_id = format!(
            r#"{{"jsonrpc":"2.0","id":{}{},"method":"m"}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert_eq!(
            answer(&deep_id),
            error(-32600, "invalid request", Value::Null)
        );
        let unbalanced = "[".repeat(100_000);
        assert_eq!(
            answer(&unbalanced),
            error(-32700, "parse error", Value::Null)
        );
        let shallow = format!("[{}{}]", "[".repeat(50), "]".repeat(50));
        assert_eq!(
            answer(&shallow),
            json!([error(-32600, "invalid request", Value::Null)])
        );
    }
}
