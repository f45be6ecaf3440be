"""KOMA's UTXO-like transfer log (DESIGN 3.6): every native value movement, internal ones
and fees included, is a log from 0x...1010 in the receipt, so eth_getLogs can follow ETH
and an auditor can chain each account's balances from one log to the next."""

import pytest
from eth_account import Account
from hexbytes import HexBytes

from ethutil import (ETH, LOG_FEE_TRANSFER_TOPIC, LOG_TRANSFER_TOPIC, TRANSFER_LOG_ADDRESS,
                     ZERO_ADDRESS, address_from_topic, topic_address)

pytestmark = pytest.mark.koma_only

NATIVE = TRANSFER_LOG_ADDRESS  # the token field of native-coin transfers


def decode(log) -> dict:
    topics = log["topics"]
    assert len(topics) == 4, log
    data = HexBytes(log["data"])
    assert len(data) == 5 * 32, log
    words = [int.from_bytes(data[i:i + 32], "big") for i in range(0, 160, 32)]
    return {
        "kind": "fee" if topics[0] == LOG_FEE_TRANSFER_TOPIC else "transfer",
        "token": address_from_topic(topics[1]).lower(),
        "from": address_from_topic(topics[2]),
        "to": address_from_topic(topics[3]),
        "amount": words[0], "input1": words[1], "input2": words[2],
        "output1": words[3], "output2": words[4],
        "log": log,
    }


def ledger(receipt, kind=None) -> list[dict]:
    """The transfer-log entries of a receipt, in log order."""
    out = []
    for log in receipt["logs"]:
        if log["address"].lower() != TRANSFER_LOG_ADDRESS:
            continue
        assert log["topics"][0] in (LOG_TRANSFER_TOPIC, LOG_FEE_TRANSFER_TOPIC), log
        entry = decode(log)
        if kind is None or entry["kind"] == kind:
            out.append(entry)
    return out


def assert_balanced(entry):
    assert entry["token"] == NATIVE
    assert entry["output1"] == entry["input1"] - entry["amount"], entry
    if entry["kind"] == "fee" and entry["to"] == ZERO_ADDRESS:
        # the burned base fee credits nobody: 0x0's balance does not move
        assert entry["output2"] == entry["input2"], entry
    else:
        assert entry["output2"] == entry["input2"] + entry["amount"], entry


def assert_fees(w3, receipt):
    """LogFeeTransfer: tip to the coinbase, base fee burned to 0x0, together gasUsed * price."""
    block = w3.eth.get_block(receipt["blockNumber"])
    fees = ledger(receipt, "fee")
    assert fees, "no LogFeeTransfer in the receipt"
    for f in fees:
        assert_balanced(f)
        assert f["from"] == receipt["from"]
        assert f["to"] in (block["miner"], ZERO_ADDRESS), f
    total = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert sum(f["amount"] for f in fees) == total
    tip = receipt["gasUsed"] * (receipt["effectiveGasPrice"] - block["baseFeePerGas"])
    burned = receipt["gasUsed"] * block["baseFeePerGas"]
    assert sum(f["amount"] for f in fees if f["to"] == ZERO_ADDRESS) == burned
    assert sum(f["amount"] for f in fees if f["to"] == block["miner"]) == tip
    return fees


def assert_chains(entries, account, start_balance, end_balance):
    """Following the account through the entries, each 'after' is the next 'before'."""
    balance = start_balance
    seen = 0
    for e in entries:
        for side, (before, after) in (("from", ("input1", "output1")), ("to", ("input2", "output2"))):
            if e[side] == account:
                assert e[before] == balance, (account, e)
                balance = e[after]
                seen += 1
    assert seen, f"{account} is in no entry"
    assert balance == end_balance


def test_plain_transfer(w3, chain):
    sender, recipient = chain.new_account(), Account.create().address
    value = ETH // 7
    receipt = chain.send(sender, {"to": recipient, "value": value})
    number = receipt["blockNumber"]

    (t,) = ledger(receipt, "transfer")
    assert (t["from"], t["to"], t["amount"]) == (sender.address, recipient, value)
    assert_balanced(t)
    assert t["input2"] == 0
    assert t["output2"] == w3.eth.get_balance(recipient, number) == value
    assert t["input1"] <= w3.eth.get_balance(sender.address, number - 1)
    assert t["output1"] >= w3.eth.get_balance(sender.address, number)
    fees = assert_fees(w3, receipt)
    assert_chains(ledger(receipt), sender.address, w3.eth.get_balance(sender.address, number - 1),
                  w3.eth.get_balance(sender.address, number))
    assert len(fees) + 1 == len(receipt["logs"])

    # eth_getLogs finds it by address and by each indexed topic
    log = t["log"]
    flt = {"fromBlock": number, "toBlock": number, "address": TRANSFER_LOG_ADDRESS}
    assert log in w3.eth.get_logs(flt)
    exact = w3.eth.get_logs({**flt, "topics": [LOG_TRANSFER_TOPIC, topic_address(NATIVE),
                                               topic_address(sender.address), topic_address(recipient)]})
    assert exact == [log]
    to_only = w3.eth.get_logs({"fromBlock": number - 1, "toBlock": "latest",
                               "topics": [LOG_TRANSFER_TOPIC, None, None, topic_address(recipient)]})
    assert to_only == [log]
    fee_logs = w3.eth.get_logs({**flt, "topics": [LOG_FEE_TRANSFER_TOPIC, None, topic_address(sender.address)]})
    assert [f["log"] for f in fees] == fee_logs


def test_internal_transfer_via_contract(w3, chain):
    deployer, sender = chain.new_accounts(2)
    forwarder, _ = chain.deploy(deployer, "Forwarder")
    recipient = Account.create().address
    value = 3 * ETH // 10
    receipt = chain.transact(sender, forwarder.functions.forward(recipient), value=value)
    assert receipt["status"] == 1
    number = receipt["blockNumber"]

    first, second = ledger(receipt, "transfer")
    assert (first["from"], first["to"], first["amount"]) == (sender.address, forwarder.address, value)
    assert (second["from"], second["to"], second["amount"]) == (forwarder.address, recipient, value)
    for t in (first, second):
        assert_balanced(t)
    # the forwarder's balance goes 0 -> value -> 0 across the two logs
    assert first["input2"] == 0 and second["input1"] == first["output2"] == value
    assert second["output1"] == 0 == w3.eth.get_balance(forwarder.address, number)
    assert second["output2"] == w3.eth.get_balance(recipient, number) == value
    assert_fees(w3, receipt)
    assert_chains(ledger(receipt), sender.address, w3.eth.get_balance(sender.address, number - 1),
                  w3.eth.get_balance(sender.address, number))

    internal = w3.eth.get_logs({"fromBlock": number, "toBlock": number, "address": TRANSFER_LOG_ADDRESS,
                                "topics": [LOG_TRANSFER_TOPIC, None, topic_address(forwarder.address)]})
    assert internal == [second["log"]]


def test_split_to_many(w3, chain):
    deployer, sender = chain.new_accounts(2)
    forwarder, _ = chain.deploy(deployer, "Forwarder")
    recipients = [Account.create().address for _ in range(3)]
    value = 3 * 10**15 + 2  # remainder 2 stays in the contract
    receipt = chain.transact(sender, forwarder.functions.split(recipients), value=value)
    transfers = ledger(receipt, "transfer")
    assert len(transfers) == 4
    assert transfers[0]["to"] == forwarder.address and transfers[0]["amount"] == value
    assert [t["to"] for t in transfers[1:]] == recipients
    assert all(t["from"] == forwarder.address and t["amount"] == 10**15 for t in transfers[1:])
    for t in transfers:
        assert_balanced(t)
    assert_chains(transfers, forwarder.address, 0, w3.eth.get_balance(forwarder.address))
    assert w3.eth.get_balance(forwarder.address) == 2


def test_failed_tx_logs_only_its_fee(w3, chain):
    """A failed tx moves no value (no LogTransfer) but still pays, and logs, its fee."""
    deployer = chain.new_account()
    reverter, _ = chain.deploy(deployer, "Reverter", 1)
    receipt = chain.transact(deployer, reverter.functions.setValueOrFail(13), gas=100_000)
    assert receipt["status"] == 0
    assert ledger(receipt, "transfer") == []
    assert_fees(w3, receipt)
    number = receipt["blockNumber"]
    assert_chains(ledger(receipt), deployer.address, w3.eth.get_balance(deployer.address, number - 1),
                  w3.eth.get_balance(deployer.address, number))


def test_balances_chain_across_blocks(w3, chain):
    """The auditor's check: one account's outputs feed its next inputs across txs and blocks."""
    a, b = chain.new_accounts(2)
    start_block = w3.eth.block_number
    start = w3.eth.get_balance(a.address)
    receipts = [chain.send(a, {"to": b.address, "value": 1000 + i}) for i in range(2)]
    receipts.append(chain.send(b, {"to": a.address, "value": 555}))
    receipts.append(chain.send(a, {"to": b.address, "value": 1}))
    entries = [e for r in receipts for e in ledger(r)]
    assert_chains(entries, a.address, start, w3.eth.get_balance(a.address))
    # and eth_getLogs returns the same entries for that account, in the same order
    logs = w3.eth.get_logs({"fromBlock": start_block + 1, "toBlock": receipts[-1]["blockNumber"],
                            "address": TRANSFER_LOG_ADDRESS})
    mine = [decode(log) for log in logs if a.address in (address_from_topic(log["topics"][2]),
                                                         address_from_topic(log["topics"][3]))]
    assert [e["log"] for e in mine] == [e["log"] for e in entries if a.address in (e["from"], e["to"])]
