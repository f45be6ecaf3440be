"""Heavy transactions: the per-transaction gas cap (EIP-7825, 2^24 gas, the chain spec's
``maxTxGas``) and a chain that keeps producing blocks while transactions at the cap loop
until they run out of gas.

Progress and inclusion are asserted, never timings: a loaded machine may be slow, but
blocks must keep coming and every heavy transaction must be included.
"""

import json
import time
from pathlib import Path

import pytest
from web3 import Web3

from devnode import CHAIN_ID, IS_KOMA
from ethutil import ETH

MAX_TX_GAS = 2**24  # EIP-7825
REPO = Path(__file__).resolve().parents[2]
POOL_ERROR = -32000

# Runtime JUMPDEST PUSH0 JUMP (5b 5f 56): loops until out of gas. Init code:
# PUSH1 3, PUSH1 10, PUSH0, CODECOPY (runtime to memory 0), PUSH1 3, PUSH0, RETURN.
LOOP_RUNTIME = "5b5f56"
LOOP_INITCODE = "0x6003600a5f3960035ff3" + LOOP_RUNTIME


def deploy_loop(chain) -> str:
    owner = chain.new_account()
    receipt = chain.send(owner, {"data": LOOP_INITCODE, "gas": 100_000})
    assert receipt["status"] == 1, receipt
    address = receipt["contractAddress"]
    assert chain.w3.eth.get_code(address).hex().removeprefix("0x") == LOOP_RUNTIME
    return address


@pytest.mark.koma_only  # anvil (Prague rules) has no per-transaction gas cap
def test_gas_above_the_cap_is_refused_with_geths_text(w3, chain, raw):
    spec = json.loads((REPO / "genesis" / "devnet.json").read_text())
    assert spec["maxTxGas"] == MAX_TX_GAS
    # The devnet's block gas limit admits a transaction at the cap (ADR 0009).
    assert w3.eth.get_block("latest")["gasLimit"] >= MAX_TX_GAS

    a = chain.new_account(fund_wei=10 * ETH)
    over = a.sign_transaction(chain.fill(a, {"to": a.address, "value": 0, "gas": MAX_TX_GAS + 1,
                                             "chainId": CHAIN_ID})).raw_transaction
    resp = raw.request("eth_sendRawTransaction", [over.to_0x_hex()])
    assert "error" in resp, resp
    assert resp["error"]["code"] == POOL_ERROR, resp
    assert resp["error"]["message"] == \
        f"transaction gas limit too high (cap: {MAX_TX_GAS}, tx: {MAX_TX_GAS + 1})", resp
    # It left no trace.
    assert raw.result("eth_getTransactionByHash", [Web3.keccak(over).to_0x_hex()]) is None
    assert w3.eth.get_transaction_count(a.address, "pending") == 0

    # Exactly the cap is accepted (and a transfer only uses 21000 of it).
    receipt = chain.send(a, {"to": a.address, "value": 0, "gas": MAX_TX_GAS})
    assert receipt["status"] == 1
    assert receipt["gasUsed"] == 21_000


def test_looping_transactions_at_the_cap_are_included_and_blocks_keep_coming(w3, chain):
    loop = deploy_loop(chain)
    senders = chain.new_accounts(4, fund_wei=ETH)
    transfer_from = chain.new_account()
    start = w3.eth.block_number

    heavy = [chain.send(s, {"to": loop, "value": 0, "gas": MAX_TX_GAS}, wait=False)
             for s in senders]
    # A second round from the same senders, and an ordinary transfer among them.
    heavy += [chain.send(s, {"to": loop, "value": 0, "gas": MAX_TX_GAS}, wait=False)
              for s in senders[:2]]
    plain = chain.send(transfer_from, {"to": senders[0].address, "value": 1, "gas": 21_000},
                       wait=False)

    receipts = [chain.wait(h, timeout=120) for h in heavy]
    for r in receipts:
        # The loop never returns: out of gas, every unit of the cap used, but included.
        assert r["status"] == 0, r
        assert r["gasUsed"] == MAX_TX_GAS, r
        assert r["blockNumber"] > start
    assert chain.wait(plain, timeout=120)["status"] == 1

    # The chain goes on producing blocks after them.
    last = max(r["blockNumber"] for r in receipts)
    chain.wait_for_block(last + 3, timeout=120)
    blocks = [w3.eth.get_block(n) for n in range(start + 1, last + 4)]
    for block in blocks:
        assert block["gasUsed"] <= block["gasLimit"]
    if IS_KOMA:
        # A block holds at most gasLimit // cap of them (one on the devnet).
        per_block = {}
        for r in receipts:
            per_block[r["blockNumber"]] = per_block.get(r["blockNumber"], 0) + 1
        limit = blocks[0]["gasLimit"]
        assert max(per_block.values()) <= limit // MAX_TX_GAS, per_block
    # For the log only (whole seconds; never asserted: a loaded machine may be slow).
    stamps = [b["timestamp"] for b in blocks]
    print(f"blocks {start + 1}..{last + 3}: gas used {[b['gasUsed'] for b in blocks]}, "
          f"intervals (s) {[b - a for a, b in zip(stamps, stamps[1:])]}")
    # The node still answers and accepts work.
    receipt = chain.send(transfer_from, {"to": senders[1].address, "value": 1, "gas": 21_000})
    assert receipt["status"] == 1
    # and the head keeps moving
    head = w3.eth.block_number
    deadline = time.monotonic() + 60
    while w3.eth.block_number <= head and time.monotonic() < deadline:
        time.sleep(0.1)
    assert w3.eth.block_number > head
