"""JSON-RPC 2.0 framing over HTTP: error codes, batches, and a flood of bad requests the
node must survive."""

import http.client
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

import requests
from eth_account import Account

from devnode import CHAIN_ID, IS_KOMA
from ethutil import RawRpc

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
ZERO = "0x0000000000000000000000000000000000000000"


def test_malformed_json(raw):
    for body in ('{"jsonrpc":"2.0","id":1,"method":', "{not json}", "\x00\xff", '{"jsonrpc":"2.0",,}'):
        resp = raw.post(body)
        err = resp.json()["error"]
        # geth: -32700 "parse error"; anvil says -32600
        assert err["code"] == (PARSE_ERROR if IS_KOMA else INVALID_REQUEST), (body, err)
        assert err["message"]


def test_invalid_request(raw):
    for body in ({"jsonrpc": "2.0", "id": 1}, {"jsonrpc": "2.0", "id": 1, "method": 123}):
        resp = raw.post(json.dumps(body))
        err = resp.json()["error"]
        assert err["code"] == INVALID_REQUEST, (body, err)
    # valid JSON that is no request object: -32600 (the spec and geth)
    for body in ('"just a string"', "42", "null", "{}"):
        err = raw.post(body).json()["error"]
        if IS_KOMA:
            assert (err["code"], err["message"]) == (INVALID_REQUEST, "invalid request"), (body, err)
        else:
            assert err["code"] in (INVALID_REQUEST, PARSE_ERROR), (body, err)


def test_unknown_method(raw):
    for method in ("eth_noSuchMethod", "foo", "debug_shutdownNow", ""):
        resp = raw.request(method, [])
        assert resp["error"]["code"] == METHOD_NOT_FOUND, (method, resp)
        assert resp["id"] == raw._id
        if IS_KOMA:  # geth's text
            assert resp["error"]["message"] == f"the method {method} does not exist/is not available"


def test_wrong_params(raw):
    cases = [
        ("eth_getBalance", ["0xnothex", "latest"]),
        ("eth_getBlockByNumber", []),  # missing
        ("eth_getBlockByNumber", ["latest", "yes"]),  # wrong type
        ("eth_getTransactionByHash", ["0x1234"]),  # wrong length
        ("eth_call", [{"to": 5}, "latest"]),
    ]
    for method, params in cases:
        err = raw.error(method, params)
        assert err["code"] == INVALID_PARAMS, (method, params, err)
    # params as an object where an array is expected
    resp = raw.post({"jsonrpc": "2.0", "id": 9, "method": "eth_getBlockByNumber", "params": {"a": 1}}).json()
    assert resp["error"]["code"] == INVALID_PARAMS


def test_batch(raw):
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": "two", "method": "eth_blockNumber", "params": []},
        {"jsonrpc": "2.0", "id": 3, "method": "eth_noSuchMethod", "params": []},
        {"jsonrpc": "2.0", "id": 4, "method": "eth_getBalance", "params": [ZERO, "latest"]},
        {"jsonrpc": "2.0", "id": 5, "method": "eth_getBalance", "params": ["bad"]},
    ]
    resp = raw.post(batch).json()
    assert isinstance(resp, list) and len(resp) == 5
    by_id = {r["id"]: r for r in resp}
    assert by_id[1]["result"] == hex(CHAIN_ID)
    assert int(by_id["two"]["result"], 16) >= 0
    assert by_id[3]["error"]["code"] == METHOD_NOT_FOUND
    assert "result" in by_id[4]
    assert by_id[5]["error"]["code"] == INVALID_PARAMS

    big = [{"jsonrpc": "2.0", "id": i, "method": "eth_getBalance", "params": [Account.create().address, "latest"]}
           for i in range(100)]
    resp = raw.post(big).json()
    assert sorted(r["id"] for r in resp) == list(range(100))
    assert all(r["result"] == "0x0" for r in resp)

    err = raw.post("[]").json()
    assert err["error"]["code"] == INVALID_REQUEST


def test_id_and_version_echo(raw):
    for rid in (0, 7, "abc", "0x1", 2**53):
        resp = raw.post({"jsonrpc": "2.0", "id": rid, "method": "eth_chainId", "params": []}).json()
        assert resp == {"jsonrpc": "2.0", "id": rid, "result": hex(CHAIN_ID)}
    # params may be omitted for methods without any
    assert raw.post({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}).json()["result"] == hex(CHAIN_ID)


FLOOD = int(os.environ.get("E2E_FLOOD_REQUESTS", "2000"))
FLOOD_SECONDS = 180


def bad_bodies():
    deep = "[" * 10_000 + "]" * 10_000
    return [
        '{"jsonrpc":"2.0","id":1,"method":',
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_nope", "params": []}),
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": ["0xzz", 5]}),
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_sendRawTransaction", "params": ["0x02deadbeef"]}),
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_call",
                    "params": [{"data": "0x" + "ff" * 4096}, "0xffffffffffff"]}),
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [{"topics": [[None] * 50]}]}),
        json.dumps({"jsonrpc": "2.0", "id": deep, "method": "eth_chainId"}),
        deep,
        json.dumps([{"jsonrpc": "2.0", "id": i, "method": "eth_nope"} for i in range(50)]),
        GARBAGE,
    ]


GARBAGE = "x" * 200_000  # not JSON at all, and bigger than one read


def test_flood_of_bad_requests(node, w3, chain):
    bodies = bad_bodies()
    local = threading.local()
    outcomes = {"answered": 0, "failed": []}
    lock = threading.Lock()

    def shoot(i):
        session = getattr(local, "s", None) or requests.Session()
        local.s = session
        body = bodies[i % len(bodies)]
        # (keep-alive after garbage has its own test below)
        post = requests.post if body is GARBAGE else session.post
        try:
            r = post(node.http_url, data=body, timeout=60, headers={"Content-Type": "application/json"})
            with lock:
                outcomes["answered"] += 1
            return r.status_code
        except requests.RequestException as e:
            with lock:
                outcomes["failed"].append(f"body {i % len(bodies)}: {e!r}"[:300])
            return None

    head_before = w3.eth.block_number
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as pool:
        futures = [pool.submit(shoot, i) for i in range(FLOOD)]
        for f in as_completed(futures, timeout=FLOOD_SECONDS):
            f.result()
    elapsed = time.monotonic() - start
    print(f"{FLOOD} bad requests in {elapsed:.1f}s, failures: {len(outcomes['failed'])}")
    assert outcomes["answered"] == FLOOD, outcomes["failed"][:5]

    # still serving, still producing, still accepting transactions
    fresh = RawRpc(node.http_url)
    assert fresh.result("eth_chainId") == hex(CHAIN_ID)
    chain.wait_for_block(max(head_before, w3.eth.block_number) + 1)
    receipt = chain.send(chain.new_account(), {"to": Account.create().address, "value": 1})
    assert receipt["status"] == 1


def test_connection_reusable_after_garbage(node):
    """A keep-alive connection that carried garbage answers the next request, unless
    the server said `Connection: close`: clients reuse pooled connections, and a
    silently dropped one fails the next caller's request (seen under load)."""
    host, port = node.http_url.removeprefix("http://").split(":")
    for body in (GARBAGE, "{" + GARBAGE, '{"jsonrpc":"2.0","id":1,"method":'):
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            conn.request("POST", "/", body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            err = json.loads(resp.read())["error"]
            assert err["code"] in (PARSE_ERROR, INVALID_REQUEST)
            if (resp.getheader("Connection") or "").lower() == "close":
                continue
            ok = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "eth_chainId"})
            conn.request("POST", "/", body=ok, headers={"Content-Type": "application/json"})
            assert json.loads(conn.getresponse().read())["result"] == hex(CHAIN_ID)
        except (ConnectionError, http.client.HTTPException) as e:
            raise AssertionError(f"connection dropped after a {len(body)}-byte garbage body "
                                 f"without `Connection: close`: {e!r}") from e
        finally:
            conn.close()
