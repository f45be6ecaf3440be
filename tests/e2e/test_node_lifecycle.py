"""The node process itself: its devnet banner, clean shutdown and restart on the same
data directory, kill -9 under load without losing any block it reported, and
`koma db verify` over the result. Each test owns its node."""

import re
import signal
import threading
import time

import pytest
from eth_account import Account
from web3 import Web3
from web3.exceptions import TransactionNotFound

from devnode import CHAIN_ID, DEV_ADDRESSES, DEV_KEYS, IS_KOMA, koma_bin, run
from ethutil import ETH, GWEI, Chain, http_web3

VERIFY_TIMEOUT = 600


def connect(node) -> tuple[Web3, Chain]:
    w3 = http_web3(node.http_url, timeout=30)
    return w3, Chain(w3)


def db_verify(node) -> int:
    """`koma db verify` on a stopped node's datadir; returns the number of blocks verified."""
    assert not node.running()
    res = run([str(koma_bin()), "db", "verify", "--datadir", str(node.datadir)], timeout=VERIFY_TIMEOUT)
    out = res.stdout + res.stderr
    assert res.returncode == 0, f"koma db verify failed ({res.returncode}):\n{out[-4000:]}"
    m = re.search(r"verified (\d+) blocks", out)
    assert m, f"no 'verified N blocks' in:\n{out[-4000:]}"
    return int(m.group(1))


def test_devnet_banner(node):
    """Like anvil: chain id, RPC URL, the 10 dev accounts and their private keys."""
    # koma prints the banner on stdout (logs go to stderr); anvil prints everything there
    text = node.stdout() if IS_KOMA else node.output()
    assert str(CHAIN_ID) in text
    assert f"127.0.0.1:{node.port}" in text
    lower = text.lower()
    for addr, key in zip(DEV_ADDRESSES, DEV_KEYS, strict=True):
        assert addr.lower() in lower, addr
        assert key.lower().removeprefix("0x") in lower, key


@pytest.mark.koma_only
def test_cli_help():
    res = run([str(koma_bin()), "--help"], timeout=30)
    assert res.returncode == 0 and "devnet" in res.stdout
    res = run([str(koma_bin()), "devnet", "--help"], timeout=30)
    assert res.returncode == 0
    for flag in ("--datadir", "--http-port", "--block-time-ms"):
        assert flag in res.stdout, flag
    res = run([str(koma_bin()), "no-such-command"], timeout=30)
    assert res.returncode != 0


@pytest.mark.koma_only
@pytest.mark.timeout(VERIFY_TIMEOUT + 300)
def test_restart_keeps_the_chain(private_node):
    node = private_node("restart").start()
    w3, chain = connect(node)
    alice, bob = Account.from_key(DEV_KEYS[1]), Account.create().address
    receipts = [chain.send(alice, {"to": bob, "value": ETH + i}) for i in range(3)]
    token, deploy_receipt = chain.deploy(alice, "TestToken", "Persist", "PST", 10**24)
    receipts += [deploy_receipt, chain.transact(alice, token.functions.transfer(bob, 77))]
    chain.wait_for_block(receipts[-1]["blockNumber"] + 1)

    head = w3.eth.get_block("latest")
    hashes = {n: w3.eth.get_block(n)["hash"] for n in range(head["number"] + 1)}
    accounts = [alice.address, bob, DEV_ADDRESSES[0]]
    balances = {a: w3.eth.get_balance(a, head["number"]) for a in accounts}
    code = w3.eth.get_code(token.address)
    stored = [w3.eth.get_transaction_receipt(r["transactionHash"]) for r in receipts]

    assert node.stop(signal.SIGTERM) == 0, node.log_tail()
    node.start()
    w3, chain = connect(node)
    assert w3.eth.chain_id == CHAIN_ID
    assert w3.eth.block_number >= head["number"]
    for n, h in hashes.items():
        assert w3.eth.get_block(n)["hash"] == h, f"block {n} changed across the restart"
    for a in accounts:
        assert w3.eth.get_balance(a, head["number"]) == balances[a]
        assert w3.eth.get_balance(a) == balances[a]
    assert w3.eth.get_code(token.address) == code
    assert token.functions.balanceOf(bob).call() == 77
    for r in stored:
        assert w3.eth.get_transaction_receipt(r["transactionHash"]) == r
    assert w3.eth.get_transaction_count(alice.address) == 5

    # the chain continues on top of the old head, and takes new transactions
    nxt = chain.wait_for_block(head["number"] + 1)
    assert nxt["parentHash"] == head["hash"]
    chain.wait_for_block(w3.eth.block_number + 2)
    r = chain.send(alice, {"to": bob, "value": 1})
    assert r["status"] == 1 and w3.eth.get_transaction_count(alice.address) == 6
    assert w3.eth.get_balance(bob) == balances[bob] + 1

    assert node.stop(signal.SIGTERM) == 0, node.log_tail()
    assert db_verify(node) >= r["blockNumber"]


class Load:
    """Background traffic against a node, and a record of what the node reported:
    every block hash by number and every receipt's block."""

    def __init__(self, node, keys):
        self.url = node.http_url
        self.keys = keys
        self.stop = threading.Event()
        self.blocks: dict[int, bytes] = {}
        self.receipts: dict[bytes, tuple[int, bytes]] = {}
        self.sent: list[bytes] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._send, daemon=True),
                        threading.Thread(target=self._record, daemon=True)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def _send(self):
        w3 = http_web3(self.url, timeout=5)
        accounts = [Account.from_key(k) for k in self.keys]
        try:
            nonces = {a.address: w3.eth.get_transaction_count(a.address, "pending") for a in accounts}
            while not self.stop.is_set():
                base = w3.eth.get_block("latest")["baseFeePerGas"]
                for a in accounts:
                    tx = {"chainId": CHAIN_ID, "nonce": nonces[a.address], "to": Account.create().address,
                          "value": 1000, "gas": 21000, "maxFeePerGas": 3 * base + 2 * GWEI,
                          "maxPriorityFeePerGas": 2 * GWEI}
                    h = w3.eth.send_raw_transaction(a.sign_transaction(tx).raw_transaction)
                    nonces[a.address] += 1
                    with self.lock:
                        self.sent.append(h)
                time.sleep(0.05)
        except Exception as e:  # the node was killed under us
            self.errors.append(repr(e))

    def _record(self):
        w3 = http_web3(self.url, timeout=5)
        try:
            while not self.stop.is_set():
                head = w3.eth.block_number
                n = max(self.blocks, default=-1) + 1
                while n <= head:
                    self.blocks[n] = w3.eth.get_block(n)["hash"]
                    n += 1
                with self.lock:
                    pending = [h for h in self.sent if h not in self.receipts][:200]
                for h in pending:
                    try:
                        r = w3.eth.get_transaction_receipt(h)
                    except TransactionNotFound:
                        continue
                    self.receipts[h] = (r["blockNumber"], r["blockHash"])
                time.sleep(0.05)
        except Exception as e:  # the node was killed under us
            self.errors.append(repr(e))


@pytest.mark.koma_only
@pytest.mark.timeout(VERIFY_TIMEOUT + 300)
def test_kill9_loses_no_reported_block(private_node):
    node = private_node("crash").start()
    total_blocks = total_receipts = 0
    for round_no in range(2):
        w3, chain = connect(node)
        with Load(node, DEV_KEYS[1:5]) as load:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (len(load.receipts) < 40 or len(load.blocks) < 6):
                time.sleep(0.2)
            time.sleep(0.37 * (round_no + 1))  # land the kill at a different point of a block
            node.kill9()
        assert len(load.receipts) >= 40, (len(load.receipts), load.errors)
        blocks, receipts = dict(load.blocks), dict(load.receipts)
        total_blocks, total_receipts = total_blocks + len(blocks), total_receipts + len(receipts)

        node.start()
        w3, chain = connect(node)
        assert w3.eth.block_number >= max(blocks)
        for n, h in blocks.items():
            got = w3.provider.make_request("eth_getBlockByNumber", [hex(n), False])["result"]
            assert got is not None, f"round {round_no}: block {n} lost"
            assert got["hash"] == h.to_0x_hex(), f"round {round_no}: block {n} changed"
        for tx_hash, (number, block_hash) in receipts.items():
            r = w3.provider.make_request("eth_getTransactionReceipt", [tx_hash.to_0x_hex()])["result"]
            assert r is not None, f"round {round_no}: receipt of {tx_hash.to_0x_hex()} lost"
            assert (int(r["blockNumber"], 16), r["blockHash"]) == (number, block_hash.to_0x_hex())
        # and it goes on
        chain.wait_for_block(w3.eth.block_number + 2)
        assert chain.send(Account.from_key(DEV_KEYS[6]), {"to": Account.create().address,
                                                        "value": 1})["status"] == 1
    head = w3.eth.block_number
    print(f"kill -9 twice: {total_blocks} reported blocks and {total_receipts} receipts kept")

    assert node.stop(signal.SIGINT) == 0, node.log_tail()
    assert db_verify(node) >= head
