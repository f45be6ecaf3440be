"""Checkpoints under faults, with real processes: four `koma node` stakers and the
development L1 (a KOMA node in its own chain) on loopback.

- A peer gossiping checkpoint votes with bad signatures is banned.
- One of four stakers down: checkpoints continue, signed by the other three, with the
  absent key passed as a non-signer; back up, it signs again (and never a second root
  for a number it signed before its restart).
- The submitter in turn is down: the next staker in rotation submits after the timeout,
  and the contract never accepts a checkpoint twice.
- The L1 stopped for a minute: L2 keeps producing and finalizing; once the L1 is back,
  checkpoints resume and catch up, contiguous, none skipped or repeated.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from web3 import Web3

from cluster import Cluster, wait_until
from devnode import koma_bin

pytestmark = pytest.mark.koma_only

REPO = Path(__file__).resolve().parents[2]
INTERVAL = 8  # blocks per checkpoint here (32 by default), so that faults show quickly


def abi(name: str) -> list:
    return json.loads((REPO / "contracts" / "artifacts" / f"{name}.json").read_text())["abi"]


class L1View:
    """The root contract on the cluster's L1, read with web3.py."""

    def __init__(self, cluster: Cluster):
        contracts = json.loads(cluster.contracts_file.read_text())
        self.w3 = Web3(Web3.HTTPProvider(cluster.l1.http_url, request_kwargs={"timeout": 10}))
        self.root = self.w3.eth.contract(address=contracts["rootChain"], abi=abi("RootChain"))
        self.deploy_block = contracts["deployBlock"]

    def number(self) -> int:
        return self.root.functions.head().call()[2]

    def submissions(self) -> list:
        """Every accepted checkpoint: (number, start, end, the tx's absent list, sender)."""
        out = []
        for log in self.root.events.CheckpointSubmitted().get_logs(from_block=self.deploy_block):
            tx = self.w3.eth.get_transaction(log.transactionHash)
            _, args = self.root.decode_function_input(tx.input)
            out.append((log.args.number, log.args.start, log.args.end, bytes(args["absent"]), tx["from"]))
        return out


def assert_contiguous(subs: list) -> None:
    numbers = [s[0] for s in subs]
    assert numbers == list(range(1, len(subs) + 1)), numbers
    for prev, cur in zip(subs, subs[1:]):
        assert cur[1] == prev[2] + 1, (prev, cur)
    assert all(end - start + 1 == INTERVAL for _, start, end, _, _ in subs)


def finalized(node) -> int:
    block = node.call("eth_getBlockByNumber", ["finalized", False])
    return int(block["number"], 16) if block else 0


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path, n=4, l1=True, extra=("--checkpoint-interval", str(INTERVAL))).start()
    try:
        yield c
    finally:
        c.stop()


def test_one_staker_down_checkpoints_continue_and_it_rejoins(cluster):
    l1 = L1View(cluster)
    wait_until("checkpoint 1", lambda: l1.number() >= 1, timeout=120)

    # a peer gossiping votes for the next checkpoint with a signature that does not
    # verify is cut off and banned; the checkpoints below go on regardless
    target = cluster.nodes[0]
    res = subprocess.run([str(koma_bin()), "--log", "warn", "debug", "bad-peer", "--genesis",
                          str(cluster.genesis), "--target", target.p2p_addr, "--rpc", target.http_url,
                          "--mode", "bad-checkpoint-vote"],
                         capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "disconnected by the target" in out and "reconnection refused" in out, out
    assert "banning peer" in target.stderr()

    down = cluster.nodes[3]
    down.stop()
    first_without = l1.number() + 1
    wait_until("two checkpoints without staker 3", lambda: l1.number() >= first_without + 1, timeout=150)
    subs = l1.submissions()
    assert_contiguous(subs)
    # slot 3 (the fourth staker registered) named absent in the ones after it stopped
    # (its vote on the one in flight may have made it out before it stopped)
    assert any(absent == (3).to_bytes(2, "big") for n, _, _, absent, _ in subs if n > first_without - 1)
    # L2 finality continued with 3 of 4
    live = cluster.nodes[0]
    f = finalized(live)
    wait_until("finality to move on", lambda: finalized(live) > f + 5, timeout=60)

    # back up (and now with `finalized` meaning notarized on L1): it signs again, from
    # its stored votes where it had signed
    down.args = [*down.args, "--finalized-tag", "notarized"]
    down.start()
    back = l1.number() + 1
    wait_until("two more checkpoints", lambda: l1.number() >= back + 2, timeout=150)
    subs = l1.submissions()
    assert_contiguous(subs)
    assert any(absent == b"" for n, _, _, absent, _ in subs if n > back), \
        "all four sign again once it is back"
    assert "refusing to sign" not in down.log_tail(400)

    # its `finalized` is the last block of its newest notarized checkpoint; `safe` is
    # KoMaBFT's final block, at or above it
    def notarized_end():
        f = finalized(down)
        cp = down.call("koma_getCheckpoint", ["latest"])
        return f if f > 0 and (f + 1) % INTERVAL == 0 and cp and f <= int(cp["end"], 16) else None

    f = wait_until("finalized = a notarized checkpoint's end", notarized_end, timeout=30)
    assert down.call("koma_getFinality", [hex(f)])["status"] == "notarized"
    assert down.call("koma_getFinality", ["finalized"])["blockNumber"] == hex(f)
    assert int(down.call("eth_getBlockByNumber", ["safe", False])["number"], 16) >= f


def test_submitter_down_next_in_rotation_submits(cluster):
    """The submitter of checkpoint n is slot n mod 4 (node n mod 4 here). With it down,
    the next slot submits after the takeover timeout."""
    l1 = L1View(cluster)
    wait_until("checkpoint 1", lambda: l1.number() >= 1, timeout=120)
    n = l1.number() + 2  # a checkpoint whose range is not final yet
    submitter = cluster.nodes[n % 4]
    submitter.stop()
    wait_until(f"checkpoint {n}", lambda: l1.number() >= n, timeout=180)
    subs = l1.submissions()
    assert_contiguous(subs)
    by_number = {s[0]: s for s in subs}
    takeover = cluster.nodes[(n + 1) % 4]
    assert by_number[n][4].lower() == takeover.producer.lower(), (by_number[n], takeover.producer)
    submitter.start()


def test_l1_down_for_a_minute_then_checkpoints_catch_up(cluster):
    l1 = L1View(cluster)
    wait_until("checkpoint 1", lambda: l1.number() >= 1, timeout=120)
    node = cluster.nodes[0]
    cluster.l1.stop()
    f0, h0 = finalized(node), node.head()
    time.sleep(60)
    # L2 went on producing and finalizing without its L1
    assert node.head() >= h0 + 40 and finalized(node) >= f0 + 30
    cluster.l1.start()
    target = finalized(node) // INTERVAL  # the checkpoints the backlog holds
    wait_until(f"checkpoints to catch up to {target}", lambda: l1.number() >= target, timeout=180)
    subs = l1.submissions()
    assert_contiguous(subs)
    assert len(subs) >= target
