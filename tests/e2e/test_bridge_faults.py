"""A producer that forges deposits, among honest ones (4 nodes with the development L1;
the forger runs a test build's `--forge-deposits-for-testing`, announces the forged
deposits in its blocks' watermark and applies them in its next block as if the stakers
had agreed). Its blocks that announce a deposit L1 never had are held back by every
honest importer and never join their chain; once L1 has a deposit with that id, or when
the forger doubles a real deposit's amount, they are refused as invalid. Blocks and
finality go on without them, and each real deposit is applied exactly once, as L1 has
it."""

from __future__ import annotations

import json
import time

import pytest
from eth_account import Account
from web3 import Web3

from bridgeutil import CHILD_ABI, ETH_ID, KMC, L2_BRIDGE, abi, send_l1
from cluster import Cluster, wait_until
from devnode import DEV_KEYS

pytestmark = pytest.mark.koma_only


def finalized(node) -> int:
    block = node.call("eth_getBlockByNumber", ["finalized", False])
    return int(block["number"], 16) if block else 0


def test_a_producer_that_invents_or_alters_deposits_is_refused(tmp_path):
    c = Cluster(tmp_path, n=4, l1=True)
    forger = c.nodes[3]
    forger.args = [*forger.args, "--forge-deposits-for-testing"]
    try:
        c.start()
        honest = c.nodes[:3]
        l2 = [Web3(Web3.HTTPProvider(n.http_url)) for n in honest]
        l2_bridges = [w3.eth.contract(address=Web3.to_checksum_address(L2_BRIDGE), abi=abi("L2Bridge"))
                      for w3 in l2]
        wait_until("the forger to invent a deposit", lambda: "TEST: inventing a deposit" in forger.stderr(),
                   timeout=90)
        # two more turns of the forger: blocks and finality go on without its blocks
        start = finalized(honest[0])
        wait_until("finality past two more turns of the forger",
                   lambda: finalized(honest[0]) >= start + 2 * c.sprint * len(c.nodes), timeout=90)
        for bridge in l2_bridges:
            assert bridge.functions.lastStateId().call(block_identifier="finalized") == 0
            assert bridge.functions.lastStateId().call() == 0
        assert forger.running(), forger.log_tail()

        # real deposits, several turns apart: whoever applies them, the honest chain has
        # each exactly once with the amount L1 locked
        l1 = Web3(Web3.HTTPProvider(c.l1.http_url))
        contracts = json.loads(c.contracts_file.read_text())
        bridge = l1.eth.contract(address=contracts["bridge"], abi=abi("Bridge"))
        recipients = [Account.create().address for _ in range(3)]
        amounts = [KMC // 3 + i for i in range(3)]
        for to, amount in zip(recipients, amounts):
            send_l1(l1, DEV_KEYS[1], bridge.functions.depositEtherFor(to), value=amount)
            time.sleep(6)
        child = [w3.eth.contract(address=b.functions.childAddress(ETH_ID).call(), abi=CHILD_ABI)
                 for w3, b in zip(l2, l2_bridges)]
        for token in child:
            for to, amount in zip(recipients, amounts):
                wait_until(f"the deposit to {to} final",
                           lambda: token.functions.balanceOf(to).call(block_identifier="finalized") == amount,
                           timeout=90)
        last = bridge.functions.stateCounter().call()
        assert last == 3
        for w3, b in zip(l2, l2_bridges):
            assert b.functions.lastStateId().call(block_identifier="finalized") == 3
            applied = b.events.DepositApplied().get_logs(from_block=0)
            assert sorted((e["args"]["id"], e["args"]["to"], e["args"]["amount"]) for e in applied) == \
                [(i + 1, to, amount) for i, (to, amount) in enumerate(zip(recipients, amounts))]
        # every node agrees on the final chain
        n = min(finalized(node) for node in honest)
        assert len({node.hash_at(n) for node in honest}) == 1
        # the blocks held back for inventing deposit 1 were refused once L1 had another
        assert any("announces deposits up to 1 that are not the ones confirmed on L1" in node.stderr()
                   for node in honest), \
            [node.log_tail() for node in honest]
        if "TEST: altering deposits" in forger.stderr():
            # the forger doubled a real deposit in its turn: refused as invalid
            assert any("that are not the ones confirmed on L1" in node.stderr() for node in honest), \
                [node.log_tail() for node in honest]
    finally:
        c.stop()
