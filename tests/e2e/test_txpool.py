"""txpool_status and txpool_content: executable txs are 'pending', txs behind a nonce
gap are 'queued'. Runs on its own node with slow blocks so the pool can be observed."""

import time

from eth_account import Account

from devnode import DEV_KEYS
from ethutil import Chain, RawRpc, hexint, http_web3


def by_address(section: dict, address: str) -> dict:
    return {k.lower(): v for k, v in section.items()}.get(address.lower(), {})


def test_txpool_status_and_content(private_node):
    node = private_node("txpool", block_time_ms=4000).start()
    w3 = http_web3(node.http_url)
    chain, raw = Chain(w3), RawRpc(node.http_url)
    assert {k: hexint(v) for k, v in raw.result("txpool_status").items()} == {"pending": 0, "queued": 0}

    for attempt in range(3):
        ready = Account.from_key(DEV_KEYS[1 + 2 * attempt])
        gapped = Account.from_key(DEV_KEYS[2 + 2 * attempt])
        # right after a block, so the next one is ~4 s away
        head = w3.eth.block_number
        while w3.eth.block_number == head:
            time.sleep(0.05)
        head = w3.eth.block_number
        to = Account.create().address
        ready_hashes = [chain.send(ready, {"to": to, "value": 1 + n, "nonce": n, "gas": 21000}, wait=False)
                        for n in range(2)]
        gapped_hash = chain.send(gapped, {"to": to, "value": 9, "nonce": 5, "gas": 21000}, wait=False)
        status = raw.result("txpool_status")
        content = raw.result("txpool_content")
        pending_nonce = w3.eth.get_transaction_count(ready.address, "pending")
        pool_tx = w3.eth.get_transaction(ready_hashes[1])
        if w3.eth.block_number != head:
            continue  # a block came in between: the snapshot is not clean, try again
        break
    else:
        raise AssertionError("never got a pool snapshot between two blocks")

    assert hexint(status["pending"]) == 2
    assert hexint(status["queued"]) == 1
    pending = by_address(content["pending"], ready.address)
    assert sorted(pending) == ["0", "1"]
    for n, h in enumerate(ready_hashes):
        entry = pending[str(n)]
        assert entry["hash"] == h.to_0x_hex()
        assert hexint(entry["nonce"]) == n
        assert entry["from"].lower() == ready.address.lower()
        assert entry["to"].lower() == to.lower()
        assert hexint(entry["value"]) == 1 + n
    queued = by_address(content["queued"], gapped.address)
    assert list(queued) == ["5"] and queued["5"]["hash"] == gapped_hash.to_0x_hex()
    assert by_address(content["pending"], gapped.address) == {}
    assert pending_nonce == 2
    assert pool_tx["blockNumber"] is None and pool_tx["blockHash"] is None

    # once mined, the ready txs leave the pool; the gapped one stays queued
    for h in ready_hashes:
        assert chain.wait(h)["status"] == 1
    status = raw.result("txpool_status")
    assert hexint(status["pending"]) == 0
    assert hexint(status["queued"]) == 1
    content = raw.result("txpool_content")
    assert by_address(content["pending"], ready.address) == {}
    assert list(by_address(content["queued"], gapped.address)) == ["5"]
