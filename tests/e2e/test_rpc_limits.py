"""Bounds on what a client can make the node allocate or compute, JSON-RPC 2.0 envelope
rules (geth's codes and texts), and a flood of heavy requests during which the node must
keep producing blocks with bounded memory.

Texts are compared on koma only; against anvil each case only has to be an error.
Nothing here asserts a duration: on a loaded 2-core machine only progress is certain.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import websockets

from devnode import CHAIN_ID, IS_KOMA, rss_mb
from ethutil import RawRpc

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
ZERO = "0x0000000000000000000000000000000000000000"
TOPIC = "0x" + "ab" * 32
# A request that must be refused may still take a while on a loaded machine; it must
# not take as long as computing the answer would.
REFUSE_TIMEOUT = 60


def addresses(n: int) -> list[str]:
    return ["0x%040x" % (i + 1) for i in range(n)]


def post_json(raw: RawRpc, body, timeout: float = REFUSE_TIMEOUT) -> requests.Response:
    return raw.post(body, timeout=timeout)


def call(method: str, params: list, rid=1) -> dict:
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}


# --- sizes chosen by the client -------------------------------------------------------


def test_fee_history_with_200k_percentiles_is_refused(raw):
    percentiles = [50.0] * 200_000
    resp = post_json(raw, call("eth_feeHistory", ["0x400", "latest", percentiles])).json()
    assert resp["error"]["code"] == INVALID_PARAMS, resp
    if IS_KOMA:
        assert resp["error"]["message"] == "invalid reward percentile: over the query limit 100"


@pytest.mark.koma_only  # anvil does not check percentiles
def test_fee_history_percentile_rules(raw):
    def message(percentiles):
        err = raw.error("eth_feeHistory", ["0x4", "latest", percentiles])
        assert err["code"] == INVALID_PARAMS, err
        return err["message"]

    assert message([101]) == "invalid reward percentile: 101.000000"
    assert message([-1]) == "invalid reward percentile: -1.000000"
    assert message([50, 40]) == "invalid reward percentile: #0:50.000000 > #1:40.000000"
    # 100 is the limit, equal neighbours are allowed, 1,024 blocks at most.
    hist = raw.result("eth_feeHistory", ["0x10000", "latest", list(range(1, 101))])
    assert len(hist["reward"]) == len(hist["gasUsedRatio"]) <= 1024
    assert all(len(r) == 100 for r in hist["reward"])
    assert raw.result("eth_feeHistory", ["0x2", "latest", [25, 25]])["reward"]


def test_filter_with_100k_addresses_is_refused(raw):
    for method in ("eth_newFilter", "eth_getLogs"):
        resp = post_json(raw, call(method, [{"address": addresses(100_000)}])).json()
        assert resp["error"]["code"] == INVALID_PARAMS, (method, str(resp)[:300])
        if IS_KOMA:
            assert resp["error"]["message"] == "exceed max addresses"


@pytest.mark.koma_only  # anvil accepts more topics and alternatives
def test_filter_topic_bounds(raw):
    assert raw.result("eth_getLogs", [{"address": addresses(1000), "fromBlock": "latest"}]) == []
    for filter_ in ({"topics": [TOPIC] * 5}, {"topics": [[TOPIC] * 1001]},
                    {"topics": [None, [TOPIC] * 1001]}):
        for method in ("eth_newFilter", "eth_getLogs"):
            err = raw.error(method, [filter_])
            assert (err["code"], err["message"]) == (INVALID_PARAMS, "exceed max topics"), method
    assert raw.result("eth_getLogs", [{"topics": [TOPIC] * 4, "fromBlock": "latest"}]) == []
    err = raw.error("eth_getLogs", [{"blockHash": TOPIC, "fromBlock": "0x0"}])
    assert err["code"] == INVALID_PARAMS
    assert err["message"] == "cannot specify both BlockHash and FromBlock/ToBlock, choose one or the other"


# --- the JSON-RPC 2.0 envelope -------------------------------------------------------


def test_huge_batch_is_an_invalid_request(raw):
    batch = [call("eth_chainId", [], rid=i + 7) for i in range(5000)]
    resp = post_json(raw, batch).json()
    errors = resp if isinstance(resp, list) else [resp]
    assert len(errors) == 1 and errors[0]["error"]["code"] == INVALID_REQUEST, str(resp)[:300]
    if IS_KOMA:
        # geth: one error in an array, with the id of the first call
        assert resp == [{"jsonrpc": "2.0", "id": 7,
                         "error": {"code": INVALID_REQUEST, "message": "batch too large"}}]
    # the limit itself is fine
    ok = post_json(raw, [call("eth_chainId", [], rid=i) for i in range(1000)]).json()
    assert len(ok) == 1000 and all(r["result"] == hex(CHAIN_ID) for r in ok)


def test_deeply_nested_json(raw):
    deep = "[" * 100_000 + "]" * 100_000
    deep_params = '{"jsonrpc":"2.0","id":1,"method":"eth_getBalance","params":' + deep + "}"
    deep_object = '{"a":' * 50_000 + "1" + "}" * 50_000
    for body in (deep, deep_params, deep_object):
        resp = post_json(raw, body).json()
        errors = resp if isinstance(resp, list) else [resp]
        assert all(e["error"]["code"] in (PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS) for e in errors), \
            str(resp)[:300]
    assert raw.result("eth_chainId") == hex(CHAIN_ID)


@pytest.mark.koma_only  # anvil answers these its own way
def test_object_or_array_id_is_an_invalid_request(raw):
    for rid in ({"a": 1}, [1], []):
        resp = post_json(raw, {"jsonrpc": "2.0", "id": rid, "method": "eth_chainId", "params": []})
        assert resp.status_code == 200
        assert resp.json() == {"jsonrpc": "2.0", "id": None,
                               "error": {"code": INVALID_REQUEST, "message": "invalid request"}}


def test_valid_json_that_is_no_request(raw):
    for body in ("1", "null", "{}", '"x"', "true"):
        err = post_json(raw, body).json()["error"]
        assert err["code"] == (INVALID_REQUEST if IS_KOMA else err["code"]), (body, err)
        if IS_KOMA:
            assert err["message"] == "invalid request"


@pytest.mark.koma_only
def test_surplus_params_are_refused_like_geth(raw):
    cases = [
        ("eth_chainId", [1], 0),
        ("eth_blockNumber", ["latest"], 0),
        ("eth_getBalance", [ZERO, "latest", {}], 2),
        ("eth_getBlockByNumber", ["latest", False, True], 2),
        ("eth_call", [{"to": ZERO}, "latest", {}, {}], 3),
        ("eth_feeHistory", ["0x1", "latest", [], 1], 3),
    ]
    for method, params, most in cases:
        err = raw.error(method, params)
        assert (err["code"], err["message"]) == (INVALID_PARAMS, f"too many arguments, want at most {most}"), method
    err = raw.error("eth_getBalance", [])
    assert err["code"] == INVALID_PARAMS
    resp = post_json(raw, {"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance",
                           "params": {"address": ZERO}}).json()
    assert resp["error"] == {"code": INVALID_PARAMS, "message": "non-array args"}


@pytest.mark.koma_only
def test_unknown_method_text(raw):
    err = raw.error("eth_noSuchMethod")
    assert err == {"code": METHOD_NOT_FOUND,
                   "message": "the method eth_noSuchMethod does not exist/is not available"}


@pytest.mark.koma_only  # anvil answers notifications
def test_notifications_get_an_empty_answer(raw):
    for body in ({"jsonrpc": "2.0", "method": "eth_chainId", "params": []},
                 [{"jsonrpc": "2.0", "method": "eth_chainId"}, {"jsonrpc": "2.0", "method": "eth_nope"}]):
        resp = post_json(raw, body)
        assert resp.status_code == 200 and resp.content == b"", resp.content
    # in a batch with calls, only the calls are answered
    resp = post_json(raw, [{"jsonrpc": "2.0", "method": "eth_chainId"},
                           call("eth_chainId", [], rid="only")]).json()
    assert resp == [{"jsonrpc": "2.0", "id": "only", "result": hex(CHAIN_ID)}]


@pytest.mark.koma_only
def test_any_scalar_id_is_echoed(raw):
    for rid in (-1, 1.5, 10**30, "a\u00e9b", None, 0):
        text = json.dumps({"jsonrpc": "2.0", "id": rid, "method": "eth_chainId"})
        resp = post_json(raw, text).json()
        assert resp == {"jsonrpc": "2.0", "id": rid, "result": hex(CHAIN_ID)}, text
    batch = [call("eth_chainId", [], rid=-3), 5, call("eth_nope", [], rid=2.5)]
    resp = post_json(raw, batch).json()
    assert resp[0] == {"jsonrpc": "2.0", "id": -3, "result": hex(CHAIN_ID)}
    assert resp[1]["error"]["code"] == INVALID_REQUEST and resp[1]["id"] is None
    assert resp[2]["id"] == 2.5 and resp[2]["error"]["code"] == METHOD_NOT_FOUND


@pytest.mark.koma_only
def test_estimate_gas_out_of_gas_at_the_cap(raw):
    loop = "0x5b600056"  # JUMPDEST PUSH1 0 JUMP: runs until the gas is gone
    target = "0x" + "42" * 20
    err = raw.error("eth_estimateGas", [{"to": target, "gas": "0x100000"}, "latest",
                                        {target: {"code": loop}}])
    assert (err["code"], err["message"]) == (-32000, "gas required exceeds allowance (1048576)")
    err = raw.error("eth_call", [{"to": target, "gas": "0x100000"}, "latest", {target: {"code": loop}}])
    assert (err["code"], err["message"]) == (-32000, "out of gas")


@pytest.mark.koma_only
def test_undecodable_raw_transactions(raw):
    for data, text in (("0xc0", "rlp: too few elements for types.LegacyTx"),
                       ("0x", "typed transaction too short"),
                       ("0x02", "typed transaction too short"),
                       ("0x02c0", "rlp: too few elements for types.DynamicFeeTx"),
                       ("0x81", "rlp: expected input list for types.LegacyTx")):
        err = raw.error("eth_sendRawTransaction", [data])
        assert err["message"] == text, data
        assert err["code"] == INVALID_PARAMS


@pytest.mark.koma_only
def test_websocket_envelope(node):
    async def go():
        async with websockets.connect(node.ws_url, max_size=2**24) as ws:
            await ws.send(json.dumps(call("eth_chainId", [1], rid=1)))
            surplus = json.loads(await ws.recv())
            # a notification is executed and not answered: the next answer is for id 2
            await ws.send(json.dumps({"jsonrpc": "2.0", "method": "eth_chainId"}))
            await ws.send(json.dumps(call("eth_nope", [], rid=2)))
            unknown = json.loads(await ws.recv())
            await ws.send(json.dumps([call("eth_chainId", [1], rid=3), call("eth_chainId", [], rid=4)]))
            batch = json.loads(await ws.recv())
            await ws.send(json.dumps(call("eth_feeHistory", ["0x1", "latest", [1] * 1000], rid=5)))
            percentiles = json.loads(await ws.recv())
            return surplus, unknown, batch, percentiles

    surplus, unknown, batch, percentiles = asyncio.run(asyncio.wait_for(go(), 60))
    assert surplus["error"] == {"code": INVALID_PARAMS, "message": "too many arguments, want at most 0"}
    assert unknown["id"] == 2 and unknown["error"]["code"] == METHOD_NOT_FOUND
    by_id = {r["id"]: r for r in batch}
    assert by_id[3]["error"]["code"] == INVALID_PARAMS and by_id[4]["result"] == hex(CHAIN_ID)
    assert percentiles["error"]["message"] == "invalid reward percentile: over the query limit 100"


# --- a flood of heavy requests ---------------------------------------------------------

FLOOD_THREADS = 16
FLOOD_SECONDS = float(os.environ.get("E2E_RPC_FLOOD_SECONDS", "10"))
RSS_GROWTH_LIMIT_MB = 400


@pytest.mark.koma_only  # watches the node process's memory
def test_flood_of_heavy_requests_keeps_blocks_coming_and_memory_bounded(private_node):
    node = private_node("flood").start()
    pid = node.proc.pid
    probe = RawRpc(node.http_url)
    # some history to read
    deadline = time.monotonic() + 60
    while int(probe.result("eth_blockNumber"), 16) < 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    rss_before = rss_mb(pid)
    head_before = int(probe.result("eth_blockNumber"), 16)

    heavy = [
        call("eth_feeHistory", ["0x400", "latest", list(range(1, 101))]),
        call("eth_getLogs", [{"fromBlock": "0x0", "toBlock": "latest"}]),
        call("eth_feeHistory", ["0x400", "latest", [50.0] * 200_000]),
        call("eth_getBlockByNumber", ["latest", True]),
        [call("eth_getBlockReceipts", ["latest"], rid=i) for i in range(100)],
    ]
    stop = threading.Event()
    stats = {"answered": 0, "failed": 0, "peak_rss": rss_before}
    lock = threading.Lock()

    def flood(worker: int):
        session = requests.Session()
        i = worker
        while not stop.is_set():
            body = heavy[i % len(heavy)]
            i += 1
            try:
                r = session.post(node.http_url, data=json.dumps(body), timeout=120,
                                 headers={"Content-Type": "application/json"})
                r.json()
                with lock:
                    stats["answered"] += 1
            except (requests.RequestException, ValueError):
                with lock:
                    stats["failed"] += 1

    heads = []
    with ThreadPoolExecutor(max_workers=FLOOD_THREADS) as pool:
        futures = [pool.submit(flood, w) for w in range(FLOOD_THREADS)]
        end = time.monotonic() + FLOOD_SECONDS
        while time.monotonic() < end:
            time.sleep(0.5)
            stats["peak_rss"] = max(stats["peak_rss"], rss_mb(pid))
            try:
                heads.append(int(probe.post(call("eth_blockNumber", []), timeout=60).json()["result"], 16))
            except requests.RequestException:
                pass
        stop.set()
        for f in futures:
            f.result(timeout=300)

    head_after = int(probe.result("eth_blockNumber"), 16)
    growth = stats["peak_rss"] - rss_before
    print(f"flood: {stats['answered']} answered, {stats['failed']} failed, blocks {head_before}->{head_after}, "
          f"RSS {rss_before:.0f} MB -> peak {stats['peak_rss']:.0f} MB")
    assert stats["answered"] > 0
    assert stats["failed"] == 0
    # blocks kept coming during the flood, and a light request was answered throughout
    assert heads and max(heads) >= head_before + 3, (head_before, heads)
    assert head_after > head_before
    assert growth < RSS_GROWTH_LIMIT_MB, f"RSS grew by {growth:.0f} MB"
    assert probe.result("eth_chainId") == hex(CHAIN_ID)
