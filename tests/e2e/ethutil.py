"""Client-side helpers: local signing (the node has no unlocked accounts), funding fresh
accounts from a dev account, deploying the fixture contracts, raw JSON-RPC."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import requests
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hexbytes import HexBytes
from web3 import AsyncWeb3, Web3, WebSocketProvider
from web3.exceptions import TimeExhausted

from devnode import CHAIN_ID, DEV_KEYS

ARTIFACTS = Path(__file__).resolve().parents[1] / "fixtures" / "artifacts"
GWEI = 10**9
ETH = 10**18
TIP = 2 * GWEI  # above the pool's 1 gwei minimum tip
RECEIPT_TIMEOUT = 60

TRANSFER_LOG_ADDRESS = "0x0000000000000000000000000000000000001010"
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
LOG_TRANSFER_TOPIC = Web3.keccak(
    text="LogTransfer(address,address,address,uint256,uint256,uint256,uint256,uint256)")
LOG_FEE_TRANSFER_TOPIC = Web3.keccak(
    text="LogFeeTransfer(address,address,address,uint256,uint256,uint256,uint256,uint256)")
ERC20_TRANSFER_TOPIC = Web3.keccak(text="Transfer(address,address,uint256)")


def artifact(name: str) -> dict:
    return json.loads((ARTIFACTS / f"{name}.json").read_text())


def topic_address(addr: str) -> str:
    """An address as a 32-byte log topic."""
    return "0x" + "00" * 12 + addr.lower().removeprefix("0x")


def address_from_topic(topic) -> str:
    return Web3.to_checksum_address(HexBytes(topic)[-20:])


def encode_error(signature: str, args: list) -> HexBytes:
    """ABI-encoded revert data of a custom error (or Error(string) / Panic(uint256))."""
    types = signature[signature.index("(") + 1:-1].split(",") if "()" not in signature else []
    return HexBytes(Web3.keccak(text=signature)[:4] + abi_encode(types, args))


def logs_of(receipt, address: str) -> list:
    """The receipt's logs emitted by one contract (koma adds transfer-log entries from
    0x...1010 to every receipt, so 'all logs' is never just the contract's)."""
    return [log for log in receipt["logs"] if log["address"].lower() == address.lower()]


def hexint(x) -> int:
    return x if isinstance(x, int) else int(x, 16)


def http_web3(url: str, timeout: float = 60) -> Web3:
    """A plain web3 HTTP client, as a DApp makes one: no middleware (KOMA headers are
    Ethereum headers, extraData within 32 bytes; the producer's seal travels beside
    them and is read with koma_getBlockSeal)."""
    return Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}))


def ws_web3(url: str) -> AsyncWeb3:
    """An async WebSocket client (use as `async with ws_web3(url) as w3`)."""
    return AsyncWeb3(WebSocketProvider(url))


class Chain:
    """A web3 HTTP client plus a faucet (dev account 0) and helpers to sign and send."""

    def __init__(self, w3: Web3):
        self.w3 = w3
        self.faucet: LocalAccount = Account.from_key(DEV_KEYS[0])

    # ---- accounts -------------------------------------------------------------
    def new_account(self, fund_wei: int = 10 * ETH) -> LocalAccount:
        acct = Account.create()
        if fund_wei:
            self.fund([acct.address], fund_wei)
        return acct

    def new_accounts(self, n: int, fund_wei: int = 10 * ETH) -> list[LocalAccount]:
        accts = [Account.create() for _ in range(n)]
        self.fund([a.address for a in accts], fund_wei)
        return accts

    def fund(self, addresses: list[str], amount: int) -> list[dict]:
        hashes = [self.send(self.faucet, {"to": a, "value": amount}, wait=False) for a in addresses]
        return [self.wait(h) for h in hashes]

    # ---- transactions ---------------------------------------------------------
    def fees(self, tip: int = TIP) -> dict:
        base = self.w3.eth.get_block("latest")["baseFeePerGas"]
        return {"maxFeePerGas": 2 * base + tip, "maxPriorityFeePerGas": tip}

    def fill(self, account: LocalAccount, tx: dict) -> dict:
        """Fill chainId, nonce (pending), EIP-1559 fees and gas, unless given."""
        tx = dict(tx)
        tx.setdefault("chainId", CHAIN_ID)
        tx.setdefault("nonce", self.w3.eth.get_transaction_count(account.address, "pending"))
        tx_type = tx.get("type")
        if "gasPrice" not in tx and tx_type not in (0, 1, "0x0", "0x1"):
            for k, v in self.fees().items():
                tx.setdefault(k, v)
        if "gas" not in tx:
            est = {k: v for k, v in tx.items() if k in ("to", "value", "data", "accessList")}
            est["from"] = account.address
            tx["gas"] = self.w3.eth.estimate_gas(est)
        return tx

    def sign(self, account: LocalAccount, tx: dict) -> HexBytes:
        return account.sign_transaction(self.fill(account, tx)).raw_transaction

    def send_raw(self, raw) -> HexBytes:
        return self.w3.eth.send_raw_transaction(raw)

    def send(self, account: LocalAccount, tx: dict, wait: bool = True):
        """Sign locally and send; returns the receipt (wait=True) or the tx hash."""
        h = self.send_raw(self.sign(account, tx))
        return self.wait(h) if wait else h

    def wait(self, tx_hash, timeout: float = RECEIPT_TIMEOUT) -> dict:
        try:
            return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=timeout, poll_latency=0.2)
        except TimeExhausted as e:
            raise AssertionError(f"no receipt for {HexBytes(tx_hash).to_0x_hex()} in {timeout}s") from e

    def wait_for_block(self, number: int, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.w3.eth.block_number >= number:
                return self.w3.eth.get_block(number)
            time.sleep(0.1)
        raise AssertionError(f"block {number} not produced within {timeout}s")

    # ---- contracts ------------------------------------------------------------
    def deploy(self, account: LocalAccount, name: str, *args):
        art = artifact(name)
        factory = self.w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])
        data = factory.constructor(*args).build_transaction({"from": account.address, "gas": 0})["data"]
        receipt = self.send(account, {"data": data})
        assert receipt["status"] == 1, f"deploying {name} failed: {receipt}"
        return self.w3.eth.contract(address=receipt["contractAddress"], abi=art["abi"]), receipt

    def transact(self, account: LocalAccount, fn, value: int = 0, wait: bool = True, **tx):
        """Call a contract function in a signed transaction."""
        built = fn.build_transaction({"from": account.address, "value": value, "gas": 0,
                                      "maxFeePerGas": 0, "maxPriorityFeePerGas": 0})
        tx = {"to": built["to"], "data": built["data"], "value": value, **tx}
        return self.send(account, tx, wait=wait)


class RawRpc:
    """Plain JSON-RPC over HTTP with requests, for what web3.py would hide (error codes,
    batches, malformed bodies)."""

    def __init__(self, url: str):
        self.url = url
        self.session = requests.Session()
        self._id = 0

    def post(self, body: Any, timeout: float = 30) -> requests.Response:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return self.session.post(self.url, data=data, timeout=timeout,
                                 headers={"Content-Type": "application/json"})

    def request(self, method: str, params: list | None = None) -> dict:
        self._id += 1
        resp = self.post({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params or []})
        return resp.json()

    def result(self, method: str, params: list | None = None):
        resp = self.request(method, params)
        assert "error" not in resp, f"{method}{params}: {resp['error']}"[:1000]
        return resp["result"]

    def error(self, method: str, params: list | None = None) -> dict:
        resp = self.request(method, params)
        assert "error" in resp, f"{method}{params} should fail, got {resp}"[:1000]
        return resp["error"]
