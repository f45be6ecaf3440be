"""WebSocket (same port as HTTP): eth_subscribe newHeads / logs / newPendingTransactions
with web3.py's AsyncWeb3 + WebSocketProvider, and JSON-RPC over a raw socket."""

import asyncio
import json

import pytest
import websockets
from eth_account import Account

from devnode import CHAIN_ID, IS_KOMA
from ethutil import logs_of, ws_web3

TIMEOUT = 30


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TIMEOUT))


async def collect_all(w3, stops: dict):
    """Results per subscription id until each one's stop(results) is true."""
    results = {sub: [] for sub in stops}
    done = {sub: False for sub in stops}
    async for msg in w3.socket.process_subscriptions():
        sub = msg["subscription"]
        if sub not in results or done[sub]:
            continue
        results[sub].append(msg["result"])
        done[sub] = stops[sub](results[sub])
        if all(done.values()):
            return results


async def collect(w3, sub_id, stop):
    """Results of one subscription until stop(results) is true."""
    return (await collect_all(w3, {sub_id: stop}))[sub_id]


def test_subscription_id_is_a_hex_string(node):
    """geth's ids are "0x" + hex; web3.py rejects and viem ignores any other kind (an
    integer id makes every subscription silently deliver nothing in viem)."""

    async def go():
        async with websockets.connect(node.ws_url) as ws:
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": ["newHeads"]}))
            sub = json.loads(await ws.recv())
            note = json.loads(await ws.recv())
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "eth_unsubscribe",
                                      "params": [sub["result"]]}))
            while True:
                unsub = json.loads(await ws.recv())
                if unsub.get("id") == 2:
                    return sub, note, unsub

    sub, note, unsub = run(go())
    sub_id = sub["result"]
    assert isinstance(sub_id, str) and sub_id.startswith("0x"), f"subscription id {sub_id!r}"
    int(sub_id, 16)
    assert note["method"] == "eth_subscription" and note["params"]["subscription"] == sub_id
    assert unsub["result"] is True


def test_new_heads(node, w3):
    async def go():
        async with ws_web3(node.ws_url) as aw3:
            assert await aw3.eth.chain_id == CHAIN_ID
            sub = await aw3.eth.subscribe("newHeads")
            heads = await collect(aw3, sub, lambda r: len(r) >= 3)
            assert await aw3.eth.unsubscribe(sub) is True
            return heads

    heads = run(go())
    numbers = [h["number"] for h in heads]
    assert numbers == list(range(numbers[0], numbers[0] + 3))
    for h in heads:
        block = w3.eth.get_block(h["number"])
        assert h["hash"] == block["hash"]
        assert h["parentHash"] == block["parentHash"]
        assert h["stateRoot"] == block["stateRoot"]
        assert h["baseFeePerGas"] == block["baseFeePerGas"]
    assert heads[1]["parentHash"] == heads[0]["hash"]


def test_logs(node, w3, chain):
    owner = chain.new_account()
    token, _ = chain.deploy(owner, "TestToken", "WS", "WS", 10**24)
    alice, bob = Account.create().address, Account.create().address

    async def go():
        async with ws_web3(node.ws_url) as aw3:
            sub = await aw3.eth.subscribe("logs", {"address": token.address})
            to_bob = await aw3.eth.subscribe("logs", {"topics": [
                None, None, "0x" + "00" * 12 + bob.lower()[2:]]})
            hashes = [chain.transact(owner, token.functions.transfer(to, 9), wait=False)
                      for to in (alice, bob)]
            got = await collect_all(aw3, {sub: lambda r: len(r) >= 2, to_bob: lambda r: len(r) >= 1})
            return hashes, got[sub], got[to_bob]

    hashes, got, got_bob = run(go())
    assert [log["transactionHash"] for log in got] == hashes
    for log, h in zip(got, hashes, strict=True):
        receipt = chain.wait(h)
        (expected,) = logs_of(receipt, token.address)
        for key in ("address", "topics", "data", "blockNumber", "blockHash", "logIndex",
                    "transactionIndex"):
            assert log[key] == expected[key], key
        assert log["removed"] is False
    assert [log["transactionHash"] for log in got_bob] == hashes[1:]


def test_new_pending_transactions(node, chain):
    sender = chain.new_account()

    async def go():
        async with ws_web3(node.ws_url) as aw3:
            sub = await aw3.eth.subscribe("newPendingTransactions")
            h = chain.send(sender, {"to": Account.create().address, "value": 1}, wait=False)
            await collect(aw3, sub, lambda r: h in r)
            return h

    chain.wait(run(go()))


def test_raw_websocket_errors(node):
    """Garbage on the socket gets a JSON-RPC error and the connection stays usable."""

    async def go():
        async with websockets.connect(node.ws_url, max_size=2**24) as ws:
            await ws.send('{"jsonrpc":"2.0","id":1,"method":')
            parse_error = json.loads(await ws.recv())
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "no_suchMethod", "params": []}))
            unknown = json.loads(await ws.recv())
            await ws.send(json.dumps([{"jsonrpc": "2.0", "id": 3, "method": "eth_chainId", "params": []},
                                      {"jsonrpc": "2.0", "id": 4, "method": "eth_blockNumber", "params": []}]))
            batch = json.loads(await ws.recv())
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 5, "method": "eth_unsubscribe", "params": ["0x1234"]}))
            unsub = json.loads(await ws.recv())
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 6, "method": "eth_subscribe", "params": ["noSuchTopic"]}))
            bad_sub = json.loads(await ws.recv())
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": 7, "method": "eth_chainId", "params": []}))
            ok = json.loads(await ws.recv())
            return parse_error, unknown, batch, unsub, bad_sub, ok

    parse_error, unknown, batch, unsub, bad_sub, ok = run(go())
    # -32700 like geth; anvil says -32600 on a socket
    assert parse_error["error"]["code"] == (-32700 if IS_KOMA else -32600)
    assert unknown["id"] == 2
    assert unknown["error"]["code"] == (-32601 if IS_KOMA else -32602)  # anvil differs on sockets
    assert sorted(r["id"] for r in batch) == [3, 4]
    assert all("result" in r for r in batch)
    assert unsub.get("result") is False or "error" in unsub
    assert "error" in bad_sub and bad_sub["id"] == 6
    assert ok == {"jsonrpc": "2.0", "id": 7, "result": hex(CHAIN_ID)}


@pytest.mark.parametrize("n_clients", [20])
def test_many_subscribers(node, n_clients):
    """Several clients subscribed at once all see the same new head."""

    async def one():
        async with ws_web3(node.ws_url) as aw3:
            sub = await aw3.eth.subscribe("newHeads")
            (head,) = await collect(aw3, sub, lambda r: len(r) >= 1)
            (head2,) = await collect(aw3, sub, lambda r: len(r) >= 1)
            return head["number"], head2

    async def go():
        return await asyncio.gather(*(one() for _ in range(n_clients)))

    results = run(go())
    # every client saw two consecutive heads
    for first, second in results:
        assert second["number"] == first + 1
    seen = {}
    for _, head in results:
        seen.setdefault(head["number"], set()).add(head["hash"])
    assert all(len(hashes) == 1 for hashes in seen.values())
