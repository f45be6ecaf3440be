"""A producer that seals two blocks on one parent loses its bond on L1. Four nodes, the
genesis producers and stakers, on the devnet's development L1 and on anvil as the L1,
spans of 32 blocks; node 1 (test build only) seals a second block on every parent and
gossips both. Another node proves it with `RootChain.reportDoubleSeal` (both headers and
seals), once; the candidate's bond goes, its key can never stand again, and the next spans
elect the producers without it. Blocks and finality go on."""

from __future__ import annotations

import json

import pytest
from web3 import Web3

from bridgeutil import abi
from cluster import Cluster, wait_until
from test_producers import SPAN, SPRINT, finalized, head, key_args, koma, l1_args, lower, producers

pytestmark = pytest.mark.koma_only


@pytest.fixture(scope="module", params=["dev-l1", "anvil"])
def network(request, tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("double-seal"), n=4, sprint=SPRINT,
                l1=True if request.param == "dev-l1" else "anvil",
                extra=("--span", str(SPAN), "--checkpoint-interval", "8"))
    sealer = c.nodes[1]
    sealer.args = [*sealer.args, "--double-seal-for-testing"]
    c.start()
    try:
        yield c
    finally:
        c.stop()


def test_a_producer_that_seals_two_blocks_on_one_parent_loses_its_bond(network):
    c: Cluster = network
    sealer = c.nodes[1]
    address = Web3.to_checksum_address(sealer.producer)
    l1 = Web3(Web3.HTTPProvider(c.l1.http_url))
    contracts = json.loads(c.contracts_file.read_text())
    root = l1.eth.contract(address=Web3.to_checksum_address(contracts["rootChain"]), abi=abi("RootChain"))
    bond = root.functions.minStake().call()
    count = root.functions.registrations().call()  # the genesis producers, all candidates

    wait_until("the double sealer slashed on L1", lambda: root.functions.producerSlashed(address).call(), timeout=180)
    events = root.events.ProducerSlashed().get_logs(from_block=0)
    assert [e["args"]["producer"] for e in events] == [address], events
    slash = events[0]["args"]
    assert slash["owner"] == address and slash["amount"] == bond and slash["reward"] == bond // 10, slash
    assert slash["reporter"].lower() in {n.producer.lower() for n in c.nodes} - {address.lower()}, slash
    tx = l1.eth.get_transaction(events[0]["transactionHash"])
    assert root.decode_function_input(tx["input"])[0].fn_name == "reportDoubleSeal"
    assert any("a producer sealed two blocks on one parent" in n.stderr() for n in c.nodes if n is not sealer)
    # out of the candidates for good
    assert root.functions.candidateCount().call() == count - 1
    assert address not in root.functions.producerRanking().call()[0]
    status = json.loads(koma("producer", "status", *l1_args(c), *key_args(sealer)).stdout)
    assert status["status"] == "none" and status["rank"] is None, status
    again = koma("producer", "register", *l1_args(c), *key_args(sealer))
    assert again.returncode != 0 and "ProducerBanned" in again.stderr, again.stderr

    # a later span elects the producers without it, on every node; blocks and finality go on
    def span_without_it() -> int | None:
        info = producers(c.nodes[0], {"span": head(c.nodes[0]) // SPAN + 1})
        return info and address.lower() not in lower(info["elected"]) and int(info["span"], 16)
    span = wait_until("a span without the double sealer", span_without_it, timeout=4 * SPAN)
    wait_until("every node in that span", lambda: all(head(n) >= span * SPAN + SPRINT for n in c.nodes),
               timeout=3 * SPAN)
    for n in c.nodes:
        assert address.lower() not in lower(producers(n, hex(span * SPAN + 1))["producers"])
    start = [finalized(n) for n in c.nodes]
    wait_until("finality goes on", lambda: all(finalized(n) >= s + 8 for n, s in zip(c.nodes, start)), timeout=60)
