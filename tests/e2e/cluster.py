"""Networks of separate ``koma node`` processes for the fault tests.

``koma devnet --nodes N --init-only`` prepares the data directory (chain spec,
encrypted producer keystores, libp2p identities) and writes ``devnet.json`` with each
node's exact command line; the harness starts, kills and restarts the nodes one by one
from those command lines. Every process is a :class:`devnode.DevNode`, so it dies with
the test run and its logs are attached to a failing test's report.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import subprocess
import threading
import time
from pathlib import Path

import websockets

from devnode import DevNode, anvil_bin, ephemeral_start, koma_bin, rpc_call


def _ports_free(base: int, n: int) -> bool:
    for port in range(base, base + n):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port_range(n: int, avoid: range | None = None) -> int:
    """A base port with ``n`` consecutive free ports (not overlapping ``avoid``), below
    the ephemeral range."""
    top = max(ephemeral_start(), 12_000 + n)
    for _ in range(200):
        base = random.randrange(10_000, top - n)
        if avoid and (base < avoid.stop and avoid.start < base + n):
            continue
        if _ports_free(base, n):
            return base
    raise RuntimeError(f"no {n} consecutive free ports")


class ProcNode(DevNode):
    """A ``koma`` process with an explicit argument list."""

    def __init__(self, workdir: Path, name: str, port: int, args: list[str]):
        super().__init__(workdir, name=name, port=port)
        self.args = args

    def command(self) -> list[str]:
        return [str(koma_bin()), *self.args]

    # ---- JSON-RPC shortcuts ---------------------------------------------------
    def call_raw(self, method: str, params: list | None = None) -> dict:
        return rpc_call(self.http_url, method, params)

    def call(self, method: str, params: list | None = None):
        resp = rpc_call(self.http_url, method, params)
        if "error" in resp:
            raise AssertionError(f"{self.name} {method}: {resp['error']}")
        return resp["result"]

    def head(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def block(self, number: int) -> dict | None:
        return self.call("eth_getBlockByNumber", [hex(number), False])

    def hash_at(self, number: int) -> str | None:
        block = self.block(number)
        return block["hash"] if block else None

    def peer_count(self) -> int:
        return int(self.call("net_peerCount"), 16)


class ClusterNode(ProcNode):
    def __init__(self, workdir: Path, entry: dict):
        port = int(entry["rpcUrl"].rsplit(":", 1)[1])
        super().__init__(workdir, f"node-{entry['index']}", port, entry["args"])
        self.index = entry["index"]
        self.peer_id = entry["peerId"]
        self.p2p_addr = entry["p2pAddr"]
        self.producer = entry["producer"]


class AnvilL1(DevNode):
    """anvil (Foundry's reference node, from the npm registry) as the L1: 1-second blocks,
    Prague rules, chain id 31337."""

    def __init__(self, workdir: Path, port: int):
        super().__init__(workdir, name="anvil", port=port)

    def command(self) -> list[str]:
        return [str(anvil_bin()), "--host", "127.0.0.1", "--port", str(self.port), "--chain-id", "31337",
                "--hardfork", "prague", "--block-time", "1"]


class Cluster:
    """``n`` producer nodes of a devnet with ``sprint`` blocks per turn."""

    def __init__(self, workdir: Path, n: int = 4, sprint: int = 4, block_time_ms: int = 1000,
                 extra: tuple[str, ...] = (), l1: bool | str = False, deploy_extra: tuple[str, ...] = ()):
        """With ``l1``, the devnet's development L1 runs too (or anvil, with ``l1="anvil"``;
        started first, the contracts deployed and the genesis stakers registered by ``koma
        l1 deploy``, with ``deploy_extra``), and the nodes sign and submit checkpoints to it."""
        self.dir = Path(workdir) / "cluster"
        rpc_base = free_port_range(n)
        p2p_base = free_port_range(n, avoid=range(rpc_base, rpc_base + n))
        l1_port = free_port_range(1, avoid=range(rpc_base, rpc_base + n))
        if l1 == "anvil":
            l1_args = ["--l1-rpc", f"http://127.0.0.1:{l1_port}"]
        elif l1:
            l1_args = ["--l1-http-port", str(l1_port)]
        else:
            l1_args = ["--no-l1"]
        cmd = [str(koma_bin()), "devnet", "--nodes", str(n), "--datadir", str(self.dir),
               "--init-only", "--admin-rpc", "--sprint", str(sprint),
               "--block-time-ms", str(block_time_ms),
               "--http-port", str(rpc_base), "--p2p-port", str(p2p_base), *l1_args, *extra]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, f"devnet --init-only failed:\n{res.stdout}\n{res.stderr}"
        self.manifest = json.loads((self.dir / "devnet.json").read_text())
        self.genesis = Path(self.manifest["genesis"])
        self.sprint = sprint
        self.nodes = [ClusterNode(self.dir / "logs", e) for e in self.manifest["nodes"]]
        self.producers = [n.producer.lower() for n in self.nodes]
        self.l1 = None
        self.deploy_extra = deploy_extra
        if l1:
            entry = self.manifest["l1"]
            port = int(entry["rpcUrl"].rsplit(":", 1)[1])
            self.l1 = AnvilL1(self.dir / "logs", port) if l1 == "anvil" else \
                ProcNode(self.dir / "logs", "l1", port, entry["args"])
            self.contracts_file = Path(entry["contractsFile"])

    def start(self) -> "Cluster":
        if self.l1 is not None:
            self.l1.start()
            res = subprocess.run(
                [str(koma_bin()), "--log", "warn", "l1", "deploy", "--l1-rpc", self.l1.http_url,
                 "--genesis", str(self.genesis), "--out", str(self.contracts_file),
                 "--dev-stakers", str(self.manifest.get("stakers", len(self.nodes))),
                 *self.deploy_extra],
                capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
            assert res.returncode == 0, f"koma l1 deploy failed:\n{res.stdout}\n{res.stderr}"
        for node in self.nodes:
            node.start()
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        if self.l1 is not None:
            self.l1.stop()

    def in_turn(self, number: int) -> int:
        """Index of the node in turn for block ``number``."""
        return (number // self.sprint) % len(self.nodes)

    def node_of(self, producer: str) -> ClusterNode:
        return next(n for n in self.nodes if n.producer.lower() == producer.lower())


def wait_until(what: str, cond, timeout: float = 60.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = cond()
            if last:
                return last
        except (OSError, ValueError, AssertionError) as e:  # a node restarting
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def agreed_height(nodes: list[ProcNode]) -> int | None:
    """The highest block number all ``nodes`` have with the same hash, if it is at most a
    few blocks below their heads (None if they disagree there)."""
    low = min(n.head() for n in nodes)
    hashes = {n.hash_at(low) for n in nodes}
    return low if len(hashes) == 1 else None


class WsCollector:
    """Collects the notifications of one ``eth_subscribe`` in a background thread."""

    def __init__(self, url: str, params: list):
        self.url, self.params = url, params
        self.items: list[dict] = []
        self.ready = threading.Event()
        self._stop = threading.Event()
        self.error: Exception | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        if not self.ready.wait(20):
            raise AssertionError(f"subscription {params} on {url} not ready: {self.error}")

    async def _run(self):
        try:
            async with websockets.connect(self.url, max_size=None) as ws:
                await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe",
                                          "params": self.params}))
                reply = json.loads(await ws.recv())
                if "result" not in reply:
                    raise RuntimeError(f"subscribe failed: {reply}")
                self.ready.set()
                while not self._stop.is_set():
                    try:
                        msg = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                    except asyncio.TimeoutError:
                        continue
                    if msg.get("method") == "eth_subscription":
                        self.items.append(msg["params"]["result"])
        except Exception as e:  # noqa: BLE001 - reported to the test
            self.error = e
            self.ready.set()

    def close(self) -> list[dict]:
        self._stop.set()
        self._thread.join(10)
        return self.items
