"""Misbehaviour costs stake: a staker that equivocates in KoMaBFT (a test build's
`--equivocate-for-testing`) or signs two checkpoints with one number
(`--double-sign-checkpoints-for-testing`) is slashed on L1 automatically (on the
devnet's L1 and on anvil), on the evidence the other stakers hold, exactly once; it
leaves the staker set on L1 with the next checkpoint and the L2 era sets read from L1
after that, while finality and checkpoints go on."""

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


@pytest.mark.parametrize("l1_kind", ["dev-l1", "anvil"])
def test_misbehaving_stakers_are_slashed_on_l1_and_left_out_of_later_eras(tmp_path, l1_kind):
    """Two offenders, one of each kind: node 4 equivocates in KoMaBFT, node 3 signs every
    checkpoint twice (the second time with another root). Each is slashed on L1 by the
    evidence the honest nodes hold, through its own contract entry point, exactly once;
    both leave the active set with the next checkpoint, then the eras read from L1, while
    finality and checkpoints go on with the three honest stakers. Once on the devnet's
    development L1 and once on anvil (the BLS and secp256k1 checks on another EVM)."""
    c = Cluster(tmp_path, n=5, l1=True if l1_kind == "dev-l1" else "anvil", sprint=4,
                extra=("--era-blocks", "30", "--checkpoint-interval", "8"))
    double_signer, equivocator = c.nodes[3], c.nodes[4]
    double_signer.args = [*double_signer.args, "--double-sign-checkpoints-for-testing"]
    equivocator.args = [*equivocator.args, "--equivocate-for-testing"]
    try:
        c.start()
        honest = c.nodes[:3]
        l1 = Web3(Web3.HTTPProvider(c.l1.http_url))
        contracts = json.loads(Path(c.contracts_file).read_text())
        root = l1.eth.contract(address=Web3.to_checksum_address(contracts["rootChain"]), abi=abi("RootChain"))
        offenders = {
            Web3.to_checksum_address(equivocator.producer): "reportEquivocation",
            Web3.to_checksum_address(double_signer.producer): "reportDoubleCheckpoint",
        }
        owners = {signer: root.functions.signerOwner(signer).call() for signer in offenders}
        staked = {signer: root.functions.stakers(owner).call()[2] for signer, owner in owners.items()}
        assert all(amount > 0 for amount in staked.values())

        wait_until("both offenders slashed on L1",
                   lambda: all(root.functions.slashed(s).call() for s in offenders), timeout=150)
        events = root.events.Slashed().get_logs(from_block=0)
        assert sorted(e["args"]["signer"] for e in events) == sorted(offenders), events
        for event in events:
            slash = event["args"]
            signer = slash["signer"]
            assert slash["owner"] == owners[signer]
            assert slash["amount"] == staked[signer] // 2 and slash["reward"] == staked[signer] // 2 // 10
            # by another node (the other offender's node reports honestly too)
            others = {n.producer.lower() for n in c.nodes} - {signer.lower()}
            assert slash["reporter"].lower() in others, slash
            # by its own kind of evidence
            tx = l1.eth.get_transaction(event["transactionHash"])
            called = root.decode_function_input(tx["input"])[0].fn_name
            assert called == offenders[signer], (signer, called)
            _, _, amount, slot, exit_set, *_ = root.functions.stakers(owners[signer]).call()
            assert amount == staked[signer] - staked[signer] // 2 and slot == 0 and exit_set > 0
        assert any("a staker signed two checkpoints with one number" in n.stderr() for n in honest)

        # still members of the current era, every honest node lists them as slashed
        def listed_slashed(node) -> bool:
            status = {v["address"].lower(): v["status"] for v in node.call("koma_validators")}
            return all(status.get(s.lower()) == "slashed" for s in offenders)
        wait_until("the offenders listed as slashed", lambda: all(listed_slashed(n) for n in honest), timeout=20)
        wait_until("the reporting nodes to see their receipts",
                   lambda: sum(n.stderr().count("offender slashed on L1") for n in c.nodes) >= 2, timeout=30)
        owner = owners[Web3.to_checksum_address(equivocator.producer)]
        res = run([str(koma_bin()), "--log", "warn", "staker", "status", "--l1-rpc", c.l1.http_url,
                   "--l1-contracts", str(c.contracts_file), "--owner", owner], timeout=60)
        assert res.returncode == 0, res.stderr
        status = json.loads(res.stdout)
        assert status["slashed"] is True and status["status"] in ("leaving", "unbonding"), status
        # the evidence stays refused: once per key
        wait_until("the other nodes see them slashed", lambda: any(
            "slashed on L1 already" in n.stderr() or "refused the evidence" in n.stderr() for n in c.nodes),
            timeout=30)

        # out of the active set with the next checkpoint, then out of the eras read from L1
        def active_without_them() -> int | None:
            set_id, signers, _, _ = root.functions.activeSet().call()
            return set_id if not set(offenders) & set(signers) else None
        set_id = wait_until("the offenders out of the active set on L1", active_without_them, timeout=90)

        def era_from_that_set(node) -> bool:
            validators = node.call("koma_validators")
            return (all(v["setId"] is not None and v["setId"] >= set_id for v in validators)
                    and not {s.lower() for s in offenders} & {v["address"].lower() for v in validators})
        wait_until("an era set read from L1 without them on every honest node",
                   lambda: all(era_from_that_set(n) for n in honest), timeout=180)

        start = [finalized(n) for n in honest]
        number = root.functions.head().call()[2]
        wait_until("finality going on", lambda: all(finalized(n) >= s + 8 for n, s in zip(honest, start)),
                   timeout=60)
        wait_until("checkpoints going on, signed by the honest three",
                   lambda: root.functions.head().call()[2] > number, timeout=90)
        final_n = min(finalized(n) for n in honest)
        assert len({n.hash_at(final_n) for n in c.nodes}) == 1, "conflicting final blocks"
    finally:
        for node in c.nodes:
            node.kill9()
