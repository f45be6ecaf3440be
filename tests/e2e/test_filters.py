"""Polling filters over HTTP: eth_newBlockFilter, eth_newFilter, eth_getFilterChanges,
eth_getFilterLogs, eth_uninstallFilter; and eth_getLogs range limits."""

import pytest
from eth_account import Account

from ethutil import ERC20_TRANSFER_TOPIC, hexint, logs_of, topic_address


def test_block_filter(w3, chain, raw):
    fid = raw.result("eth_newBlockFilter")
    start = w3.eth.block_number
    chain.wait_for_block(start + 3)
    first = raw.result("eth_getFilterChanges", [fid])
    assert len(first) >= 2
    numbers = [w3.eth.get_block(h)["number"] for h in first]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert start <= numbers[0] <= start + 1

    chain.wait_for_block(numbers[-1] + 2)
    second = raw.result("eth_getFilterChanges", [fid])
    assert second and not set(first) & set(second)
    assert w3.eth.get_block(second[0])["number"] == numbers[-1] + 1
    assert w3.eth.get_block(second[0])["parentHash"].to_0x_hex() == first[-1]

    assert raw.result("eth_uninstallFilter", [fid]) is True
    assert raw.result("eth_uninstallFilter", [fid]) is False
    raw.error("eth_getFilterChanges", [fid])


def test_log_filter(w3, chain, raw):
    owner = chain.new_account()
    token, receipt = chain.deploy(owner, "TestToken", "Filter", "FLT", 10**24)
    alice, bob = Account.create().address, Account.create().address
    since = hex(chain.wait_for_block(receipt["blockNumber"] + 1)["number"])
    all_transfers = raw.result("eth_newFilter", [{"fromBlock": since, "address": token.address,
                                                  "topics": [ERC20_TRANSFER_TOPIC.to_0x_hex()]}])
    to_alice = raw.result("eth_newFilter", [{"fromBlock": since, "address": token.address,
                                             "topics": [None, None, topic_address(alice)]}])
    assert raw.result("eth_getFilterChanges", [all_transfers]) == []

    hashes = [chain.transact(owner, token.functions.transfer(to, 5), wait=False)
              for to in (alice, bob)]
    receipts = [chain.wait(h) for h in hashes]

    changes = raw.result("eth_getFilterChanges", [all_transfers])
    assert [c["transactionHash"] for c in changes] == [r["transactionHash"].to_0x_hex() for r in receipts]
    for change, r in zip(changes, receipts, strict=True):
        (log,) = logs_of(r, token.address)
        assert hexint(change["logIndex"]) == log["logIndex"]
        assert hexint(change["blockNumber"]) == r["blockNumber"]
        assert change["data"] == log["data"].to_0x_hex()
    assert raw.result("eth_getFilterChanges", [all_transfers]) == []

    only_alice = raw.result("eth_getFilterChanges", [to_alice])
    assert [c["transactionHash"] for c in only_alice] == [receipts[0]["transactionHash"].to_0x_hex()]

    # eth_getFilterLogs returns everything in the filter's range, polled or not
    assert raw.result("eth_getFilterLogs", [all_transfers]) == changes

    for fid in (all_transfers, to_alice):
        assert raw.result("eth_uninstallFilter", [fid]) is True
    raw.error("eth_getFilterLogs", [all_transfers])


def test_unknown_filter(raw):
    raw.error("eth_getFilterChanges", ["0x1234567890abcdef"])
    assert raw.result("eth_uninstallFilter", ["0x1234567890abcdef"]) is False


def test_get_logs_sane_range(w3, chain, raw):
    head = chain.wait_for_block(2)["number"]
    assert isinstance(raw.result("eth_getLogs", [{"fromBlock": hex(head - 1), "toBlock": hex(head)}]), list)
    assert isinstance(raw.result("eth_getLogs", [{"fromBlock": "earliest", "toBlock": "latest"}]), list)


@pytest.mark.koma_only  # anvil clamps the range and answers []
def test_get_logs_bad_ranges(w3, chain, raw):
    head = chain.wait_for_block(2)["number"]
    # from > to (geth: "invalid block range params")
    err = raw.error("eth_getLogs", [{"fromBlock": hex(head), "toBlock": hex(head - 1)}])
    assert err["message"]
    # 2^40 blocks: beyond any range limit, and beyond the head (geth, as in the
    # execution-apis tests: -32602 "block range extends beyond current head block")
    err = raw.error("eth_getLogs", [{"fromBlock": "0x0", "toBlock": hex(2**40)}])
    assert err["message"]
