"""Stakers elect the block producers on L1. Five nodes, four of them the genesis
producers and stakers, on the devnet's development L1 and on anvil as the L1, spans of
32 blocks: the fifth registers as a producer candidate (`koma producer register`), a
staker moves its vote to it (`koma staker vote`), and it produces in a later span; then
a producer stops and the reserve candidate replaces it for the rest of the span, at the
same block on every node. Blocks and finality go on throughout, with no restart."""

from __future__ import annotations

import json
import subprocess

import pytest
from eth_account import Account
from web3 import Web3

from bridgeutil import KMC, abi, send_l1
from cluster import Cluster, wait_until
from devnode import DEV_KEYS, koma_bin, run

pytestmark = pytest.mark.koma_only

SPAN = 32
SPRINT = 4


def arg(node, flag: str) -> str:
    return node.args[node.args.index(flag) + 1]


def koma(*args: str) -> subprocess.CompletedProcess:
    return run([str(koma_bin()), "--log", "warn", *args], timeout=180)


def l1_args(c: Cluster) -> list[str]:
    return ["--l1-rpc", c.l1.http_url, "--l1-contracts", str(c.contracts_file)]


def key_args(node) -> list[str]:
    return ["--keystore", arg(node, "--producer-keystore"), "--password-file", arg(node, "--password-file")]


def finalized(node) -> int:
    block = node.call("eth_getBlockByNumber", ["finalized", False])
    return int(block["number"], 16) if block else 0


def head(node) -> int:
    return int(node.call("eth_blockNumber"), 16)


def lower(addresses) -> list[str]:
    return [a.lower() for a in addresses]


def producers(node, at=None) -> dict | None:
    return node.call("koma_producers", [] if at is None else [at])


def coinbase(node, number: int) -> str:
    return node.call("eth_getBlockByNumber", [hex(number), False])["miner"].lower()


@pytest.fixture(scope="module", params=["dev-l1", "anvil"])
def elections(request, tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("producers"), n=5, sprint=SPRINT,
                l1=True if request.param == "dev-l1" else "anvil",
                extra=("--stakers", "4", "--producers", "4", "--span", str(SPAN),
                       "--checkpoint-interval", "8"))
    c.start()
    try:
        wait_until("finality on every node", lambda: all(finalized(n) > 0 for n in c.nodes), timeout=90)
        yield c
    finally:
        c.stop()


def test_stakers_vote_a_new_producer_in_and_a_silent_one_is_replaced_mid_span(elections):
    c: Cluster = elections
    genesis = c.producers[:4]
    newcomer = c.nodes[4]
    address = newcomer.producer.lower()

    # span 0: the genesis producers; the fifth node runs but does not produce
    now = producers(c.nodes[0])
    assert now["electedBy"] in ("genesis", "l1"), now
    assert lower(now["producers"]) == genesis, now
    assert address not in lower(now["producers"])
    bad = c.nodes[0].call_raw("koma_producers", [{"spam": 1}])
    assert bad["error"]["code"] == -32602, bad

    # the fifth node's key gets KMC for the bond (and gas money where the L1's genesis
    # did not fund the devnet keys: anvil), and registers as a candidate
    l1 = Web3(Web3.HTTPProvider(c.l1.http_url))
    contracts = json.loads(c.contracts_file.read_text())
    token = l1.eth.contract(address=Web3.to_checksum_address(contracts["stakingToken"]), abi=abi("StakingToken"))
    root = l1.eth.contract(address=Web3.to_checksum_address(contracts["rootChain"]), abi=abi("RootChain"))
    checksum = Web3.to_checksum_address(address)
    send_l1(l1, DEV_KEYS[0], token.functions.transfer(checksum, 10 * KMC))
    if l1.eth.get_balance(checksum) < 10**18:
        funder = Account.from_key(DEV_KEYS[0])
        tx = {"to": checksum, "value": 10**19, "gas": 21_000, "chainId": l1.eth.chain_id,
              "nonce": l1.eth.get_transaction_count(funder.address), "gasPrice": 2 * l1.eth.gas_price}
        l1.eth.wait_for_transaction_receipt(l1.eth.send_raw_transaction(funder.sign_transaction(tx).raw_transaction))
    res = koma("producer", "register", *l1_args(c), *key_args(newcomer))
    assert res.returncode == 0, res.stderr
    assert f"registered producer candidate {checksum}" in res.stdout, res.stdout
    status = json.loads(koma("producer", "status", *l1_args(c), *key_args(newcomer),
                             "--rpc", newcomer.http_url).stdout)
    assert status["status"] == "candidate" and status["rank"] == 5 and status["votes"] == "0", status
    assert status["producing"] is False, status
    again = koma("producer", "register", *l1_args(c), *key_args(newcomer))
    assert again.returncode != 0 and "CandidateExists" in again.stderr, again.stderr

    # staker 0 moves its vote from its own producer to the newcomer: the newcomer ranks
    # fourth (ties keep the registration order), producer 0 drops to the reserve
    res = koma("staker", "vote", checksum, *l1_args(c), *key_args(c.nodes[0]))
    assert res.returncode == 0, res.stderr
    ranking = root.functions.producerRanking().call()
    assert lower(ranking[0]) == genesis[1:] + [address, genesis[0]], ranking
    staker = json.loads(koma("staker", "status", *l1_args(c), *key_args(c.nodes[0])).stdout)
    assert staker["vote"].lower() == address, staker
    voted_at = head(c.nodes[0])

    # a later span elects it, the same on every node, with producer 0 as the reserve
    def elected_span() -> int | None:
        info = producers(c.nodes[0], {"span": head(c.nodes[0]) // SPAN + 1})
        if info and address in lower(info["elected"]):
            return int(info["span"], 16)
        return None
    wait_until("a span that elects the newcomer", lambda: elected_span() is not None, timeout=4 * SPAN)
    span = elected_span()
    assert span * SPAN > voted_at
    wait_until("every node knows that span's election",
               lambda: all(producers(n, {"span": span}) for n in c.nodes), timeout=30)
    elected = [producers(n, {"span": span}) for n in c.nodes]
    for info in elected:
        assert info["electedBy"] == "l1", info
        assert lower(info["elected"]) == genesis[1:] + [address], info
        assert lower(info["reserves"]) == [genesis[0]], info
        assert info["l1BlockHash"] == elected[0]["l1BlockHash"] and info["sourceBlock"] == hex((span - 1) * SPAN)

    # it produces in that span, and every node has the same blocks
    first = span * SPAN + SPAN - 1
    wait_until("blocks of the new producer's span", lambda: all(head(n) >= span * SPAN + SPAN - 1 for n in c.nodes),
               timeout=3 * SPAN)
    sealed = [coinbase(c.nodes[0], b) for b in range(span * SPAN, span * SPAN + SPAN)]
    assert address in sealed, sealed
    assert genesis[0] not in sealed, sealed  # no longer a producer in this span
    assert all(coinbase(n, first) == coinbase(c.nodes[0], first) for n in c.nodes)
    status = json.loads(koma("producer", "status", *l1_args(c), *key_args(newcomer)).stdout)
    assert status["rank"] == 4 and status["votes"] == "1000", status

    # producer 1 stops: once it misses its sprint, reserve producer 0 takes its place for
    # the rest of the span, from the same block on every node
    c.nodes[1].stop()
    live = [n for i, n in enumerate(c.nodes) if i != 1]

    def replacement() -> dict | None:
        info = producers(live[0])
        found = [r for r in info["replacements"] if r["replaced"].lower() == genesis[1]] if info else []
        return found[0] if found else None
    wait_until("producer 1 replaced", lambda: replacement() is not None, timeout=3 * SPAN)
    replaced = replacement()
    assert replaced["by"].lower() == genesis[0], replaced
    from_block = int(replaced["fromBlock"], 16)
    assert from_block % SPRINT == 0
    wait_until("blocks past the replacement on every node",
               lambda: all(head(n) >= from_block + 2 * SPRINT for n in live), timeout=60)
    for n in live:
        info = producers(n, hex(from_block + 1))
        assert [r for r in info["replacements"] if r["replaced"].lower() == genesis[1]] == [replaced], info
        assert genesis[1] not in lower(info["producers"]) and genesis[0] in lower(info["producers"]), info
        before = producers(n, hex(from_block - 1))
        assert genesis[1] in lower(before["producers"]), before
    # producer 0 seals blocks again, and finality goes on
    span_end = (from_block // SPAN + 1) * SPAN - 1
    wait_until("the replacement producing", lambda: genesis[0] in [
        coinbase(live[0], b) for b in range(from_block, min(head(live[0]), span_end) + 1)], timeout=3 * SPAN)
    start = [finalized(n) for n in live]
    wait_until("finality goes on", lambda: all(finalized(n) >= s + 8 for n, s in zip(live, start)), timeout=60)

