"""The bridge's latencies on a local devnet (docs/benchmarks.md, "The bridge").

Starts `koma devnet` with its development L1 (1-second blocks on both chains, 2 L1
confirmations, a checkpoint every 32 L2 blocks) and measures, one operation at a time:

- deposit: from the L1 receipt of `depositERC20For` (KMC) until the amount is spendable on
  L2 (the recipient's balance shows it);
- withdrawal: from the L2 receipt of `L2Bridge.withdraw` until `koma_getWithdrawalProof`
  names a checkpoint (an exit is possible on L1), and the gas of that exit.

Run with scripts/bench-bridge [--deposits N] [--withdrawals N]; prints the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from eth_account import Account
from web3 import Web3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster import free_port_range, wait_until  # noqa: E402
from bridgeutil import KMC, L2_BRIDGE, abi  # noqa: E402
from devnode import CHAIN_ID, DEV_KEYS, koma_bin  # noqa: E402

L1_CHAIN_ID = 1337


def send(w3: Web3, key: str, call, value: int = 0, chain_id: int = L1_CHAIN_ID, **extra) -> dict:
    """bridgeutil.send_l1, polling every 50 ms so that measured latencies stay sharp."""
    account = Account.from_key(key)
    tx = call.build_transaction({"from": account.address, "value": value, "chainId": chain_id,
                                 "nonce": w3.eth.get_transaction_count(account.address), **extra})
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction), timeout=120,
        poll_latency=0.05)
    assert receipt["status"] == 1, receipt
    return receipt


def summary(name: str, values: list[float], unit: str = "s") -> None:
    values = sorted(values)
    print(f"{name}: n={len(values)} p50={statistics.median(values):.2f}{unit} "
          f"min={values[0]:.2f}{unit} max={values[-1]:.2f}{unit}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deposits", type=int, default=10)
    parser.add_argument("--withdrawals", type=int, default=3)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="koma-bench-bridge-"))
    datadir = tmp / "devnet"
    http, p2p, l1_port = free_port_range(2), free_port_range(2), free_port_range(1)
    log = open(tmp / "devnet.out", "w")
    proc = subprocess.Popen(
        [str(koma_bin()), "--log", "warn", "devnet", "--nodes", "2", "--datadir", str(datadir),
         "--http-port", str(http), "--p2p-port", str(p2p), "--l1-http-port", str(l1_port)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        contracts_file = datadir / "l1-contracts.json"
        wait_until("the L1 contracts file", contracts_file.exists, timeout=180)
        contracts = json.loads(contracts_file.read_text())
        l1 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{l1_port}"))
        l2 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{http}"))
        wait_until("L2 blocks", lambda: l2.eth.block_number >= 2, timeout=60)
        bridge = l1.eth.contract(address=contracts["bridge"], abi=abi("Bridge"))
        token = l1.eth.contract(address=contracts["stakingToken"], abi=abi("StakingToken"))
        l2_bridge = l2.eth.contract(address=Web3.to_checksum_address(L2_BRIDGE), abi=abi("L2Bridge"))
        depositor = DEV_KEYS[0]
        send(l1, depositor, token.functions.approve(bridge.address, 10**6 * KMC))

        deposit_s = []
        for i in range(args.deposits):
            to = Account.create().address
            receipt = send(l1, depositor, bridge.functions.depositERC20For(token.address, to, KMC + i))
            included = time.monotonic()
            wait_until("the deposit on L2", lambda: l2.eth.get_balance(to) == KMC + i, timeout=120,
                       interval=0.05)
            deposit_s.append(time.monotonic() - included)
            print(f"deposit {i}: L1 block {receipt['blockNumber']}, spendable on L2 after "
                  f"{deposit_s[-1]:.2f} s", flush=True)

        withdrawal_s, exit_gas = [], []
        for i in range(args.withdrawals):
            sender = DEV_KEYS[1 + i % 8]
            recipient = Account.create().address
            receipt = send(l2, sender, l2_bridge.functions.withdraw(recipient), value=KMC,
                           chain_id=CHAIN_ID, gas=200_000, maxFeePerGas=10**11,
                           maxPriorityFeePerGas=10**9)
            burned = time.monotonic()
            tx = receipt["transactionHash"].to_0x_hex()

            def proof():
                p = l2.provider.make_request("koma_getWithdrawalProof", [tx])["result"]
                return p if p is not None and p["checkpoint"] is not None else None

            p = wait_until("a checkpoint covering the withdrawal", proof, timeout=300, interval=0.2)
            withdrawal_s.append(time.monotonic() - burned)
            w, leaf = p["withdrawal"], p["blockLeaf"]
            c = Web3.to_checksum_address
            exit_args = (
                (int(w["nonce"], 16), c(w["sender"]), c(w["recipient"]), c(w["token"]), int(w["amount"], 16)),
                int(p["withdrawalIndex"], 16), p["withdrawalProof"], int(p["checkpoint"], 16),
                (int(leaf["number"], 16), int(leaf["timestamp"], 16), leaf["blockHash"], leaf["receiptsRoot"],
                 leaf["withdrawalsRoot"]),
                int(p["blockIndex"], 16), p["blockProof"])
            exited = send(l1, DEV_KEYS[9], bridge.functions.exit(exit_args), gas=300_000)
            exit_gas.append(exited["gasUsed"])
            print(f"withdrawal {i}: L2 block {receipt['blockNumber']}, exit possible after "
                  f"{withdrawal_s[-1]:.2f} s, exit gas {exited['gasUsed']}", flush=True)

        print()
        summary("deposit: L1 receipt -> spendable on L2", deposit_s)
        if withdrawal_s:
            summary("withdrawal: L2 receipt -> exit possible on L1", withdrawal_s)
            summary("exit gas (KMC to a new L1 account, devnet L1)", [float(g) for g in exit_gas], "")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()
