"""KoMaBFT finality on a 4-node devnet (separate processes, equal stake): blocks become
final within seconds, clients can ask how final a block is, and finality degrades and
recovers as the survival bound says when stakers die and come back.

With 4 equal stakers: 3 online (75 %) can still form summits for the 1 % and 1/3
thresholds (the 1/3 quorum at level 2 is 72.2 %), not for 1/2 or 2/3 (their quorums
stay above 75 % at every level); 2 online (50 %) cannot finalize anything.
"""

from __future__ import annotations

import time

import pytest
from eth_account import Account

from cluster import Cluster, WsCollector, wait_until
from devnode import DEV_KEYS
from ethutil import Chain, http_web3

pytestmark = pytest.mark.koma_only

ONE_THIRD, TWO_THIRDS = 1, 3  # indices into koma_getMilestone


@pytest.fixture
def net(tmp_path):
    c = Cluster(tmp_path, n=4, sprint=4).start()
    yield c
    for node in c.nodes:
        node.kill9()


def milestones(node) -> list[int]:
    """Last final block number per threshold (-1 for none)."""
    return [int(t["lastFinal"]["number"], 16) if t["lastFinal"] else -1
            for t in node.call("koma_getMilestone")]


def test_blocks_become_final_and_clients_can_ask(net):
    a = net.nodes[0]
    wait_until("block 3 final at 1/3 on every node",
               lambda: all(milestones(n)[ONE_THIRD] >= 3 for n in net.nodes), timeout=30)
    ms = milestones(a)
    assert [t["threshold"] for t in a.call("koma_getMilestone")] == ["1/100", "1/3", "1/2", "2/3"]
    # Everyone online: every threshold progresses, and final means final everywhere.
    wait_until("2/3 finality", lambda: milestones(a)[TWO_THIRDS] >= 3, timeout=30)
    final_n = milestones(a)[ONE_THIRD]
    hashes = {n.hash_at(final_n) for n in net.nodes}
    assert len(hashes) == 1
    # The tags follow the node's threshold (1/3).
    finalized = a.call("eth_getBlockByNumber", ["finalized", False])
    assert int(finalized["number"], 16) >= ms[ONE_THIRD]
    assert a.call("eth_getBlockByNumber", ["safe", False])["number"] is not None

    info = a.call("koma_getFinality", [a.hash_at(final_n)])
    assert info["status"] == "final" and info["confidence"] >= 1 / 3
    assert int(info["blockNumber"], 16) == final_n
    head = a.call("koma_getFinality", ["latest"])
    assert int(head["blockNumber"], 16) >= final_n
    assert a.call("koma_getFinality", ["0x" + "ab" * 32]) is None
    resp = a.call_raw("koma_getFinality", ["not a block"])
    assert resp["error"]["code"] == -32602

    # A transaction's finality by its hash.
    chain = Chain(http_web3(a.http_url))
    receipt = chain.send(Account.from_key(DEV_KEYS[2]), {"to": Account.create().address, "value": 1})
    tx = receipt["transactionHash"].to_0x_hex()
    by_tx = wait_until("the transfer to be final",
                       lambda: (f := a.call("koma_getFinality", [tx]))["status"] == "final" and f, timeout=30)
    assert int(by_tx["blockNumber"], 16) == receipt["blockNumber"]

    stakers = a.call("koma_validators")
    assert len(stakers) == 4 and all(s["stake"] == 100 and not s["faulty"] for s in stakers)
    now_ms = time.time() * 1000
    assert all(now_ms - s["latestTimestamp"] < 10_000 for s in stakers), stakers


def test_finalized_subscription(net):
    a = net.nodes[1]
    wait_until("first final block", lambda: milestones(a)[ONE_THIRD] >= 1, timeout=30)
    sub = WsCollector(a.ws_url, ["finalized"])
    wait_until("three finalized notifications", lambda: len(sub.items) >= 3, timeout=30)
    items = sub.close()
    numbers = [int(i["number"], 16) for i in items]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    for i in items:
        assert a.hash_at(int(i["number"], 16)) == i["hash"]


def test_finality_follows_the_survival_bound_as_stakers_die_and_return(net):
    nodes = net.nodes
    wait_until("finality at every threshold",
               lambda: all(m >= 2 for m in milestones(nodes[0])), timeout=30)

    # One of four down: 1 % and 1/3 go on, 1/2 and 2/3 stop.
    nodes[3].kill9()
    time.sleep(3)
    before = milestones(nodes[0])
    wait_until("1/3 finality with three stakers",
               lambda: milestones(nodes[0])[ONE_THIRD] >= before[ONE_THIRD] + 3, timeout=40)
    # Summits begun with the dead staker's last units may still complete at 2/3 right
    # after the kill; after that, 2/3 stands still while 1/3 goes on.
    after = milestones(nodes[0])
    time.sleep(5)
    later = milestones(nodes[0])
    assert later[TWO_THIRDS] == after[TWO_THIRDS], (before, after, later)
    assert later[ONE_THIRD] > after[TWO_THIRDS]

    # Two of four down: nothing becomes final, and nothing conflicts.
    nodes[2].kill9()
    time.sleep(5)
    stalled = milestones(nodes[0])
    head_then = nodes[0].head()
    time.sleep(8)
    assert nodes[0].head() > head_then, "blocks still come"
    assert milestones(nodes[0])[ONE_THIRD] == stalled[ONE_THIRD], "finality must halt with half the stake"
    for n in nodes[:2]:
        m = milestones(n)[ONE_THIRD]
        assert m < 0 or nodes[0].hash_at(m) == n.hash_at(m)

    # Both back: they catch up on the DAG and finality resumes.
    nodes[2].start()
    nodes[3].start()
    wait_until("finality to resume",
               lambda: milestones(nodes[0])[ONE_THIRD] >= stalled[ONE_THIRD] + 3, timeout=60)
    wait_until("the restarted stakers to finalize too",
               lambda: milestones(nodes[3])[ONE_THIRD] >= stalled[ONE_THIRD] + 3, timeout=60)
    final_n = milestones(nodes[0])[ONE_THIRD]
    assert len({n.hash_at(final_n) for n in nodes}) == 1


def test_an_equivocating_staker_is_exposed_everywhere_and_safety_holds(tmp_path):
    c = Cluster(tmp_path, n=4, sprint=4)
    cheat = c.nodes[3]
    cheat.args = [*cheat.args, "--equivocate-for-testing"]
    try:
        c.start()
        honest = c.nodes[:3]
        wait_until("every node to hold evidence against staker 3",
                   lambda: all(n.call("koma_validators")[3]["faulty"] for n in c.nodes), timeout=45)
        assert not any(v["faulty"] for v in honest[0].call("koma_validators")[:3])
        assert "equivocation detected" in honest[0].stderr()
        # 25 % faulty: the 1 % detector stops for good; 1/3 goes on with the 75 % honest.
        start = milestones(honest[0])
        wait_until("1/3 finality despite the equivocator",
                   lambda: milestones(honest[0])[ONE_THIRD] >= start[ONE_THIRD] + 3, timeout=45)
        stuck_1pct = milestones(honest[0])[0]
        time.sleep(3)
        assert milestones(honest[0])[0] == stuck_1pct
        final_n = min(milestones(n)[ONE_THIRD] for n in honest)
        assert final_n > 0
        assert len({n.hash_at(final_n) for n in c.nodes}) == 1, "conflicting final blocks"
    finally:
        for node in c.nodes:
            node.kill9()


def era(node) -> int:
    return node.call("koma_validators")[0]["era"]


def test_eras_switch_and_every_threshold_carries_over(tmp_path):
    """Eras of 8 milestones: the stakers switch eras every few seconds, every threshold
    keeps finalizing across the switches, and a staker restarted a few eras later
    catches up and takes part again."""
    c = Cluster(tmp_path, n=4, sprint=4, extra=("--era-blocks", "8"))
    try:
        c.start()
        nodes = c.nodes
        wait_until("era 2 on every node", lambda: all(era(n) >= 2 for n in nodes), timeout=60)
        start = milestones(nodes[0])
        wait_until("every threshold to go on across a switch",
                   lambda: all(m >= s + 8 for m, s in zip(milestones(nodes[0]), start)),
                   timeout=45)
        assert era(nodes[0]) > 2
        final_n = min(milestones(n)[TWO_THIRDS] for n in nodes)
        assert len({n.hash_at(final_n) for n in nodes}) == 1

        # A staker down for a few eras reloads its eras, catches up and votes again.
        nodes[1].kill9()
        down_era = era(nodes[0])
        wait_until("two more eras without it", lambda: era(nodes[0]) >= down_era + 2, timeout=60)
        nodes[1].start()
        wait_until("the restarted staker to reach the others' era",
                   lambda: era(nodes[1]) >= era(nodes[0]) and era(nodes[1]) > down_era, timeout=60)
        before = milestones(nodes[1])
        wait_until("the restarted staker to finalize at 2/3 (which needs all four)",
                   lambda: milestones(nodes[0])[TWO_THIRDS] > before[TWO_THIRDS] + 3
                   and milestones(nodes[1])[TWO_THIRDS] > before[TWO_THIRDS] + 3, timeout=60)
        final_n = min(milestones(n)[ONE_THIRD] for n in nodes)
        assert len({n.hash_at(final_n) for n in nodes}) == 1
    finally:
        for node in c.nodes:
            node.kill9()
