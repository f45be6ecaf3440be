"""How long a set change driven by L1 takes, on a local 5-node network (docs/benchmarks.md,
"Staking").

Starts five nodes with the development L1 (1-second blocks on both chains, 2 L1
confirmations), four of them stakers from genesis, with eras of `--era-blocks` final
milestones and a checkpoint every `--checkpoint-interval` blocks. Then, `--runs` times,
the fifth node's key:

- stakes 1,000 KMC with `koma staker stake`, and the times are taken from the stake's L1
  receipt until the stake is active on L1 (the next checkpoint activated the pending
  set), until every node counts it in its era set, and until its first unit in that era
  is seen;
- unstakes, and the time is taken until no node counts it any more; after the delay it
  withdraws, so the next run stakes again.

Meanwhile the finalized head of node 0 is sampled every 100 ms: the longest time without
a new final block during the runs is printed beside the median, so an era switch with a
set change shows up as a gap if it stalls finality.

Run with scripts/bench-staking [--runs N] [--era-blocks N] [--checkpoint-interval N];
prints the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from web3 import Web3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bridgeutil import KMC, abi, send_l1  # noqa: E402
from cluster import Cluster, wait_until  # noqa: E402
from devnode import DEV_KEYS, koma_bin, run  # noqa: E402

WITHDRAWAL_DELAY = 30  # seconds


def koma(*args: str) -> subprocess.CompletedProcess:
    res = run([str(koma_bin()), "--log", "warn", *args], timeout=180)
    if res.returncode != 0:
        raise RuntimeError(f"koma {' '.join(args[:2])}: {res.stderr}")
    return res


def arg(node, flag: str) -> str:
    return node.args[node.args.index(flag) + 1]


def members(node) -> dict[str, dict]:
    """The node's current era set by address (pending stakers left out)."""
    return {v["address"].lower(): v for v in node.call("koma_validators") if v["index"] is not None}


def finalized(node) -> int:
    block = node.call("eth_getBlockByNumber", ["finalized", False])
    return int(block["number"], 16) if block else 0


class FinalitySampler:
    """Samples a node's finalized height every 100 ms; records when each advance was seen."""

    def __init__(self, node):
        self.node = node
        self.advances: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = -1
        while not self._stop.is_set():
            try:
                height = finalized(self.node)
            except Exception:  # noqa: BLE001 (a busy node: try again)
                height = last
            if height > last:
                if last >= 0:
                    self.advances.append(time.monotonic())
                last = height
            time.sleep(0.1)

    def __enter__(self) -> "FinalitySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.advances, self.advances[1:])]

    def report(self) -> None:
        """Prints how often finality advanced during the runs, and the longest pause."""
        gaps = self.gaps()
        print(f"finality on node 0 during the runs: {len(gaps) + 1} advances, time between advances "
              f"p50={statistics.median(gaps):.2f}s max={max(gaps):.2f}s", flush=True)


def summary(name: str, values: list[float]) -> None:
    values = sorted(values)
    print(f"{name}: n={len(values)} p50={statistics.median(values):.1f}s "
          f"min={values[0]:.1f}s max={values[-1]:.1f}s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--era-blocks", type=int, default=30)
    parser.add_argument("--checkpoint-interval", type=int, default=8)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="koma-bench-staking-"))
    c = Cluster(tmp, n=5, l1=True,
                extra=("--stakers", "4", "--era-blocks", str(args.era_blocks),
                       "--checkpoint-interval", str(args.checkpoint_interval)),
                deploy_extra=("--withdrawal-delay", str(WITHDRAWAL_DELAY)))
    c.start()
    try:
        l1 = Web3(Web3.HTTPProvider(c.l1.http_url))
        contracts = json.loads(Path(c.contracts_file).read_text())
        token = l1.eth.contract(address=Web3.to_checksum_address(contracts["stakingToken"]),
                                abi=abi("StakingToken"))
        wait_until("finality on every node", lambda: all(finalized(n) > 0 for n in c.nodes), timeout=90)
        joiner = c.nodes[4]
        address = joiner.producer.lower()
        l1_args = ["--l1-rpc", c.l1.http_url, "--l1-contracts", str(c.contracts_file)]
        key_args = ["--keystore", arg(joiner, "--producer-keystore"),
                    "--password-file", arg(joiner, "--password-file")]
        send_l1(l1, DEV_KEYS[0], token.functions.transfer(Web3.to_checksum_address(address),
                                                          args.runs * 1_000 * KMC))

        def status() -> dict:
            return json.loads(koma("staker", "status", *l1_args, *key_args).stdout)

        to_active, to_member, to_unit, to_out = [], [], [], []
        print(f"5 nodes, 4 genesis stakers, eras of {args.era_blocks} blocks, a checkpoint every "
              f"{args.checkpoint_interval} blocks, development L1 (1 s blocks)", flush=True)
        with FinalitySampler(c.nodes[0]) as sampler:
            for i in range(args.runs):
                koma("staker", "stake", "--amount", "1000",
                     "--bls-keystore", arg(joiner, "--bls-keystore"),
                     "--bls-password-file", arg(joiner, "--password-file"), *l1_args, *key_args)
                staked = time.monotonic()  # `koma staker stake` returns with the receipt
                wait_until("active on L1", lambda: status()["status"] == "active", timeout=120, interval=0.1)
                to_active.append(time.monotonic() - staked)
                wait_until("a member on every node", lambda: all(address in members(n) for n in c.nodes),
                           timeout=300, interval=0.1)
                to_member.append(time.monotonic() - staked)
                wait_until("its first unit of the era", lambda: members(c.nodes[0])[address].get("latestUnit"),
                           timeout=60, interval=0.1)
                to_unit.append(time.monotonic() - staked)

                koma("staker", "unstake", *l1_args, *key_args)
                unstaked = time.monotonic()
                wait_until("out of every node's era set",
                           lambda: all(address not in members(n) for n in c.nodes), timeout=300, interval=0.1)
                to_out.append(time.monotonic() - unstaked)
                wait_until("withdrawable", lambda: status()["status"] == "withdrawable", timeout=180)
                koma("staker", "withdraw", *l1_args, *key_args)
                print(f"run {i + 1}: active on L1 {to_active[-1]:.1f}s, member {to_member[-1]:.1f}s, "
                      f"first unit {to_unit[-1]:.1f}s after the stake; out {to_out[-1]:.1f}s after the unstake",
                      flush=True)
        summary("stake -> active on L1", to_active)
        summary("stake -> member of an era on every node", to_member)
        summary("stake -> first unit counted", to_unit)
        summary("unstake -> out of every node's era set", to_out)
        sampler.report()
    finally:
        c.stop()


if __name__ == "__main__":
    main()
