"""Starting, stopping and crashing a local dev chain for the end-to-end tests.

The target is chosen by the environment:

- ``E2E_TARGET=koma`` (default): ``$KOMA_BIN devnet --datadir D --http-port P
  --block-time-ms MS``; ``KOMA_BIN`` defaults to ``$CARGO_TARGET_DIR/debug/koma``.
- ``E2E_TARGET=anvil``: Foundry's anvil with the same chain id, block time and
  hardfork, so the suite itself can be checked against a real Ethereum node.

Every node runs in its own session (process group) and gets SIGKILL from the kernel
if the test process dies (PR_SET_PDEATHSIG), so nothing outlives the test run.
"""

from __future__ import annotations

import atexit
import ctypes
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

TARGET = os.environ.get("E2E_TARGET", "koma").strip().lower()
if TARGET not in ("koma", "anvil"):
    raise RuntimeError(f"E2E_TARGET must be 'koma' or 'anvil', not {TARGET!r}")
IS_KOMA = TARGET == "koma"

CHAIN_ID = 42424
BLOCK_TIME_MS = int(os.environ.get("E2E_BLOCK_TIME_MS", "1000"))
KOMA_CACHE = Path(os.environ.get("KOMA_CACHE", "/root/.cache/koma"))

MNEMONIC = "test test test test test test test test test test test junk"
# The 10 accounts of MNEMONIC at m/44'/60'/0'/0/i (the same as anvil's and hardhat's).
DEV_KEYS = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
]
DEV_ADDRESSES = [
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
    "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
    "0x976EA74026E726554dB657fA54763abd0C3a0aa9",
    "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
    "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f",
    "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
]
DEV_BALANCE_WEI = 10_000 * 10**18

_LIVE: dict[int, "DevNode"] = {}


def koma_bin() -> Path:
    if os.environ.get("KOMA_BIN"):
        return Path(os.environ["KOMA_BIN"])
    target_dir = os.environ.get("CARGO_TARGET_DIR", str(KOMA_CACHE / "target"))
    return Path(target_dir) / "debug" / "koma"


def anvil_bin() -> Path:
    if os.environ.get("ANVIL_BIN"):
        return Path(os.environ["ANVIL_BIN"])
    for candidate in (
        shutil.which("anvil"),
        KOMA_CACHE / "npm/anvil/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil",
    ):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise RuntimeError("anvil not found: set ANVIL_BIN or run scripts/e2e with E2E_TARGET=anvil")


def node_binary() -> Path:
    path = koma_bin() if IS_KOMA else anvil_bin()
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise RuntimeError(f"{TARGET} binary not found or not executable: {path}")
    return path


def ephemeral_start() -> int:
    """The first port the kernel hands out for outgoing connections (Linux), 32768 if
    unknown. Nodes listen below it, so that neither a node's outgoing connection nor a
    client's own source port (a TCP self-connect while the node is still starting) can
    take a port a node is about to listen on."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port() -> int:
    """A free port below the ephemeral range."""
    for _ in range(200):
        port = random.randrange(10_000, max(ephemeral_start(), 10_001))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the test process goes away."""
    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


def rpc_call(url: str, method: str, params: list | None = None, timeout: float = 10.0):
    """One JSON-RPC call with the standard library; returns the raw response object."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
    req = urllib.request.Request(url, body.encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


class NodeError(RuntimeError):
    pass


class DevNode:
    """One dev chain process: ``start``/``stop``/``kill9`` may be repeated on the same
    data directory (that is what the restart and crash tests do)."""

    def __init__(self, workdir: Path, name: str = "node", port: int | None = None,
                 block_time_ms: int = BLOCK_TIME_MS):
        self.name = name
        self.home = Path(workdir) / name
        self.datadir = self.home / "data"
        self.port = port or free_port()
        self.block_time_ms = block_time_ms
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.log_path: Path | None = None  # stdout of the latest start
        self.err_path: Path | None = None  # stderr (logs) of the latest start
        self.home.mkdir(parents=True, exist_ok=True)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        binary = str(node_binary())
        if IS_KOMA:
            return [binary, "devnet", "--nodes", "1", "--datadir", str(self.datadir),
                    "--http-port", str(self.port), "--block-time-ms", str(self.block_time_ms)]
        secs = max(1, round(self.block_time_ms / 1000))
        return [binary, "--host", "127.0.0.1", "--port", str(self.port),
                "--block-time", str(secs), "--hardfork", "prague",
                "--chain-id", str(CHAIN_ID), "--gas-limit", "60000000"]

    def start(self, ready_timeout: float = 90.0) -> "DevNode":
        if self.running():
            raise NodeError(f"{self.name} is already running")
        self.starts += 1
        self.log_path = self.home / f"{TARGET}-{self.starts}.out"
        self.err_path = self.home / f"{TARGET}-{self.starts}.err"
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        with open(self.log_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                cwd=self.home, env=env, start_new_session=True, preexec_fn=_die_with_parent)
        _LIVE[self.proc.pid] = self
        self.wait_ready(ready_timeout)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if not self.running():
                raise NodeError(f"{self.name} exited with {self.proc.returncode} before its RPC "
                                f"answered\n{self.log_tail()}")
            try:
                resp = rpc_call(self.http_url, "eth_chainId", timeout=2)
                if resp.get("result") is not None:
                    return
                last = resp
            except (OSError, urllib.error.URLError, ValueError, http.client.HTTPException) as e:
                last = e  # (HTTPException: e.g. a TCP self-connect echoing the request)
            time.sleep(0.1)
        raise NodeError(f"{self.name}: RPC not ready after {timeout}s ({last})\n{self.log_tail()}")

    def send_signal(self, sig: int) -> None:
        if self.running():
            os.killpg(self.proc.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Ask the node to exit and wait for it; SIGKILL (and an error) if it does not."""
        if self.proc is None:
            return 0
        if self.running():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._reap(signal.SIGKILL)
                raise NodeError(f"{self.name} ignored signal {sig} for {timeout}s\n{self.log_tail()}") from None
        self._reap(signal.SIGKILL)  # whatever it started
        return self.proc.returncode

    def kill9(self) -> None:
        """Crash: SIGKILL the node's whole process group, no chance to flush anything."""
        self._reap(signal.SIGKILL)

    def _reap(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        _LIVE.pop(self.proc.pid, None)

    def stdout(self) -> str:
        return _read(self.log_path)

    def stderr(self) -> str:
        return _read(self.err_path)

    def output(self) -> str:
        return self.stdout() + self.stderr()

    def log_tail(self, lines: int = 60) -> str:
        parts = []
        for path in (self.log_path, self.err_path):
            text = _read(path).splitlines()[-lines:]
            parts.append(f"--- last {len(text)} lines of {path} ---\n" + "\n".join(text))
        return "\n".join(parts)


def _read(path: Path | None) -> str:
    if path is None or not path.exists():
        return ""
    return path.read_text(errors="replace")


def kill_all() -> None:
    for node in list(_LIVE.values()):
        node.kill9()


atexit.register(kill_all)


def require_tool(name: str, path: str | None, hint: str) -> str:
    """A prerequisite of a test: skipped without it on anvil, failed without it on koma."""
    import pytest

    if path:
        return path
    msg = f"{name} not available ({hint})"
    if IS_KOMA:
        pytest.fail(msg)
    pytest.skip(msg)


def run(cmd: list[str], timeout: float, **kw) -> subprocess.CompletedProcess:
    """Run a command to completion with a time bound, capturing its output."""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, **kw)


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MB (from /proc)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")
