"""Many nodes: separate ``koma node`` processes gossiping over libp2p on loopback.

Producer rotation, transactions sent to any node, the in-turn producer killed and
restarted, a 2+2 partition healed (clients see the reorg), misbehaving peers banned,
and a late joiner syncing a 10,000-block chain. Devnets here use sprints of 4 blocks
so every producer's turn comes within seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from eth_account import Account

from cluster import Cluster, ProcNode, WsCollector, agreed_height, free_port_range, wait_until
from devnode import CHAIN_ID, DEV_KEYS, koma_bin, rss_mb
from ethutil import TRANSFER_LOG_ADDRESS, Chain, http_web3

pytestmark = pytest.mark.koma_only


@pytest.fixture
def cluster(tmp_path):
    made: list[Cluster] = []

    def make(**kw) -> Cluster:
        c = Cluster(tmp_path, **kw)
        made.append(c)
        return c.start()

    yield make
    for c in made:
        for node in c.nodes:
            node.kill9()


def send_transfer(node: ProcNode, key_index: int, value: int = 1000) -> str:
    chain = Chain(http_web3(node.http_url))
    acct = Account.from_key(DEV_KEYS[key_index])
    to = Account.create().address
    return chain.send(acct, {"to": to, "value": value, "gas": 21_000}, wait=False).to_0x_hex()


def receipt(node: ProcNode, tx_hash: str):
    return node.call("eth_getTransactionReceipt", [tx_hash])


def test_four_nodes_rotate_agree_and_include_transactions_sent_anywhere(cluster):
    c = cluster(n=4, sprint=4)
    nodes = c.nodes
    wait_until("block 17 on every node", lambda: all(n.head() >= 17 for n in nodes), timeout=90)
    for n in nodes:
        assert n.peer_count() == 3, f"{n.name} has {n.peer_count()} peers"
        assert n.call("eth_syncing") is False
    for number in range(1, 17):
        hashes = {n.hash_at(number) for n in nodes}
        assert len(hashes) == 1, f"nodes disagree on block {number}: {hashes}"
        block = nodes[0].block(number)
        in_turn = c.producers[c.in_turn(number)]
        # Everyone is up, so every block is the in-turn producer's (difficulty 4).
        assert block["miner"].lower() == in_turn, f"block {number} sealed by {block['miner']}"
        assert int(block["difficulty"], 16) == 4

    # A transfer sent to each node is gossiped and included, whoever is in turn.
    hashes = [send_transfer(n, 1 + i) for i, n in enumerate(nodes)]
    for h in hashes:
        r = wait_until(f"receipt of {h}", lambda h=h: receipt(nodes[0], h), timeout=30)
        assert r["status"] == "0x1"
        for n in nodes[1:]:
            other = wait_until(f"receipt of {h} on {n.name}", lambda n=n, h=h: receipt(n, h))
            assert other["blockHash"] == r["blockHash"]


def test_killed_in_turn_producer_is_replaced_then_resyncs_and_resumes(cluster):
    c = cluster(n=4, sprint=4)
    nodes = c.nodes
    wait_until("block 2", lambda: all(n.head() >= 2 for n in nodes))
    # Kill the producer whose turn is next (or current), at the start of its sprint.
    head = nodes[0].head()
    victim = nodes[c.in_turn(head + c.sprint)]
    start = (head // c.sprint + 1) * c.sprint
    wait_until(f"block {start - 1}", lambda: nodes[0].head() >= start - 1, timeout=30, interval=0.05)
    victim.kill9()
    survivors = [n for n in nodes if n is not victim]
    h = agreed_height(survivors) or wait_until("survivors to agree", lambda: agreed_height(survivors))
    kept = survivors[0].hash_at(h)

    # The victim's sprint is produced by the next in succession after a backoff.
    backup = c.producers[(victim.index + 1) % 4]
    wait_until(f"block {start + c.sprint} without {victim.name}",
               lambda: all(n.head() >= start + c.sprint for n in survivors), timeout=60)
    for number in range(max(start, h + 1), start + c.sprint):
        block = survivors[0].block(number)
        if c.in_turn(number) == victim.index:
            assert block["miner"].lower() == backup, f"block {number}: {block['miner']}"
            assert int(block["difficulty"], 16) == 3
    # No block the majority had was lost.
    assert all(n.hash_at(h) == kept for n in survivors)

    # Back up: it syncs to the head and produces its next turn.
    victim.start()
    wait_until(f"{victim.name} to catch up", lambda: agreed_height(nodes), timeout=60)
    restarted_at = victim.head()
    mine = victim.producer.lower()

    def sealed_again():
        top = victim.head()
        return any(victim.block(n)["miner"].lower() == mine for n in range(restarted_at + 1, top + 1))

    wait_until(f"{victim.name} to seal a block again", sealed_again, timeout=60, interval=1)
    assert agreed_height(nodes) is not None or wait_until("agreement", lambda: agreed_height(nodes))


def split_halves(nodes: list[ProcNode], blocked: bool) -> None:
    """Blocks (or unblocks) every peer link between the first and the second half."""
    half = len(nodes) // 2
    side_a, side_b = nodes[:half], nodes[half:]
    method = "admin_blockPeer" if blocked else "admin_unblockPeer"
    for mine, theirs in ((side_a, side_b), (side_b, side_a)):
        for n in mine:
            for other in theirs:
                assert n.call(method, [other.peer_id]) is True


def test_partition_heals_into_one_chain_and_clients_see_the_reorg(cluster):
    c = cluster(n=4, sprint=4)
    nodes = c.nodes
    wait_until("full mesh", lambda: all(n.peer_count() == 3 for n in nodes))
    side_a, side_b = nodes[:2], nodes[2:]
    watchers = {
        n.name: (WsCollector(n.ws_url, ["logs", {"address": TRANSFER_LOG_ADDRESS}]),
                 WsCollector(n.ws_url, ["newHeads"]))
        for n in (side_a[0], side_b[0])
    }

    def split(blocked: bool):
        split_halves(nodes, blocked)

    split(True)
    wait_until("the split", lambda: all(n.peer_count() == 1 for n in nodes))
    fork_from = max(n.head() for n in nodes)
    tx_a = send_transfer(side_a[0], 5)
    tx_b = send_transfer(side_b[0], 6)
    wait_until("each side to include its transfer",
               lambda: receipt(side_a[1], tx_a) and receipt(side_b[1], tx_b), timeout=60)
    wait_until("both sides to grow", lambda: all(n.head() >= fork_from + 4 for n in nodes), timeout=60)
    assert side_a[0].hash_at(fork_from + 3) != side_b[0].hash_at(fork_from + 3), "no fork happened"
    assert receipt(side_a[0], tx_b) is None and receipt(side_b[0], tx_a) is None

    split(False)
    wait_until("the mesh to heal", lambda: all(n.peer_count() == 3 for n in nodes), timeout=60)
    top = wait_until("one chain", lambda: agreed_height(nodes), timeout=90)
    assert top > fork_from
    # Both transfers end up in the one chain: the loser's was unwound and re-included.
    for tx in (tx_a, tx_b):
        r = wait_until(f"{tx} on the final chain", lambda tx=tx: receipt(nodes[0], tx), timeout=60)
        assert all(receipt(n, tx)["blockHash"] == r["blockHash"] for n in nodes)

    results = {name: (logs.close(), heads.close()) for name, (logs, heads) in watchers.items()}
    removed = {name: [l for l in logs if l.get("removed")] for name, (logs, _) in results.items()}
    losers = [name for name, r in removed.items() if r]
    assert len(losers) == 1, f"exactly one side should see removed logs: {removed}"
    loser = losers[0]
    removed_txs = {l["transactionHash"] for l in removed[loser]}
    assert removed_txs & {tx_a, tx_b}, f"the loser's transfer log was not reported removed: {removed_txs}"
    # newHeads on the losing side announced the winning chain's blocks.
    winner_hashes = {nodes[0].hash_at(n) for n in range(fork_from + 1, top + 1)}
    announced = {h["hash"] for h in results[loser][1]}
    assert winner_hashes & announced, "the losing side never announced the new head"


def final_blocks(node: ProcNode) -> dict[str, tuple[int, str] | None]:
    """The node's last final block per threshold."""
    return {t["threshold"]: (int(t["lastFinal"]["number"], 16), t["lastFinal"]["hash"])
            if t["lastFinal"] else None
            for t in node.call("koma_getMilestone")}


def test_finality_resumes_after_every_heal(cluster):
    """2+2 splits of four equal stakers, healed again and again. During a split neither
    side has a quorum and both extend their own branch; after each heal, finality at 1/3
    must resume on every node within 15 s (the other side's units name blocks a node
    never imported, and the two sides' fork choices disagree until one branch is final),
    and no two final blocks may conflict at any threshold."""
    c = cluster(n=4, sprint=4)
    nodes = c.nodes
    wait_until("full mesh", lambda: all(n.peer_count() == 3 for n in nodes))
    wait_until("first finality", lambda: all(final_blocks(n)["1/3"] for n in nodes), timeout=60)
    seen: dict[tuple[str, int], set[str]] = {}

    def record():
        for n in nodes:
            for threshold, final in final_blocks(n).items():
                if final:
                    seen.setdefault((threshold, final[0]), set()).add(final[1])

    heal_times = []
    for round_ in range(3):
        split_halves(nodes, True)
        wait_until("the split", lambda: all(n.peer_count() == 1 for n in nodes))
        fork_from = max(n.head() for n in nodes)
        wait_until("both sides to grow",
                   lambda: all(n.head() >= fork_from + 6 for n in nodes), timeout=60)
        assert nodes[0].hash_at(fork_from + 5) != nodes[3].hash_at(fork_from + 5), \
            f"round {round_}: no fork happened"
        record()
        before = max(final_blocks(n)["1/3"][0] for n in nodes)
        split_halves(nodes, False)
        healed = time.monotonic()
        wait_until(f"round {round_}: finality at 1/3 to resume on every node",
                   lambda: all(final_blocks(n)["1/3"][0] > before for n in nodes), timeout=15)
        heal_times.append(time.monotonic() - healed)
        record()
    print(f"heal -> new final block at 1/3 on every node: {[f'{t:.1f}s' for t in heal_times]}")
    # One chain: every final block any node reported, at any threshold, is the block
    # at that height on every node now.
    wait_until("one chain", lambda: agreed_height(nodes), timeout=60)
    record()
    for (threshold, number), hashes in sorted(seen.items()):
        assert len(hashes) == 1, f"conflicting final blocks at {threshold} #{number}: {hashes}"
        for n in nodes:
            assert n.hash_at(number) in hashes, \
                f"{n.name}: final block #{number} ({threshold}) is not on its chain"


@pytest.mark.parametrize("mode", ["garbage", "oversized", "invalid-block", "extreme-header",
                                  "reordered-deposits"])
def test_misbehaving_peer_is_banned_without_effect_on_the_chain(cluster, mode):
    """extreme-header: blocks sealed by the in-turn producer key whose gas_used, number
    or timestamp is u64::MAX, or whose extraData is 64 KiB. reordered-deposits: blocks
    sealed by the in-turn producer key that apply deposit 2 before deposit 1."""
    c = cluster(n=2, sprint=4)
    target = c.nodes[0]
    wait_until("block 2", lambda: all(n.head() >= 2 for n in c.nodes))
    rss_before = rss_mb(target.proc.pid)
    res = subprocess.run([str(koma_bin()), "--log", "warn", "debug", "bad-peer", "--genesis", str(c.genesis),
                          "--target", target.p2p_addr, "--mode", mode],
                         capture_output=True, text=True, timeout=120)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "disconnected by the target" in out and "reconnection refused" in out, out
    assert target.running()
    assert "banning peer" in target.stderr()
    if mode == "reordered-deposits":
        assert "applies deposit 1 after deposit 2" in target.stderr(), target.log_tail()
    before = target.head()
    wait_until("the chain to go on", lambda: all(n.head() >= before + 2 for n in c.nodes), timeout=30)
    assert wait_until("agreement", lambda: agreed_height(c.nodes)) is not None
    assert target.peer_count() == 1  # only the honest node
    growth = rss_mb(target.proc.pid) - rss_before
    assert growth < 100, f"{mode}: the target's RSS grew by {growth:.0f} MB"


def test_late_joiner_syncs_a_10000_block_chain(tmp_path):
    blocks = 10_000
    chain_dir = tmp_path / "chain"
    gen = subprocess.run([str(koma_bin()), "bench", "gen-chain", "--dir", str(chain_dir),
                          "--blocks", str(blocks), "--txs-per-block", "2"],
                         capture_output=True, text=True, timeout=600)
    assert gen.returncode == 0, gen.stdout + gen.stderr
    genesis = chain_dir / "genesis.json"
    rpc_base = free_port_range(2)
    p2p_base = free_port_range(2, avoid=range(rpc_base, rpc_base + 2))
    common = ["node", "--genesis", str(genesis), "--p2p-addr", "127.0.0.1", "--no-discovery",
              "--admin-rpc"]
    server = ProcNode(tmp_path, "server", rpc_base, ["--log", "info", *common, "--datadir", str(chain_dir / "node"),
                                                     "--http-port", str(rpc_base), "--p2p-port", str(p2p_base)])
    joiner = None
    try:
        server.start()
        assert server.head() == blocks
        boot = server.call("admin_nodeInfo")["listenAddrs"][0]
        joiner = ProcNode(tmp_path, "joiner", rpc_base + 1,
                          ["--log", "info", *common, "--datadir", str(tmp_path / "fresh"),
                           "--http-port", str(rpc_base + 1), "--p2p-port", str(p2p_base + 1),
                           "--bootnodes", boot])
        joiner.start()
        progress = []

        def synced():
            status = joiner.call("eth_syncing")
            if status:
                progress.append(status)
            return joiner.head() == blocks

        wait_until("the joiner to sync", synced, timeout=900, interval=0.5)
        assert joiner.hash_at(blocks) == server.hash_at(blocks)
        assert joiner.call("eth_getBalance", [Account.from_key(DEV_KEYS[0]).address, "latest"]) == \
            server.call("eth_getBalance", [Account.from_key(DEV_KEYS[0]).address, "latest"])
        assert progress, "eth_syncing never reported progress"
        assert int(progress[-1]["highestBlock"], 16) == blocks
        assert int(progress[0]["currentBlock"], 16) < blocks
        wait_until("eth_syncing false", lambda: joiner.call("eth_syncing") is False, timeout=30)
        assert "sync finished" in joiner.stderr()
        assert int(joiner.call("eth_chainId"), 16) == CHAIN_ID
    finally:
        if joiner:
            joiner.kill9()
        server.kill9()


def pids_with(arg: str) -> list[int]:
    """Processes whose command line has ``node`` and the argument ``arg``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"node" in argv and arg.encode() in argv:
            found.append(int(pid))
    return found


def test_devnet_stops_loudly_when_a_node_dies(tmp_path):
    """`koma devnet` watches its node processes: when one dies (kill -9 here), the
    devnet stops the others and exits non-zero, saying which node died."""
    http, p2p = free_port_range(2), free_port_range(2)
    datadir = tmp_path / "devnet"
    log = tmp_path / "devnet.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(koma_bin()), "--log", "warn", "devnet", "--nodes", "2", "--datadir", str(datadir),
             "--http-port", str(http), "--p2p-port", str(p2p),
             "--l1-http-port", str(free_port_range(1))],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        manifest = datadir / "devnet.json"
        wait_until("the devnet manifest", manifest.exists, timeout=60)
        dirs = [n["datadir"] for n in json.loads(manifest.read_text())["nodes"]]
        pid = wait_until("node 1's process", lambda: (pids_with(dirs[1]) or [None])[0], timeout=60)
        probe = ProcNode(tmp_path, "probe", http, [])
        wait_until("node 0 to produce", lambda: probe.head() >= 2, timeout=60)
        os.kill(pid, signal.SIGKILL)
        proc.wait(timeout=60)
        text = log.read_text()
        assert proc.returncode != 0, text
        assert "devnet node 1 died" in text, text
        wait_until("the devnet to stop node 0 too", lambda: not pids_with(dirs[0]), timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
