"""What the bridge tests share: the contracts' ABIs, sending L1 and L2 transactions with
web3.py, the exit proof as Bridge.exit takes it, and `koma bridge audit`."""

from __future__ import annotations

import json
from pathlib import Path

from eth_account import Account
from web3 import Web3

from devnode import CHAIN_ID, koma_bin, run

REPO = Path(__file__).resolve().parents[2]
KMC = 10**18
KMC_ID = "0x0000000000000000000000000000000000001010"
ETH_ID = "0xEeeeeEeeeEeEeeEeEeEeeEEEeeeeEeeeeeeeEEeE"
L2_BRIDGE = "0x0000000000000000000000000000000000001001"

# what a child token (ChildERC20) offers a holder
CHILD_ABI = [{"type": "function", "name": n, "stateMutability": m, "inputs": i,
              "outputs": [{"name": "", "type": t}]}
             for n, m, i, t in [
                 ("name", "view", [], "string"), ("symbol", "view", [], "string"),
                 ("decimals", "view", [], "uint8"), ("totalSupply", "view", [], "uint256"),
                 ("balanceOf", "view", [{"name": "a", "type": "address"}], "uint256"),
                 ("transfer", "nonpayable", [{"name": "to", "type": "address"},
                                             {"name": "amount", "type": "uint256"}], "bool")]]


def abi(name: str) -> list:
    return json.loads((REPO / "contracts" / "artifacts" / f"{name}.json").read_text())["abi"]


def artifact(name: str) -> dict:
    return json.loads((REPO / "contracts" / "artifacts" / f"{name}.json").read_text())


def send_l1(w3: Web3, key: str, call, value: int = 0) -> dict:
    """Sends `call` (a web3.py contract function or constructor) from `key`; the mined,
    successful receipt."""
    account = Account.from_key(key)
    tx = call.build_transaction({"from": account.address, "value": value, "chainId": w3.eth.chain_id,
                                 "nonce": w3.eth.get_transaction_count(account.address)})
    receipt = w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction), timeout=60)
    assert receipt["status"] == 1, receipt
    return receipt


def send_l2(l2: Web3, account, call=None, to: str | None = None, value: int = 0,
            gas: int = 200_000) -> dict:
    """Sends a contract call (or a plain transfer to `to`) on KOMA from `account`; the
    successful receipt."""
    fields = {"from": account.address, "value": value, "chainId": CHAIN_ID, "gas": gas,
              "nonce": l2.eth.get_transaction_count(account.address, "pending"),
              "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9}
    tx = call.build_transaction(fields) if call is not None else {**fields, "to": to}
    receipt = l2.eth.wait_for_transaction_receipt(
        l2.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction), timeout=60)
    assert receipt["status"] == 1, receipt
    return receipt


def fee(receipt) -> int:
    """What a transaction paid for gas, in wei."""
    return receipt["gasUsed"] * receipt["effectiveGasPrice"]


def deploy_erc20(w3: Web3, key: str, supply: int):
    """A fresh ERC-20 on the L1 (the StakingToken bytecode) holding `supply` for `key`."""
    a = artifact("StakingToken")
    bytecode = a["bytecode"]["object"] if isinstance(a["bytecode"], dict) else a["bytecode"]
    factory = w3.eth.contract(abi=a["abi"], bytecode=bytecode)
    created = send_l1(w3, key, factory.constructor(Account.from_key(key).address, supply))
    return w3.eth.contract(address=created["contractAddress"], abi=a["abi"])


def get_deposit(l2: Web3, deposit_id: int) -> dict:
    return l2.provider.make_request("koma_getDeposit", [hex(deposit_id)])["result"]


def exit_args(p: dict) -> tuple:
    """koma_getWithdrawalProof's answer as Bridge.exit's ExitProof tuple."""
    w, leaf = p["withdrawal"], p["blockLeaf"]
    address = Web3.to_checksum_address  # JSON-RPC answers are lowercase; web3.py wants checksums
    return (
        (int(w["nonce"], 16), address(w["sender"]), address(w["recipient"]), address(w["token"]),
         int(w["amount"], 16)),
        int(p["withdrawalIndex"], 16), p["withdrawalProof"], int(p["checkpoint"], 16),
        (int(leaf["number"], 16), int(leaf["timestamp"], 16), leaf["blockHash"], leaf["receiptsRoot"],
         leaf["withdrawalsRoot"]),
        int(p["blockIndex"], 16), p["blockProof"])


def checkpointed_proof(l2: Web3, tx_hash: str) -> dict | None:
    """koma_getWithdrawalProof of `tx_hash` once a checkpoint covers its block."""
    p = l2.provider.make_request("koma_getWithdrawalProof", [tx_hash])["result"]
    return p if p is not None and p["checkpoint"] is not None else None


def notarized_proof(l2: Web3, tx_hash: str) -> dict | None:
    """`checkpointed_proof`, once its checkpoint is notarized (`--l1-confirmations` deep on
    L1): what a careful relayer exits with, since an L1 reorg can still drop a checkpoint
    accepted in the newest blocks (and the node learns of it only at its next poll)."""
    p = checkpointed_proof(l2, tx_hash)
    if p is None:
        return None
    cp = l2.provider.make_request("koma_getCheckpoint", [p["checkpoint"]])["result"]
    return p if cp is not None and cp["notarized"] else None


def audit(l2_url: str, l1_url: str, contracts_file: Path, genesis: Path, block: str = "finalized"):
    """`koma bridge audit --json`: (exit code, the audit, stderr)."""
    out = run([str(koma_bin()), "bridge", "audit", "--json", "--block", block, "--l2-rpc", l2_url,
               "--l1-rpc", l1_url, "--l1-contracts", str(contracts_file), "--genesis", str(genesis)],
              timeout=120)
    report = json.loads(out.stdout) if out.stdout.strip().startswith("{") else None
    return out.returncode, report, out.stdout + out.stderr
