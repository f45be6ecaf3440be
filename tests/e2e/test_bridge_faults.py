"""Producers that forge or omit deposits, among honest ones (4 nodes with the
development L1).

A forger (a test build's `--forge-deposits-for-testing`) announces forged deposits in
its blocks' watermark and applies them in its next block as if the stakers had agreed.
Its blocks that announce a deposit L1 never had are held back by every honest importer
and never join their chain; when the forger doubles a real deposit's amount, they are
refused as invalid. An omitter
(`--omit-deposits-for-testing`) announces honestly but never applies a deposit; its
blocks stop being imported once a deposit has been agreed for a while. Blocks and
finality go on without them, and each real deposit is applied exactly once, as L1 has
it."""

from __future__ import annotations

import json
import time

import pytest
from eth_account import Account
from web3 import Web3
from web3.exceptions import BadFunctionCallOutput

from bridgeutil import CHILD_ABI, ETH_ID, KMC, L2_BRIDGE, abi, send_l1
from cluster import Cluster, wait_until
from devnode import DEV_KEYS

pytestmark = pytest.mark.koma_only


def finalized(node) -> int:
    block = node.call("eth_getBlockByNumber", ["finalized", False])
    return int(block["number"], 16) if block else 0


def first_block_of_turn(c, index: int, after: int) -> int:
    """The first block of node ``index``'s next turn after block ``after``."""
    return next(n for n in range(after + 2, after + 2 + c.sprint * (len(c.nodes) + 1))
                if c.in_turn(n) == index and c.in_turn(n - 1) != index)


def assert_applied_once(l1_bridge, children, l2_bridges, recipients, amounts) -> int:
    """Every deposit L1's bridge counted (ETH to ``recipients`` with ``amounts``, in id
    order) is final on each honest node's chain, applied exactly once as L1 has it; the
    number of deposits."""
    for token in children:
        for to, amount in zip(recipients, amounts):
            wait_until(f"the deposit to {to} final",
                       lambda: token.functions.balanceOf(to).call(block_identifier="finalized") == amount,
                       timeout=90)
    total = l1_bridge.functions.stateCounter().call()
    assert total == len(recipients)
    for b in l2_bridges:
        assert b.functions.lastStateId().call(block_identifier="finalized") == total
        applied = b.events.DepositApplied().get_logs(from_block=0)
        assert sorted((e["args"]["id"], e["args"]["to"], e["args"]["amount"]) for e in applied) == \
            [(i + 1, to, amount) for i, (to, amount) in enumerate(zip(recipients, amounts))]
    return total


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
        assert_applied_once(bridge, child, l2_bridges, recipients, amounts)
        # a burst of deposits, one per L1 block, across the forger's next whole turn: it
        # announces new ones altered, which every honest importer refuses as invalid
        burst = 2 * c.sprint + 2
        turn = first_block_of_turn(c, 3, after=honest[0].head())
        wait_until("the forger's turn to come near", lambda: honest[0].head() >= turn - 3, timeout=90)
        recipients += [Account.create().address for _ in range(burst)]
        amounts += [KMC // 7 + i for i in range(burst)]
        for to, amount in zip(recipients[3:], amounts[3:]):
            send_l1(l1, DEV_KEYS[1], bridge.functions.depositEtherFor(to), value=amount)
        assert "TEST: altering deposits" in forger.stderr(), forger.log_tail()
        total = assert_applied_once(bridge, child, l2_bridges, recipients, amounts)
        # an altered announcement is refused as invalid (and its sender banned): the burst's,
        # or a real deposit's before it if one landed in the forger's turn (then the forger
        # is cut off before the burst)
        refused = [line for node in honest for line in node.stderr().splitlines()
                   if "that are not the ones confirmed on L1" in line]
        assert any(f"up to {i} that" in line for line in refused for i in range(1, total + 1)), refused
        # every node agrees on the final chain
        n = min(finalized(node) for node in honest)
        assert len({node.hash_at(n) for node in honest}) == 1
        # the blocks announcing invented deposits were held back (not refused: L1 might
        # still have them); far below finality by the time L1 has those ids, they are
        # never looked at again
        assert any("is not on L1 as this node reads it (yet)" in node.stderr() for node in honest), \
            [node.log_tail() for node in honest]
    finally:
        c.stop()


def test_a_producer_that_omits_agreed_deposits_is_not_followed(tmp_path):
    """The producer of a 16-block turn announces deposits honestly but never applies
    one (`--omit-deposits-for-testing`). Once a deposit has been agreed for 8 s, every
    honest importer stops importing its blocks (not blamed: it may have seen finality
    late); the next producer applies the deposit, exactly once, and blocks and finality
    go on."""
    c = Cluster(tmp_path, n=4, sprint=16, l1=True)
    omitter = c.nodes[2]
    omitter.args = [*omitter.args, "--omit-deposits-for-testing"]
    try:
        c.start()
        honest = [c.nodes[i] for i in (0, 1, 3)]
        l2 = Web3(Web3.HTTPProvider(honest[0].http_url))
        l2_bridge = l2.eth.contract(address=Web3.to_checksum_address(L2_BRIDGE), abi=abi("L2Bridge"))
        l1 = Web3(Web3.HTTPProvider(c.l1.http_url))
        contracts = json.loads(c.contracts_file.read_text())
        bridge = l1.eth.contract(address=contracts["bridge"], abi=abi("Bridge"))

        # a deposit just as the omitter's turn starts: agreed within its turn
        turn = first_block_of_turn(c, 2, after=honest[0].head())
        wait_until("the omitter's turn", lambda: honest[0].head() >= turn - 1, timeout=120)
        to, amount = Account.create().address, KMC // 5
        send_l1(l1, DEV_KEYS[1], bridge.functions.depositEtherFor(to), value=amount)
        child = l2.eth.contract(address=l2_bridge.functions.childAddress(ETH_ID).call(), abi=CHILD_ABI)


        def final_balance():
            try:
                return child.functions.balanceOf(to).call(block_identifier="finalized")
            except BadFunctionCallOutput:  # the first ETH deposit deploys the child token
                return None

        wait_until("the deposit final on L2", lambda: final_balance() == amount, timeout=90)
        assert any("applies no deposit, but deposit 1 was agreed well before it" in node.stderr()
                   for node in honest), [node.log_tail() for node in honest]
        assert "banning peer" not in "".join(node.stderr() for node in honest)

        # applied once, by another producer's block
        applied = l2_bridge.events.DepositApplied().get_logs(from_block=0)
        assert [(e["args"]["id"], e["args"]["to"], e["args"]["amount"]) for e in applied] == [(1, to, amount)]
        block = l2.eth.get_block(applied[0]["blockNumber"])
        assert block["miner"].lower() != omitter.producer.lower()
        # and the chain goes on, final on every honest node alike
        start = finalized(honest[0])
        wait_until("finality to go on", lambda: finalized(honest[0]) >= start + 8, timeout=60)
        n = min(finalized(node) for node in honest)
        assert len({node.hash_at(n) for node in honest}) == 1
        assert omitter.running(), omitter.log_tail()
    finally:
        c.stop()
