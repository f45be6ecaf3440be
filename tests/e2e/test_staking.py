"""Stake decides: the staker set of every era after the first is the root contract's
active set on L1, read at the L1 block the previous era's last block names. Five nodes,
four of them stakers from genesis, once on the devnet's development L1 and once on anvil
as the L1: the fifth stakes on L1 with `koma staker stake` and
becomes a staker of the next era (its units counted, its BLS signature in checkpoints);
a genesis staker unstakes, leaves at an era boundary, and withdraws once the delay is
over; another takes part of its stake out, weighs less from the next era, withdraws
that part after the delay and tops its stake up again. Finality goes on across every switch, with no restart.
Every checkpoint pays its signers a reward in proportion to their weight; an absent
staker earns nothing for it."""

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


def format_kmc(wei: int) -> str:
    """KMC as the CLI prints it: decimals without trailing zeros."""
    whole, frac = divmod(wei, KMC)
    return f"{whole}.{frac:018d}".rstrip("0").rstrip(".") if frac else str(whole)


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
    # it signed checkpoints from genesis until its exit: its rewards come with the stake
    # (out of the active set, it earns nothing more)
    earned = staking["root"].functions.rewardsOf(Web3.to_checksum_address(address)).call()
    assert earned > 0
    res = koma("staker", "withdraw", *l1_args(c), *staker_args(leaver))
    assert res.returncode == 0, res.stderr
    assert f"rewards paid: {format_kmc(earned)} KMC" in res.stdout, res.stdout
    after = staking["token"].functions.balanceOf(Web3.to_checksum_address(address)).call()
    assert after - before == 1_000 * KMC + earned
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


def absent_slots(l1: Web3, root, tx_hash) -> set[int]:
    """The absent slots a submitted checkpoint named (2-byte slot numbers)."""
    _, params = root.decode_function_input(l1.eth.get_transaction(tx_hash)["input"])
    absent = bytes(params["absent"])
    return {int.from_bytes(absent[i:i + 2], "big") for i in range(0, len(absent), 2)}


def test_signers_earn_checkpoint_rewards_by_weight_and_an_absent_staker_nothing(staking):
    """Each accepted checkpoint pays its reward (1 KMC on the devnet) to the stakers that
    signed it, in proportion to their weight. With node 3 down, it is absent from the
    checkpoints and earns nothing for them while the signers share each reward; back up,
    it signs and earns again, and `koma staker claim` pays a staker out."""
    c: Cluster = staking["cluster"]
    l1, root = staking["l1"], staking["root"]
    precision = root.functions.REWARD_PRECISION().call()
    assert root.functions.rewardPerCheckpoint().call() == KMC
    down = c.nodes[3]
    down_signer = Web3.to_checksum_address(down.producer)
    wait_until("no set change pending on L1", lambda: not root.functions.head().call()[4], timeout=60)

    slot = root.functions.activeSet().call()[1].index(down_signer)
    down.stop()
    stopped_at = root.functions.head().call()[2]
    number = lambda: root.functions.head().call()[2]  # noqa: E731
    wait_until("four checkpoints after node 3 stopped", lambda: number() >= stopped_at + 4, timeout=120)
    events = root.events.CheckpointSubmitted.get_logs(from_block=max(0, l1.eth.block_number - 300))
    events = [e for e in events if e["args"]["number"] > stopped_at]
    # the checkpoints signed while it was up may still land: the window starts with the
    # first that names it absent, and every later one must too
    while events and slot not in absent_slots(l1, root, events[0]["transactionHash"]):
        events.pop(0)
    window = events
    assert len(window) >= 2, f"checkpoints without node 3: {[e['args']['number'] for e in window]}"
    start = window[0]["blockNumber"] - 1  # before the window's first checkpoint
    end = window[-1]["blockNumber"]
    set_id, signers, _, weights = root.functions.activeSet().call(block_identifier=start)
    assert root.functions.activeSet().call(block_identifier=end)[0] == set_id, "no set change in the window"
    assert signers.index(down_signer) == slot
    owners = {s: root.functions.signerOwner(s).call() for s in signers if int(s, 16) != 0}
    before = {s: root.functions.rewardsOf(o).call(block_identifier=start) for s, o in owners.items()}
    pool_before = root.functions.rewardPool().call(block_identifier=start)

    expected = dict.fromkeys(owners, 0)  # scaled by the precision
    paid = 0
    for e in window:
        absent = absent_slots(l1, root, e["transactionHash"])
        assert slot in absent, f"node 3 is absent from checkpoint {e['args']['number']}"
        signed = sum(w for i, w in enumerate(weights) if i not in absent)
        per_weight = KMC * precision // signed
        paid += -(-per_weight * signed // precision)
        for i, s in enumerate(signers):
            if s in owners and i not in absent:
                expected[s] += weights[i] * per_weight
    after = {s: root.functions.rewardsOf(o).call(block_identifier=end) for s, o in owners.items()}
    assert after[down_signer] == before[down_signer], "the absent staker earned nothing"
    for s in owners:
        if s == down_signer:
            continue
        # the contract floors the running sum once, so a staker's gain is the shares' sum
        # give or take the wei of the remainder it carried
        gain = after[s] - before[s]
        assert abs(gain - expected[s] // precision) <= 1, (s, gain, expected[s] // precision)
    assert sum(after[s] - before[s] for s in owners) <= len(window) * KMC
    assert pool_before - root.functions.rewardPool().call(block_identifier=end) == paid

    # back up: it signs again and earns again; blocks, finality and checkpoints go on
    down.start()
    held = root.functions.rewardsOf(owners[down_signer]).call()
    wait_until("node 3 earning again", lambda: root.functions.rewardsOf(owners[down_signer]).call() > held,
               timeout=120)
    assert_finality_goes_on(c)

    # a staker claims: it gets what it had earned, and owes nothing right after
    claimer = c.nodes[0]
    owner = Web3.to_checksum_address(claimer.producer)
    balance = staking["token"].functions.balanceOf(owner).call()
    res = koma("staker", "claim", *l1_args(c), *staker_args(claimer))
    assert res.returncode == 0, res.stderr
    block = int(res.stdout.split("in L1 block ")[1].split()[0])
    claimed = staking["token"].functions.balanceOf(owner).call(block_identifier=block) - \
        staking["token"].functions.balanceOf(owner).call(block_identifier=block - 1)
    assert claimed > 0 and f"rewards paid: {format_kmc(claimed)} KMC" in res.stdout, res.stdout
    assert staking["token"].functions.balanceOf(owner).call() - balance == claimed
    # nothing owed after the claim, unless a checkpoint landed in the same L1 block
    cps = root.events.CheckpointSubmitted.get_logs(from_block=block, to_block=block)
    assert root.functions.rewardsOf(owner).call(block_identifier=block) == 0 or cps
    st = status(c, claimer)
    assert float(st["rewards"]) < 2, st  # what the checkpoints since have added
