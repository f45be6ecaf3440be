"""The standard read methods, checked against each other the way a client relies on them."""

import pytest
from eth_account import Account
from hexbytes import HexBytes
from web3 import Web3

from devnode import CHAIN_ID, DEV_ADDRESSES, DEV_BALANCE_WEI
from ethutil import ETH, GWEI, hexint


def test_chain_identity(w3, raw):
    assert w3.eth.chain_id == CHAIN_ID
    assert raw.result("eth_chainId") == hex(CHAIN_ID)
    assert raw.result("net_version") == str(CHAIN_ID)
    assert raw.result("net_listening") is True
    version = raw.result("web3_clientVersion")
    assert isinstance(version, str) and version


@pytest.mark.koma_only  # anvil has no net_peerCount
def test_net_peer_count(raw):
    assert raw.result("net_peerCount") == "0x0"  # a devnet has no peers


def test_web3_sha3(raw):
    assert raw.result("web3_sha3", ["0x68656c6c6f"]) == Web3.keccak(text="hello").to_0x_hex()
    assert raw.result("web3_sha3", ["0x"]) == Web3.keccak(b"").to_0x_hex()


def test_blocks_are_produced(w3, chain):
    start = w3.eth.block_number
    block = chain.wait_for_block(start + 2)
    assert block["number"] == start + 2
    assert w3.eth.syncing is False


def test_fee_methods(w3, chain, raw):
    chain.wait_for_block(5)  # enough history for 4 blocks
    latest = w3.eth.get_block("latest")
    base = latest["baseFeePerGas"]
    assert base > 0
    assert w3.eth.gas_price >= base
    tip = w3.eth.max_priority_fee
    # A tip suggested by the node must be accepted by its own pool (>= 1 gwei minimum).
    assert tip >= GWEI

    hist = raw.result("eth_feeHistory", ["0x4", "latest", [25, 75]])
    newest = hexint(hist["oldestBlock"]) + 3
    assert newest <= w3.eth.block_number
    assert len(hist["baseFeePerGas"]) == 5  # 4 blocks + the next one
    assert len(hist["gasUsedRatio"]) == 4
    assert len(hist["reward"]) == 4 and all(len(r) == 2 for r in hist["reward"])
    assert all(0 <= r <= 1 for r in hist["gasUsedRatio"])
    assert hexint(hist["baseFeePerGas"][3]) == w3.eth.get_block(newest)["baseFeePerGas"]


def test_dev_accounts_funded(w3):
    genesis_balance = w3.eth.get_balance(DEV_ADDRESSES[9], 0)
    assert genesis_balance == DEV_BALANCE_WEI
    for addr in DEV_ADDRESSES:
        assert w3.eth.get_balance(addr, 0) == DEV_BALANCE_WEI


def test_empty_account_reads(w3):
    nobody = Account.create().address
    assert w3.eth.get_balance(nobody) == 0
    assert w3.eth.get_transaction_count(nobody) == 0
    assert w3.eth.get_transaction_count(nobody, "pending") == 0
    assert w3.eth.get_code(nobody) == b""
    assert w3.eth.get_storage_at(nobody, 0) == b"\x00" * 32


def test_block_tags(w3):
    latest = w3.eth.get_block("latest")
    earliest = w3.eth.get_block("earliest")
    assert earliest["number"] == 0
    assert w3.eth.get_block(0)["hash"] == earliest["hash"]
    for tag in ("safe", "finalized"):
        assert w3.eth.get_block(tag)["number"] <= w3.eth.block_number
    pending = w3.eth.get_block("pending")
    assert pending["number"] >= latest["number"]


def test_block_by_number_and_hash_agree(w3, chain):
    a, b = chain.new_account(), Account.create()
    receipts = [chain.send(a, {"to": b.address, "value": i + 1}, wait=False) for i in range(3)]
    receipts = [chain.wait(h) for h in receipts]
    number = receipts[-1]["blockNumber"]

    by_number = w3.eth.get_block(number)
    by_hash = w3.eth.get_block(by_number["hash"])
    assert by_number == by_hash
    assert by_number["parentHash"] == w3.eth.get_block(number - 1)["hash"]
    assert by_number["number"] == number
    for key in ("stateRoot", "transactionsRoot", "receiptsRoot", "logsBloom", "miner",
                "gasLimit", "gasUsed", "timestamp", "baseFeePerGas", "size"):
        assert key in by_number, key
    assert len(by_number["extraData"]) <= 32
    assert by_number["timestamp"] >= w3.eth.get_block(number - 1)["timestamp"]

    full = w3.eth.get_block(number, full_transactions=True)
    assert [t["hash"] for t in full["transactions"]] == list(by_number["transactions"])
    n_tx = len(by_number["transactions"])
    assert w3.eth.get_block_transaction_count(number) == n_tx
    assert w3.eth.get_block_transaction_count(by_number["hash"]) == n_tx
    for i, tx in enumerate(full["transactions"]):
        assert tx["blockHash"] == by_number["hash"] and tx["transactionIndex"] == i
        assert w3.eth.get_transaction_by_block(number, i) == tx
        assert w3.eth.get_transaction_by_block(by_number["hash"], i) == tx
        assert w3.eth.get_transaction(tx["hash"]) == tx

    block_receipts = w3.eth.get_block_receipts(number)
    assert [r["transactionHash"] for r in block_receipts] == list(by_number["transactions"])
    for r in block_receipts:
        assert r == w3.eth.get_transaction_receipt(r["transactionHash"])
    assert sum(1 for r in block_receipts if r["transactionHash"] == receipts[-1]["transactionHash"]) == 1
    cumulative = 0
    for r in block_receipts:
        cumulative += r["gasUsed"]
        assert r["cumulativeGasUsed"] == cumulative
    assert cumulative == by_number["gasUsed"]


def test_transfer_receipt_and_balances(w3, chain):
    sender, recipient = chain.new_account(), Account.create()
    before = w3.eth.get_balance(sender.address)
    receipt = chain.send(sender, {"to": recipient.address, "value": ETH // 3})
    assert receipt["status"] == 1
    assert receipt["from"] == sender.address and receipt["to"] == recipient.address
    assert receipt["gasUsed"] == 21000
    assert receipt["contractAddress"] is None
    assert receipt["logsBloom"] is not None
    block = w3.eth.get_block(receipt["blockNumber"])
    assert receipt["blockHash"] == block["hash"]
    assert block["baseFeePerGas"] < receipt["effectiveGasPrice"]
    cost = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert w3.eth.get_balance(sender.address) == before - ETH // 3 - cost
    assert w3.eth.get_balance(recipient.address) == ETH // 3
    # history stays readable
    assert w3.eth.get_balance(recipient.address, receipt["blockNumber"] - 1) == 0
    assert w3.eth.get_balance(sender.address, receipt["blockNumber"] - 1) == before
    assert w3.eth.get_transaction_count(sender.address, receipt["blockNumber"] - 1) == 0
    assert w3.eth.get_transaction_count(sender.address, receipt["blockNumber"]) == 1


def test_pending_nonce_counts_pool(w3, chain):
    sender = chain.new_account()
    assert w3.eth.get_transaction_count(sender.address, "pending") == 0
    h = chain.send(sender, {"to": sender.address, "value": 1}, wait=False)
    # Either still in the pool or already mined: the pending nonce is 1 either way.
    assert w3.eth.get_transaction_count(sender.address, "pending") == 1
    tx = w3.eth.get_transaction(h)
    assert tx["hash"] == HexBytes(h) and tx["nonce"] == 0 and tx["from"] == sender.address
    chain.wait(h)
    assert w3.eth.get_transaction_count(sender.address, "latest") == 1


def test_unknown_things_are_null(w3, raw):
    missing = "0x" + "ab" * 32
    assert raw.result("eth_getTransactionByHash", [missing]) is None
    assert raw.result("eth_getTransactionReceipt", [missing]) is None
    assert raw.result("eth_getBlockByHash", [missing, False]) is None
    assert raw.result("eth_getBlockByNumber", [hex(w3.eth.block_number + 10_000), False]) is None


@pytest.mark.koma_only  # the seal and koma_getBlockSeal are KOMA's
def test_plain_web3_reads_blocks_and_each_seal_verifies(node, raw):
    """web3.py with no middleware reads every block (extraData within Ethereum's 32
    bytes), and each block's seal, read beside it with koma_getBlockSeal, recovers to
    the block's miner, checked here with eth_keys, independently of the node's code."""
    from eth_keys import keys

    plain = Web3(Web3.HTTPProvider(node.http_url))
    head = plain.eth.block_number
    assert head >= 2, "the chain has blocks to read"
    for number in range(max(1, head - 4), head + 1):
        block = plain.eth.get_block(number, full_transactions=True)
        assert len(block["extraData"]) <= 32
        seal = raw.result("koma_getBlockSeal", [hex(number)])
        assert seal["blockHash"] == block["hash"].to_0x_hex()
        assert int(seal["blockNumber"], 16) == number
        assert seal["producer"].lower() == block["miner"].lower()
        digest = Web3.keccak(b"KOMA block seal v1" + CHAIN_ID.to_bytes(8, "big")
                             + bytes(block["hash"]))
        assert seal["digest"] == digest.to_0x_hex()
        sig_bytes = HexBytes(seal["seal"])
        assert len(sig_bytes) == 65
        sig = keys.Signature(sig_bytes[:64] + bytes([sig_bytes[64] - 27]))
        signer = sig.recover_public_key_from_msg_hash(digest).to_checksum_address()
        assert signer == block["miner"]
    # by hash too; genesis has no seal; an unknown block is null
    by_hash = raw.result("koma_getBlockSeal", [plain.eth.get_block(head)["hash"].to_0x_hex()])
    assert by_hash["blockNumber"] == hex(head)
    genesis = raw.result("koma_getBlockSeal", ["earliest"])
    assert genesis["seal"] is None and genesis["producer"] is None
    assert raw.result("koma_getBlockSeal", ["0x" + "ab" * 32]) is None
