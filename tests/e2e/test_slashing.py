"""Misbehaviour costs stake: a staker that equivocates in KoMaBFT (a test build's
`--equivocate-for-testing`) is slashed on L1 automatically, on the evidence the other
stakers hold, exactly once; it leaves the staker set on L1 with the next checkpoint and
the L2 era sets read from L1 after that, while finality goes on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from web3 import Web3

from bridgeutil import abi
from cluster import Cluster, wait_until
from devnode import koma_bin, run

pytestmark = pytest.mark.koma_only


def finalized(node) -> int:
    block = node.call("eth_getBlockByNumber", ["finalized", False])
    return int(block["number"], 16) if block else 0


def test_an_equivocating_staker_is_slashed_on_l1_and_left_out_of_later_eras(tmp_path):
    c = Cluster(tmp_path, n=4, l1=True, sprint=4, extra=("--era-blocks", "30", "--checkpoint-interval", "8"))
    cheat = c.nodes[3]
    cheat.args = [*cheat.args, "--equivocate-for-testing"]
    try:
        c.start()
        honest = c.nodes[:3]
        l1 = Web3(Web3.HTTPProvider(c.l1.http_url))
        contracts = json.loads(Path(c.contracts_file).read_text())
        root = l1.eth.contract(address=Web3.to_checksum_address(contracts["rootChain"]), abi=abi("RootChain"))
        signer = Web3.to_checksum_address(cheat.producer)
        owner = root.functions.signerOwner(signer).call()
        staked = root.functions.stakers(owner).call()[2]
        assert staked > 0

        wait_until("the equivocator slashed on L1", lambda: root.functions.slashed(signer).call(), timeout=120)
        events = root.events.Slashed().get_logs(from_block=0)
        assert len(events) == 1, events
        slash = events[0]["args"]
        assert slash["signer"] == signer and slash["owner"] == owner
        assert slash["amount"] == staked // 2 and slash["reward"] == staked // 2 // 10
        assert slash["reporter"].lower() in {n.producer.lower() for n in honest}, slash
        _, _, amount, slot, exit_set, *_ = root.functions.stakers(owner).call()
        assert amount == staked - staked // 2 and slot == 0 and exit_set > 0
        # still a member of the current era, every honest node lists it as slashed
        def listed_slashed(node) -> bool:
            entry = next(v for v in node.call("koma_validators") if v["address"].lower() == signer.lower())
            return entry["status"] == "slashed"
        wait_until("the equivocator listed as slashed", lambda: all(listed_slashed(n) for n in honest), timeout=20)
        wait_until("the reporting node to see its receipt",
                   lambda: any("equivocator slashed on L1" in n.stderr() for n in c.nodes), timeout=30)
        res = run([str(koma_bin()), "--log", "warn", "staker", "status", "--l1-rpc", c.l1.http_url,
                   "--l1-contracts", str(c.contracts_file), "--owner", owner], timeout=60)
        assert res.returncode == 0, res.stderr
        status = json.loads(res.stdout)
        assert status["slashed"] is True and status["status"] in ("leaving", "unbonding"), status
        # the evidence stays refused: once per key
        wait_until("the other nodes see it slashed", lambda: any(
            "slashed on L1 already" in n.stderr() or "refused the evidence" in n.stderr() for n in c.nodes),
            timeout=30)

        # out of the active set with the next checkpoint, then out of the eras read from L1
        def active_without_it() -> int | None:
            set_id, signers, _, _ = root.functions.activeSet().call()
            return set_id if signer not in signers else None
        set_id = wait_until("the equivocator out of the active set on L1", active_without_it, timeout=90)

        def era_from_that_set(node) -> bool:
            validators = node.call("koma_validators")
            return (all(v["setId"] is not None and v["setId"] >= set_id for v in validators)
                    and signer.lower() not in {v["address"].lower() for v in validators})
        wait_until("an era set read from L1 without it on every honest node",
                   lambda: all(era_from_that_set(n) for n in honest), timeout=180)

        start = [finalized(n) for n in honest]
        wait_until("finality going on", lambda: all(finalized(n) >= s + 8 for n, s in zip(honest, start)),
                   timeout=60)
        final_n = min(finalized(n) for n in honest)
        assert len({n.hash_at(final_n) for n in c.nodes}) == 1, "conflicting final blocks"
    finally:
        for node in c.nodes:
            node.kill9()
