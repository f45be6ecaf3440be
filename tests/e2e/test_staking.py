"""Stake decides: the staker set of every era after the first is the root contract's
active set on L1, read at the L1 block the previous era's last block names. Five nodes,
four of them stakers from genesis, once on the devnet's development L1 and once on anvil
as the L1: the fifth stakes on L1 with `koma staker stake` and
becomes a staker of the next era (its units counted, its BLS signature in checkpoints);
a genesis staker unstakes, leaves at an era boundary, and withdraws once the delay is
over; another takes part of its stake out, weighs less from the next era, withdraws
that part after the delay and tops its stake up again. Finality goes on across every switch, with no restart."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from bridgeutil import KMC, abi, send_l1
from cluster import Cluster, wait_until
from devnode import DEV_KEYS, koma_bin, run

pytestmark = pytest.mark.koma_only

ERA_BLOCKS = 30
WITHDRAWAL_DELAY = 45  # seconds; longer than an era here (about 20 s)


def arg(node, flag: str) -> str:
    return node.args[node.args.index(flag) + 1]


def koma(*args: str) -> subprocess.CompletedProcess:
    return run([str(koma_bin()), "--log", "warn", *args], timeout=180)


@pytest.fixture(scope="module", params=["dev-l1", "anvil"])
def staking(request, tmp_path_factory):
    """The five nodes, on the devnet's development L1 or on anvil as the L1."""
    c = Cluster(tmp_path_factory.mktemp("staking"), n=5, l1=True if request.param == "dev-l1" else "anvil",
                extra=("--stakers", "4", "--era-blocks", str(ERA_BLOCKS),
                       "--checkpoint-interval", "8"),
                deploy_extra=("--withdrawal-delay", str(WITHDRAWAL_DELAY)))
    c.start()
    try:
        l1 = Web3(Web3.HTTPProvider(c.l1.http_url))
        contracts = json.loads(Path(c.contracts_file).read_text())
        root = l1.eth.contract(address=Web3.to_checksum_address(contracts["rootChain"]), abi=abi("RootChain"))
        token = l1.eth.contract(address=Web3.to_checksum_address(contracts["stakingToken"]),
                                abi=abi("StakingToken"))
        wait_until("finality on every node", lambda: all(n.call("koma_getMilestone") and
                                                         finalized(n) > 0 for n in c.nodes), timeout=90)
        yield {"cluster": c, "l1": l1, "root": root, "token": token}
    finally:
        c.stop()


def finalized(node) -> int:
    block = node.call("eth_getBlockByNumber", ["finalized", False])
    return int(block["number"], 16) if block else 0


def era_set(node) -> tuple[int, set[str], dict]:
    """The node's current era: its number, its members and their entries (stakers
    pending on L1, in no era yet, are left out)."""
    validators = [v for v in node.call("koma_validators") if v["index"] is not None]
    return (validators[0]["era"], {v["address"].lower() for v in validators},
            {v["address"].lower(): v for v in validators})


def l1_status(node, address: str) -> str | None:
    """What `koma_validators` on `node` says of `address` (from the L1 stake table)."""
    entry = next((v for v in node.call("koma_validators") if v["address"].lower() == address), None)
    return entry and entry["status"]


def l1_args(c: Cluster) -> list[str]:
    return ["--l1-rpc", c.l1.http_url, "--l1-contracts", str(c.contracts_file)]


def staker_args(node) -> list[str]:
    return ["--keystore", arg(node, "--producer-keystore"), "--password-file", arg(node, "--password-file")]


def status(c: Cluster, node) -> dict:
    res = koma("staker", "status", *l1_args(c), *staker_args(node))
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def assert_finality_goes_on(c: Cluster, blocks: int = 8) -> None:
    start = [finalized(n) for n in c.nodes]
    wait_until(f"{blocks} more final blocks on every node",
               lambda: all(finalized(n) >= s + blocks for n, s in zip(c.nodes, start)), timeout=60)


def test_a_fifth_node_stakes_on_l1_and_joins_the_next_era(staking):
    c: Cluster = staking["cluster"]
    joiner = c.nodes[4]
    address = joiner.producer.lower()
    era0, members, _ = era_set(c.nodes[0])
    assert len(members) == 4 and address not in members
    assert status(c, joiner)["status"] == "none"

    # the staking account (the node's own key) gets KMC from the deployer (and gas money
    # where the L1's genesis did not fund the devnet keys: anvil), then stakes
    l1 = staking["l1"]
    send_l1(l1, DEV_KEYS[0], staking["token"].functions.transfer(Web3.to_checksum_address(address), 1_000 * KMC))
    if l1.eth.get_balance(Web3.to_checksum_address(address)) < 10**18:
        funder = Account.from_key(DEV_KEYS[0])
        tx = {"to": Web3.to_checksum_address(address), "value": 10**19, "gas": 21_000, "chainId": l1.eth.chain_id,
              "nonce": l1.eth.get_transaction_count(funder.address), "gasPrice": 2 * l1.eth.gas_price}
        l1.eth.wait_for_transaction_receipt(l1.eth.send_raw_transaction(funder.sign_transaction(tx).raw_transaction))
    res = koma("staker", "stake", "--amount", "1000",
               "--bls-keystore", arg(joiner, "--bls-keystore"),
               "--bls-password-file", arg(joiner, "--password-file"),
               *l1_args(c), *staker_args(joiner))
    assert res.returncode == 0, res.stderr
    assert "staked 1000 KMC" in res.stdout, res.stdout
    assert status(c, joiner)["status"] in ("pending", "active")
    # every node lists it as pending (on L1, in no era yet) before it becomes a member
    wait_until("the joiner listed as pending", lambda: all(
        l1_status(n, address) == "pending" or address in era_set(n)[1] for n in c.nodes), timeout=30)
    entry = next(v for v in c.nodes[0].call("koma_validators") if v["address"].lower() == address)
    if entry["index"] is None:
        assert entry["status"] == "pending" and entry["era"] is None and entry["stake"] == 1_000 * 10**9, entry
    # a second stake of the same owner is refused with the contract's error
    again = koma("staker", "stake", "--amount", "1000",
                 "--bls-keystore", arg(joiner, "--bls-keystore"),
                 "--bls-password-file", arg(joiner, "--password-file"),
                 *l1_args(c), *staker_args(joiner))
    assert again.returncode != 0 and "AlreadyStaker" in again.stderr, again.stderr

    # active on L1 with the next checkpoint, then a staker of the next era on every node
    wait_until("the stake active on L1", lambda: status(c, joiner)["status"] == "active", timeout=90)
    wait_until("the fifth node in every node's era set",
               lambda: all(address in era_set(n)[1] for n in c.nodes), timeout=180)
    era, members, by_address = era_set(c.nodes[0])
    assert era > era0 and len(members) == 5
    entry = by_address[address]
    assert entry["stake"] == 1_000 * 10**9, entry  # weight: gwei of KMC
    assert entry["sourceL1Block"] is not None and entry["setId"] >= 2, entry
    assert entry["status"] == "active"
    # its units are counted: its latest unit keeps moving on the other nodes
    seq = lambda: era_set(c.nodes[1])[2][address]["latestSeq"] or 0  # noqa: E731
    first = seq()
    wait_until("units of the new staker", lambda: seq() >= first + 3, timeout=30)
    assert_finality_goes_on(c)

    # its BLS signature is in the checkpoints from now on
    def signed_by_joiner() -> bool:
        cp = c.nodes[0].call("koma_getCheckpoint", ["latest"])
        return bool(cp and cp["signers"] and address in [s.lower() for s in cp["signers"]])
    wait_until("a checkpoint the fifth node signed", signed_by_joiner, timeout=90)


def test_a_staker_unstakes_leaves_at_the_era_boundary_and_withdraws_after_the_delay(staking):
    c: Cluster = staking["cluster"]
    leaver = c.nodes[1]
    address = leaver.producer.lower()
    assert address in era_set(c.nodes[0])[1]
    before = staking["token"].functions.balanceOf(Web3.to_checksum_address(address)).call()

    res = koma("staker", "unstake", *l1_args(c), *staker_args(leaver))
    assert res.returncode == 0, res.stderr
    assert status(c, leaver)["status"] in ("leaving", "unbonding")
    # still a member of the current era, now listed as unbonding (out of the pending set)
    wait_until("the leaver listed as unbonding", lambda: l1_status(c.nodes[0], address) == "unbonding", timeout=20)
    assert address in era_set(c.nodes[0])[1]
    early = koma("staker", "withdraw", *l1_args(c), *staker_args(leaver))
    assert early.returncode != 0, early.stdout
    assert "ExitNotActive" in early.stderr or "WithdrawalDelayNotOver" in early.stderr, early.stderr

    wait_until("the staker out of every node's era set",
               lambda: all(address not in era_set(n)[1] for n in c.nodes), timeout=180)
    assert len(era_set(c.nodes[0])[1]) >= 3
    assert_finality_goes_on(c)

    wait_until("the withdrawal possible", lambda: status(c, leaver)["status"] == "withdrawable",
               timeout=WITHDRAWAL_DELAY + 90)
    # the staker's signatures no longer count anywhere once it can withdraw
    assert all(address not in era_set(n)[1] for n in c.nodes)
    res = koma("staker", "withdraw", *l1_args(c), *staker_args(leaver))
    assert res.returncode == 0, res.stderr
    after = staking["token"].functions.balanceOf(Web3.to_checksum_address(address)).call()
    assert after - before == 1_000 * KMC
    assert status(c, leaver)["status"] == "none"
    twice = koma("staker", "withdraw", *l1_args(c), *staker_args(leaver))
    assert twice.returncode != 0 and "NotLeaving" in twice.stderr, twice.stderr
    assert_finality_goes_on(c)


def test_a_staker_takes_part_of_its_stake_out_stays_and_withdraws_it_after_the_delay(staking):
    c: Cluster = staking["cluster"]
    node = c.nodes[2]
    address = node.producer.lower()
    _, members, by_address = era_set(c.nodes[0])
    assert address in members
    staked = by_address[address]["stake"]
    before = staking["token"].functions.balanceOf(Web3.to_checksum_address(address)).call()

    # more than what may leave (the minimum must stay) is refused with the contract's error
    too_much = koma("staker", "unstake", "--amount", str(staked // 10**9), *l1_args(c), *staker_args(node))
    assert too_much.returncode != 0 and "StakeTooLow" in too_much.stderr, too_much.stderr
    res = koma("staker", "unstake", "--amount", "400", *l1_args(c), *staker_args(node))
    assert res.returncode == 0, res.stderr
    st = status(c, node)
    assert st["status"] in ("active", "pending") and st["unbonding"] == "400", st
    assert not st["unbondingWithdrawable"]
    early = koma("staker", "withdraw", *l1_args(c), *staker_args(node))
    assert early.returncode != 0, early.stdout
    assert "UnbondingNotActive" in early.stderr or "WithdrawalDelayNotOver" in early.stderr, early.stderr

    # the lower weight holds from the next era on every node; the staker stays in the set
    wait_until("the lower weight in every node's era set",
               lambda: all(era_set(n)[2].get(address, {}).get("stake") == staked - 400 * 10**9 for n in c.nodes),
               timeout=180)
    assert_finality_goes_on(c)

    wait_until("the unbonding KMC withdrawable", lambda: status(c, node)["unbondingWithdrawable"],
               timeout=WITHDRAWAL_DELAY + 90)
    res = koma("staker", "withdraw", *l1_args(c), *staker_args(node))
    assert res.returncode == 0, res.stderr
    after = staking["token"].functions.balanceOf(Web3.to_checksum_address(address)).call()
    assert after - before == 400 * KMC
    st = status(c, node)
    assert st["status"] == "active" and st["unbonding"] == "0", st
    assert address in era_set(c.nodes[0])[1]

    # and tops its stake up again: the tokens move at once, the weight with the next set
    res = koma("staker", "restake", "--amount", "400", *l1_args(c), *staker_args(node))
    assert res.returncode == 0, res.stderr
    assert status(c, node)["amount"] == str(staked // 10**9), status(c, node)
    assert staking["token"].functions.balanceOf(Web3.to_checksum_address(address)).call() == before
    assert_finality_goes_on(c)
