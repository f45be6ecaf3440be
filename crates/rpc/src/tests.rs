//! The server end to end over HTTP: a real node database, the real middleware stack.

use crate::{ApiConfig, FilterStore, RpcState, ServerSettings};
use koma_primitives::ChainSpec;
use koma_storage::Database;
use koma_txpool::{PoolConfig, TxPool};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast;

fn state(dir: &tempfile::TempDir) -> Arc<RpcState> {
    let spec = Arc::new(ChainSpec::devnet());
    let db = Database::open(dir.path(), &spec).unwrap();
    Arc::new(RpcState {
        pool: Arc::new(TxPool::new(PoolConfig {
            chain_id: spec.chain_id,
            ..PoolConfig::default()
        })),
        admission: koma_txpool::Admission::start(&Default::default()).unwrap(),
        spec,
        db,
        events: broadcast::channel(16).0,
        filters: FilterStore::default(),
        config: ApiConfig::default(),
        network: None,
        consensus: None,
        finalized: broadcast::channel(16).0,
        checkpoints: None,
        checkpoint_trees: Default::default(),
        deposits: None,
        producers: None,
    })
}

struct Server {
    addr: SocketAddr,
    _handle: jsonrpsee::server::ServerHandle,
    _dir: tempfile::TempDir,
}

async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let settings = ServerSettings {
        addr: "127.0.0.1:0".parse().unwrap(),
        max_batch: 10,
        ..ServerSettings::default()
    };
    let (addr, handle) = crate::start(state(&dir), &settings).await.unwrap();
    Server {
        addr,
        _handle: handle,
        _dir: dir,
    }
}

/// POSTs `body` and returns the status and the body.
async fn post(addr: SocketAddr, body: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

async fn post_json(addr: SocketAddr, body: &str) -> Value {
    let (status, body) = post(addr, body).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body:?}"))
}

fn call(method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string()
}

fn error(code: i64, message: &str, id: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

#[test]
fn every_method_has_its_parameter_count() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir);
    let module = crate::module(state).unwrap();
    for name in module.method_names() {
        assert!(
            crate::middleware::max_params(name).is_some(),
            "{name} is missing from middleware::max_params"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_envelope_is_checked_like_geth() {
    let s = server().await;
    let chain_id = format!("{:#x}", ChainSpec::devnet().chain_id);
    for body in ["1", "null", "{}", "\"x\""] {
        assert_eq!(
            post_json(s.addr, body).await,
            error(-32600, "invalid request", Value::Null),
            "{body}"
        );
    }
    assert_eq!(
        post_json(s.addr, "{\"jsonrpc\":").await,
        error(-32700, "parse error", Value::Null)
    );
    let object_id = r#"{"jsonrpc":"2.0","id":{"a":1},"method":"eth_chainId"}"#;
    assert_eq!(
        post_json(s.addr, object_id).await,
        error(-32600, "invalid request", Value::Null)
    );
    // A notification is answered with an empty body.
    let (status, body) = post(s.addr, r#"{"jsonrpc":"2.0","method":"eth_chainId"}"#).await;
    assert_eq!((status, body.as_str()), (200, ""));
    // Ids jsonrpsee cannot carry are echoed as sent.
    for id in ["-1", "1.5", "1e2", "\"a\\u0041\""] {
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"eth_chainId"}}"#);
        let (_, answer) = post(s.addr, &body).await;
        assert_eq!(
            answer,
            format!(r#"{{"jsonrpc":"2.0","id":{id},"result":"{chain_id}"}}"#)
        );
    }
    // Surplus parameters, and an unknown method.
    assert_eq!(
        post_json(s.addr, &call("eth_chainId", json!([1]))).await,
        error(-32602, "too many arguments, want at most 0", json!(1))
    );
    assert_eq!(
        post_json(s.addr, &call("eth_nope", json!([]))).await,
        error(
            -32601,
            "the method eth_nope does not exist/is not available",
            json!(1)
        )
    );
    // Batches: over the limit, and mixed.
    let big: Vec<Value> = (0..11)
        .map(|i| json!({"jsonrpc": "2.0", "id": i + 3, "method": "eth_chainId"}))
        .collect();
    assert_eq!(
        post_json(s.addr, &Value::Array(big).to_string()).await,
        json!([error(-32600, "batch too large", json!(3))])
    );
    let mixed = json!([
        {"jsonrpc": "2.0", "id": -1, "method": "eth_chainId"},
        {"jsonrpc": "2.0", "method": "eth_chainId"},
        7,
        {"jsonrpc": "2.0", "id": 2, "method": "eth_chainId", "params": [1]},
    ]);
    assert_eq!(
        post_json(s.addr, &mixed.to_string()).await,
        json!([
            {"jsonrpc": "2.0", "id": -1, "result": chain_id},
            error(-32600, "invalid request", Value::Null),
            error(-32602, "too many arguments, want at most 0", json!(2)),
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_sizes_are_bounded() {
    let s = server().await;
    let percentiles = vec![50.0; 200_000];
    let answer = post_json(
        s.addr,
        &call("eth_feeHistory", json!(["0x400", "latest", percentiles])),
    )
    .await;
    assert_eq!(
        answer,
        error(
            -32602,
            "invalid reward percentile: over the query limit 100",
            json!(1)
        )
    );
    let answer = post_json(
        s.addr,
        &call("eth_feeHistory", json!(["0x400", "latest", [10, 90]])),
    )
    .await;
    assert_eq!(
        answer["result"]["reward"],
        json!([["0x3b9aca00", "0x3b9aca00"]])
    );
    let addresses: Vec<String> = (0..100_000).map(|i| format!("{:#042x}", i + 1)).collect();
    for method in ["eth_newFilter", "eth_getLogs"] {
        let answer = post_json(s.addr, &call(method, json!([{"address": addresses}]))).await;
        assert_eq!(answer, error(-32602, "exceed max addresses", json!(1)));
    }
    let answer = post_json(s.addr, &call("eth_sendRawTransaction", json!(["0xc0"]))).await;
    assert_eq!(
        answer,
        error(-32602, "rlp: too few elements for types.LegacyTx", json!(1))
    );
    // State reads still answer.
    let answer = post_json(
        s.addr,
        &call(
            "eth_getBalance",
            json!(["0x0000000000000000000000000000000000000000", "latest"]),
        ),
    )
    .await;
    assert!(answer["result"].is_string(), "{answer}");
}
