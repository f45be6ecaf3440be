"""Checkpoints to an external L1: anvil (Foundry's reference node, from the npm registry)
instead of the development L1. `koma devnet --l1-rpc` deploys the root contracts to it,
funds and registers the stakers, and the nodes' checkpoints are accepted there; the
gas of each submission is read from anvil's receipts."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from web3 import Web3

from cluster import free_port_range, wait_until
from devnode import anvil_bin, koma_bin

pytestmark = pytest.mark.koma_only

REPO = Path(__file__).resolve().parents[2]
INTERVAL = 8


def test_devnet_checkpoints_on_anvil(tmp_path):
    anvil_port = free_port_range(1)
    anvil_log = tmp_path / "anvil.log"
    with open(anvil_log, "w") as out:
        anvil = subprocess.Popen(
            [str(anvil_bin()), "--host", "127.0.0.1", "--port", str(anvil_port), "--chain-id", "31337",
             "--hardfork", "prague", "--block-time", "1"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{anvil_port}"
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 10}))
    devnet = None
    try:
        wait_until("anvil", lambda: w3.is_connected(), timeout=30)
        datadir = tmp_path / "devnet"
        http, p2p = free_port_range(2), free_port_range(2)
        log = tmp_path / "devnet.out"
        with open(log, "w") as out:
            devnet = subprocess.Popen(
                [str(koma_bin()), "--log", "warn", "devnet", "--nodes", "2", "--datadir", str(datadir),
                 "--http-port", str(http), "--p2p-port", str(p2p), "--l1-rpc", url,
                 "--checkpoint-interval", str(INTERVAL)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        contracts_file = datadir / "l1-contracts.json"
        wait_until("the deployment on anvil", lambda: contracts_file.exists() or devnet.poll() is not None,
                   timeout=120)
        assert devnet.poll() is None, log.read_text()
        contracts = json.loads(contracts_file.read_text())
        assert contracts["l1ChainId"] == 31337
        abi = json.loads((REPO / "contracts" / "artifacts" / "RootChain.json").read_text())["abi"]
        root = w3.eth.contract(address=contracts["rootChain"], abi=abi)
        wait_until("two checkpoints on anvil", lambda: root.functions.head().call()[2] >= 2, timeout=150)
        logs = root.events.CheckpointSubmitted().get_logs(from_block=contracts["deployBlock"])
        assert [(l.args.number, l.args.start, l.args.end) for l in logs[:2]] == \
            [(1, 0, INTERVAL - 1), (2, INTERVAL, 2 * INTERVAL - 1)]
        for l in logs[:2]:
            receipt = w3.eth.get_transaction_receipt(l.transactionHash)
            assert receipt.status == 1
            # both stakers signed: the flat all-sign cost (forge: 182,176)
            assert 150_000 < receipt.gasUsed < 200_000, receipt.gasUsed
            print(f"checkpoint {l.args.number} on anvil: {receipt.gasUsed} gas")

        # An L1 reorg drops an accepted checkpoint (anvil_rollback removes its block and
        # the submitter's nonce with it): the stakers submit the same checkpoint again,
        # the node's view follows the new transaction, and checkpoints go on.
        n = root.functions.head().call()[2]
        wait_until(f"checkpoint {n + 1}", lambda: root.functions.head().call()[2] >= n + 1, timeout=60)
        dropped = next(l for l in root.events.CheckpointSubmitted().get_logs(from_block=contracts["deployBlock"])
                       if l.args.number == n + 1)
        depth = w3.eth.block_number - dropped.blockNumber + 1
        assert w3.provider.make_request("anvil_rollback", [depth]).get("error") is None
        assert root.functions.head().call()[2] == n, "the rollback dropped the checkpoint"
        wait_until(f"checkpoint {n + 1} again", lambda: root.functions.head().call()[2] >= n + 1, timeout=60)
        again = next(l for l in root.events.CheckpointSubmitted().get_logs(from_block=contracts["deployBlock"])
                     if l.args.number == n + 1)
        assert (again.args.start, again.args.end, again.args.root) == \
            (dropped.args.start, dropped.args.end, dropped.args.root)
        assert root.functions.checkpointRoot(n + 1).call() == dropped.args.root
        l2 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{http}"))

        def node_follows():
            again_now = next(l for l in root.events.CheckpointSubmitted().get_logs(
                from_block=contracts["deployBlock"]) if l.args.number == n + 1)
            cp = l2.provider.make_request("koma_getCheckpoint", [hex(n + 1)])["result"]
            return cp is not None and cp["l1TxHash"] == "0x" + bytes(again_now.transactionHash).hex() \
                and int(cp["l1Block"], 16) == again_now.blockNumber

        wait_until("the node to follow the new transaction", node_follows, timeout=30)
        wait_until(f"checkpoint {n + 3}", lambda: root.functions.head().call()[2] >= n + 3, timeout=90)
        numbers = [l.args.number for l in root.events.CheckpointSubmitted().get_logs(
            from_block=contracts["deployBlock"])]
        assert numbers == list(range(1, len(numbers) + 1)), numbers
    finally:
        if devnet is not None:
            devnet.terminate()
            try:
                devnet.wait(timeout=60)
            except subprocess.TimeoutExpired:
                devnet.kill()
        anvil.terminate()
        anvil.wait(timeout=30)
