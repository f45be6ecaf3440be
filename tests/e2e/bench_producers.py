"""How long a producer election driven by L1 takes, on a local 5-node network
(docs/benchmarks.md, "Producer elections").

Starts five nodes with the development L1 (1-second blocks on both chains, 2 L1
confirmations), four of them the genesis producers and stakers, with spans of `--span`
blocks and sprints of 4. The fifth node's key registers as a producer candidate; then,
`--runs` times, staker 0 moves its vote to it (`koma staker vote`), and the time is
taken from the vote's L1 receipt until the first block it seals; then staker 0 votes for
its own producer again, and the time is taken until the first span that no longer elects
the newcomer begins.

Meanwhile the finalized head of node 0 is sampled every 100 ms: the longest time without
a new final block is printed beside the median, so a span switch that stalls finality
shows up as a gap.

Run with scripts/bench-producers [--runs N] [--span N]; prints the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from web3 import Web3

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_staking import FinalitySampler, arg, finalized, koma, summary  # noqa: E402
from bridgeutil import KMC, abi, send_l1  # noqa: E402
from cluster import Cluster, wait_until  # noqa: E402
from devnode import DEV_KEYS  # noqa: E402

SPRINT = 4


def head(node) -> int:
    return int(node.call("eth_blockNumber"), 16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--span", type=int, default=32)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="koma-bench-producers-"))
    c = Cluster(tmp, n=5, sprint=SPRINT, l1=True,
                extra=("--stakers", "4", "--producers", "4", "--span", str(args.span)))
    c.start()
    try:
        l1 = Web3(Web3.HTTPProvider(c.l1.http_url))
        contracts = json.loads(Path(c.contracts_file).read_text())
        token = l1.eth.contract(address=Web3.to_checksum_address(contracts["stakingToken"]),
                                abi=abi("StakingToken"))
        wait_until("finality on every node", lambda: all(finalized(n) > 0 for n in c.nodes), timeout=90)
        l1_args = ["--l1-rpc", c.l1.http_url, "--l1-contracts", str(c.contracts_file)]

        def key_args(node) -> list[str]:
            return ["--keystore", arg(node, "--producer-keystore"), "--password-file", arg(node, "--password-file")]
        newcomer = c.nodes[4]
        address = newcomer.producer.lower()
        send_l1(l1, DEV_KEYS[0], token.functions.transfer(Web3.to_checksum_address(address), 10 * KMC))
        koma("producer", "register", *l1_args, *key_args(newcomer))
        own = Web3.to_checksum_address(c.nodes[0].producer)
        node = c.nodes[0]

        def first_sealed(start: int, timeout: float) -> int:
            """The first block from `start` on that the newcomer sealed (blocks read once)."""
            deadline = time.monotonic() + timeout
            next_block = start
            while time.monotonic() < deadline:
                while next_block <= head(node):
                    if node.call("eth_getBlockByNumber", [hex(next_block), False])["miner"].lower() == address:
                        return next_block
                    next_block += 1
                time.sleep(0.1)
            raise TimeoutError("the newcomer sealed no block")

        def elected_at(number: int) -> bool:
            info = node.call("koma_producers", [hex(number)])
            return bool(info) and address in [p.lower() for p in info["producers"]]

        to_first, to_out = [], []
        print(f"5 nodes, 4 genesis producers and stakers, spans of {args.span} blocks, sprints of {SPRINT}, "
              f"development L1 (1 s blocks)", flush=True)
        with FinalitySampler(node) as sampler:
            for i in range(args.runs):
                start = head(node) + 1  # blocks sealed from now on
                koma("staker", "vote", Web3.to_checksum_address(address), *l1_args, *key_args(c.nodes[0]))
                voted = time.monotonic()  # `koma staker vote` returns with the receipt
                block = first_sealed(start, timeout=6 * args.span)
                to_first.append(time.monotonic() - voted)
                koma("staker", "vote", own, *l1_args, *key_args(c.nodes[0]))
                unvoted = time.monotonic()
                wait_until("a span without the newcomer",
                           lambda: not elected_at(head(node) + 1), timeout=6 * args.span, interval=0.2)
                to_out.append(time.monotonic() - unvoted)
                print(f"run {i + 1}: vote -> first block {to_first[-1]:.1f}s (block {block}), "
                      f"vote withdrawn -> out {to_out[-1]:.1f}s", flush=True)
        summary("vote -> the candidate's first block", to_first)
        summary("vote moved away -> the candidate out of the producers", to_out)
        sampler.report()
    finally:
        c.stop()


if __name__ == "__main__":
    main()
