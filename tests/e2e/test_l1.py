"""The devnet's L1: `koma devnet` starts a development L1 (a KOMA node in its own chain),
deploys the root contracts from their committed bytecode and registers the devnet
stakers with proofs of possession verified on chain. A real client (web3.py) reads the
staker set, and forged checkpoints it sends, by call and as mined transactions, are
refused with the contract's named errors. `koma l1 deploy` deploys to any L1."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import eth_abi
import pytest
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractCustomError

from bridgeutil import ETH_ID, KMC, KMC_ID, L2_BRIDGE, abi, audit, exit_args, get_deposit, send_l1
from cluster import WsCollector, free_port_range, wait_until
from devnode import CHAIN_ID, DEV_KEYS, koma_bin, run

pytestmark = pytest.mark.koma_only

REPO = Path(__file__).resolve().parents[2]
STAKE = 1_000 * KMC  # each devnet staker's stake on the development L1
L1_CHAIN_ID = 1337
INTERVAL = 32  # blocks per checkpoint (the devnet's default)
# the G1 generator in EIP-2537 encoding: a valid point, and a signature of nothing
G1_GENERATOR = bytes.fromhex(
    "0000000000000000000000000000000017f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb"
    "0000000000000000000000000000000008b3f481e3aaa0f1a09e30ed741d8ae4fcf5e095d5d00af600db18cb2c04b3edd03cc744a2888ae40caa232946c5e7e1")


def selector(signature: str) -> str:
    return Web3.keccak(text=signature)[:4].hex().removeprefix("0x")


def error_selector(exc: ContractCustomError) -> str:
    data = exc.data if isinstance(exc.data, str) else exc.args[0]
    return data.removeprefix("0x")[:8]


@pytest.fixture(scope="module")
def devnet(tmp_path_factory):
    """A 2-node devnet with its development L1, until the L1 is set up."""
    tmp = tmp_path_factory.mktemp("l1-devnet")
    datadir = tmp / "devnet"
    http, p2p = free_port_range(2), free_port_range(2)
    l1_port = free_port_range(1)
    log = tmp / "devnet.out"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(koma_bin()), "--log", "warn", "devnet", "--nodes", "2", "--datadir", str(datadir),
             "--http-port", str(http), "--p2p-port", str(p2p), "--l1-http-port", str(l1_port)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        contracts_file = datadir / "l1-contracts.json"
        wait_until("the L1 contracts file", lambda: contracts_file.exists() or proc.poll() is not None,
                   timeout=120)
        assert proc.poll() is None, log.read_text()
        contracts = json.loads(contracts_file.read_text())
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{l1_port}", request_kwargs={"timeout": 30}))
        yield {
            "w3": w3,
            "contracts": contracts,
            "root": w3.eth.contract(address=contracts["rootChain"], abi=abi("RootChain")),
            "token": w3.eth.contract(address=contracts["stakingToken"], abi=abi("StakingToken")),
            "log": log,
            "l2_url": f"http://127.0.0.1:{http}",
            "datadir": datadir,
        }
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_devnet_l1_holds_the_contracts_and_the_staker_set(devnet):
    w3, contracts, root, token = devnet["w3"], devnet["contracts"], devnet["root"], devnet["token"]
    assert w3.eth.chain_id == L1_CHAIN_ID == contracts["l1ChainId"]
    assert contracts["l2ChainId"] == CHAIN_ID
    assert w3.eth.get_code(contracts["rootChain"]) != b""
    assert root.functions.l2ChainId().call() == CHAIN_ID
    assert token.functions.symbol().call() == "KMC"

    # the two devnet stakers are the active set (set 1), each with 1,000 KMC (in gwei);
    # checkpoints may have begun
    set_id, total_weight, checkpoint, next_start, pending = root.functions.head().call()
    assert (set_id, pending, next_start) == (1, False, INTERVAL * checkpoint)
    assert total_weight == 2 * STAKE // 10**9
    _, signers, keys, weights = root.functions.activeSet().call()
    producers = json.loads((devnet["datadir"] / "genesis.json").read_text())["producers"]["producers"]
    assert [Web3.to_checksum_address(s) for s in signers] == [Web3.to_checksum_address(p) for p in producers[:2]]
    assert weights == [STAKE // 10**9] * 2
    assert all(len(k) == 256 for k in keys) and keys[0] != keys[1]
    # the two genesis producers stand as candidates too, each with a bond of the minimum
    # stake, each voted for by the staker of its key (docs/producers.md)
    bond = root.functions.minStake().call()
    assert root.functions.bonded().call() == 2 * bond
    # and the reward pool the deployer funded (1,000,000 KMC; nothing claimed yet): the
    # checkpoints so far moved part of it to the stakers' accounts, not out
    pool = 1_000_000 * 10**18
    assert token.functions.balanceOf(contracts["rootChain"]).call() == 2 * STAKE + 2 * bond + pool
    assert root.functions.rewardPerCheckpoint().call() == 10**18
    at = w3.eth.block_number
    paid = root.functions.head().call(block_identifier=at)[2]  # checkpoints, each paid 1 KMC
    left = root.functions.rewardPool().call(block_identifier=at)
    earned = sum(root.functions.rewardsOf(s).call(block_identifier=at) for s in signers)
    assert left == pool - paid * 10**18
    assert 0 <= pool - left - earned <= 2  # each staker's fraction of a wei
    ranked, votes = root.functions.producerRanking().call()
    assert [Web3.to_checksum_address(p) for p in ranked] == [Web3.to_checksum_address(p) for p in producers[:2]]
    assert votes == [STAKE // 10**9] * 2

    # the banner tells where they are
    wait_until("the banner", lambda: "RootChain:" in devnet["log"].read_text(), timeout=30)
    text = devnet["log"].read_text()
    assert contracts["rootChain"] in text and contracts["stakingToken"] in text, text

    # the L2 runs beside it
    l2 = Web3(Web3.HTTPProvider(devnet["l2_url"]))
    wait_until("L2 blocks", lambda: l2.eth.block_number >= 2, timeout=60)


def test_forged_checkpoints_are_refused_with_named_errors(devnet):
    w3, root = devnet["w3"], devnet["root"]
    apk = root.functions.pendingAggregateKey().call()  # no change pending: the active key
    forged_root = Web3.keccak(text="a forged root")

    def next_cp(shift_start: int = 0, shift_number: int = 0):
        # the devnet submits real checkpoints meanwhile: always forge the next one
        _, _, last, start, _ = root.functions.head().call()
        return (last + 1 + shift_number, start + shift_start, start + INTERVAL - 1, forged_root)

    def refused(key, absent, sig, **shift) -> str:
        with pytest.raises(ContractCustomError) as e:
            root.functions.submitCheckpoint(next_cp(**shift), key, absent, sig).call()
        return error_selector(e.value)

    # a valid curve point that is nobody's signature of this digest
    assert refused(apk, b"", G1_GENERATOR) == selector("InvalidSignature()")
    assert refused(apk, b"", bytes(128)) == selector("ZeroSignature()")
    assert refused(apk, b"", G1_GENERATOR[:-1] + b"\x00") == selector("MalformedPoint()")
    assert refused(apk, b"", G1_GENERATOR, shift_number=5) == selector("NotNextCheckpoint(uint256,uint256)")
    assert refused(apk, b"", G1_GENERATOR, shift_start=5) == selector("RangeNotContiguous(uint256,uint256)")
    assert refused(bytes(256), b"", G1_GENERATOR) == selector("SetMismatch()")
    # both stakers absent: nothing signed
    assert refused(apk, bytes.fromhex("00000001"), G1_GENERATOR) == selector("InsufficientStake(uint256,uint256)")

    # sent as a real transaction (gas given, so it is mined): reverted, nothing stored
    cp = next_cp()
    sender = Account.from_key(DEV_KEYS[3])
    tx = root.functions.submitCheckpoint(cp, apk, b"", G1_GENERATOR).build_transaction({
        "from": sender.address, "gas": 1_000_000, "nonce": w3.eth.get_transaction_count(sender.address),
        "chainId": L1_CHAIN_ID,
    })
    tx_hash = w3.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    assert receipt.status == 0
    assert receipt.gasUsed < 1_000_000, "a refused checkpoint does not burn the whole gas limit"
    assert root.functions.checkpointRoot(cp[0]).call() != forged_root, "the forged root is never stored"
    leaf = (0, 0, bytes(32), bytes(32), bytes(32))
    assert root.functions.verifyBlock(cp[0] + 100, leaf, 0, []).call() is False


def leaf_hash(block) -> bytes:
    """The checkpoint leaf of an L2 block, computed here from what plain web3.py reads."""
    withdrawals_root = block.get("withdrawalsRoot") or bytes(32)
    return Web3.keccak(block["number"].to_bytes(32, "big") + block["timestamp"].to_bytes(32, "big")
                       + bytes(block["hash"]) + bytes(block["receiptsRoot"]) + bytes(withdrawals_root))


def merkle(leaves: list[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """Root and proofs of the padded binary keccak tree over `leaves`."""
    width = 1
    while width < len(leaves):
        width *= 2
    levels = [leaves + [bytes(32)] * (width - len(leaves))]
    while len(levels[-1]) > 1:
        prev = levels[-1]
        levels.append([Web3.keccak(prev[i] + prev[i + 1]) for i in range(0, len(prev), 2)])
    proofs = [[levels[d][(i >> d) ^ 1] for d in range(len(levels) - 1)] for i in range(len(leaves))]
    return levels[-1][0], proofs


def test_devnet_checkpoints_reach_l1_and_prove_blocks(devnet):
    """The devnet's stakers sign each range once it is final and one of them submits it:
    checkpoints 1 and 2 are accepted on L1 within two minutes, each root is
    the one web3.py computes from the L2 blocks, and the contract's view proves any block
    of it."""
    w3, root, contracts = devnet["w3"], devnet["root"], devnet["contracts"]
    wait_until("two checkpoints on L1", lambda: root.functions.head().call()[2] >= 2, timeout=150)
    logs = root.events.CheckpointSubmitted().get_logs(from_block=contracts["deployBlock"])
    assert [log.args.number for log in logs][:2] == [1, 2]
    l2 = Web3(Web3.HTTPProvider(devnet["l2_url"]))
    for log in logs[:2]:
        cp = log.args
        assert cp.end - cp.start + 1 == INTERVAL and cp.start == INTERVAL * (cp.number - 1)
        blocks = [l2.eth.get_block(n) for n in range(cp.start, cp.end + 1)]
        leaves = [leaf_hash(b) for b in blocks]
        tree_root, proofs = merkle(leaves)
        assert tree_root == bytes(cp.root)
        assert root.functions.checkpointRoot(cp.number).call() == tree_root
        for i in (0, 5, INTERVAL - 1):
            b = blocks[i]
            leaf = (b["number"], b["timestamp"], bytes(b["hash"]), bytes(b["receiptsRoot"]),
                    bytes(b.get("withdrawalsRoot") or bytes(32)))
            assert root.functions.verifyBlock(cp.number, leaf, i, proofs[i]).call() is True
            tampered = (leaf[0], leaf[1] + 1) + leaf[2:]
            assert root.functions.verifyBlock(cp.number, tampered, i, proofs[i]).call() is False
        receipt = w3.eth.get_transaction_receipt(log.transactionHash)
        assert receipt.status == 1
        # every staker signed: the flat all-sign cost (forge measured 182,176)
        assert receipt.gasUsed < 200_000, receipt.gasUsed

        # the node's RPC says the same (once it has read the event: it polls L1 every
        # 0.5 s), and its proofs pass the contract's view
        def node_checkpoint(number=cp.number):
            return l2.provider.make_request("koma_getCheckpoint", [hex(number)])["result"]
        wait_until(f"the node reads checkpoint {cp.number}", lambda: node_checkpoint() is not None,
                   timeout=10)
        info = node_checkpoint()
        assert (int(info["start"], 16), int(info["end"], 16)) == (cp.start, cp.end)
        assert info["root"] == "0x" + bytes(cp.root).hex()
        assert info["l1TxHash"] == "0x" + bytes(log.transactionHash).hex()
        assert int(info["l1Block"], 16) == log.blockNumber and int(info["confirmations"], 16) >= 1
        for n in (cp.start, cp.end):
            p = l2.provider.make_request("koma_getBlockProof", [hex(n)])["result"]
            assert int(p["checkpoint"], 16) == cp.number and int(p["index"], 16) == n - cp.start
            leaf = p["leaf"]
            args = (int(leaf["number"], 16), int(leaf["timestamp"], 16), bytes.fromhex(leaf["blockHash"][2:]),
                    bytes.fromhex(leaf["receiptsRoot"][2:]), bytes.fromhex(leaf["withdrawalsRoot"][2:]))
            assert args[2] == bytes(l2.eth.get_block(n)["hash"])
            proof = [bytes.fromhex(x[2:]) for x in p["proof"]]
            assert root.functions.verifyBlock(cp.number, args, int(p["index"], 16), proof).call() is True

    latest = l2.provider.make_request("koma_getCheckpoint", ["latest"])["result"]
    assert int(latest["number"], 16) >= 2
    # a block no accepted checkpoint covers yet: null; a tag: a clear error
    assert l2.provider.make_request("koma_getBlockProof", [hex(10**9)])["result"] is None
    err = l2.provider.make_request("koma_getBlockProof", ["pending"])["error"]
    assert err["code"] == -32602, err


STAGES = ["included", "final", "checkpointed", "notarized"]


def test_a_transaction_moves_from_included_to_notarized(devnet):
    """A transfer sent with web3.py: koma_getFinality of its hash moves through included,
    final, checkpointed and notarized, never back; the `checkpoints` subscription tells
    of its checkpoint when accepted and when notarized, with the signers and stake the
    L1 staker set gives; koma_calcMoM over the checkpoint's blocks is its root."""
    l2 = Web3(Web3.HTTPProvider(devnet["l2_url"]))
    ws = WsCollector(devnet["l2_url"].replace("http://", "ws://"), ["checkpoints"])
    try:
        sender = Account.from_key(DEV_KEYS[5])
        tx = sender.sign_transaction({
            "to": Account.create().address, "value": 1, "gas": 21_000, "chainId": CHAIN_ID,
            "nonce": l2.eth.get_transaction_count(sender.address), "maxFeePerGas": 10**11,
            "maxPriorityFeePerGas": 10**9})
        tx_hash = l2.eth.send_raw_transaction(tx.raw_transaction)
        seen: list[str] = []

        def notarized():
            f = l2.provider.make_request("koma_getFinality", ["0x" + bytes(tx_hash).hex()])["result"]
            if f is not None and (not seen or seen[-1] != f["status"]):
                seen.append(f["status"])
            return f if f is not None and f["status"] == "notarized" else None

        final = wait_until("the transfer notarized", notarized, timeout=150, interval=0.1)
        # forward only (a stage may pass between two polls: final comes within about a
        # second of inclusion, notarized two L1 blocks after checkpointed)
        assert [STAGES.index(s) for s in seen] == sorted({STAGES.index(s) for s in seen}), seen
        assert seen[0] in ("included", "final") and len(seen) >= 3, seen
        block = l2.eth.get_transaction_receipt(tx_hash)["blockNumber"]
        assert final["blockNumber"] == hex(block) and final["notarized"] is True
        ref = final["checkpointed"]
        cp = l2.provider.make_request("koma_getCheckpoint", [ref["number"]])["result"]
        assert int(cp["start"], 16) <= block <= int(cp["end"], 16)
        assert (ref["root"], ref["l1TxHash"], ref["l1Block"]) == (cp["root"], cp["l1TxHash"], cp["l1Block"])
        assert int(ref["confirmations"], 16) >= 2  # the devnet's l1-confirmations

        # signers and stake: the whole L1 set (both devnet stakers sign)
        _, signers, _, weights = devnet["root"].functions.activeSet().call()
        assert sorted(cp["signers"]) == sorted(s.lower() for s in signers)
        assert int(cp["signingStake"], 16) == int(cp["totalStake"], 16) == 2 * STAKE

        # the subscription: accepted, then notarized
        wait_until("the subscription's notarized message",
                   lambda: any(m["number"] == ref["number"] and m["notarized"] for m in ws.items),
                   timeout=10)
    finally:
        items = ws.close()
    ours = [m for m in items if m["number"] == ref["number"]]
    assert [m["notarized"] for m in ours][-2:] == [False, True], ours
    assert all(m["root"] == cp["root"] and "removed" not in m for m in ours)

    # Komodo's calc_MoM over the checkpoint's blocks is its root (numbers or quantities)
    start, end = int(cp["start"], 16), int(cp["end"], 16)
    for params in ([end, end - start + 1], [hex(end), hex(end - start + 1)]):
        mom = l2.provider.make_request("koma_calcMoM", params)["result"]
        assert mom == {"height": end, "MoMdepth": end - start + 1, "MoM": cp["root"]}, mom
    for bad in ([end, 0], [end, 10_001], [5, 7], [10**12, 1], ["ten", 1]):
        err = l2.provider.make_request("koma_calcMoM", bad)["error"]
        assert err["code"] == -32602, (bad, err)


def test_koma_l1_deploy_writes_a_contracts_file(devnet, tmp_path):
    url = devnet["w3"].provider.endpoint_uri
    out = tmp_path / "deployment.json"
    res = run([str(koma_bin()), "--log", "warn", "l1", "deploy", "--l1-rpc", url, "--out", str(out),
               "--max-range", "256"], timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    contracts = json.loads(out.read_text())
    assert contracts["rootChain"] != devnet["contracts"]["rootChain"]
    assert contracts["maxRange"] == 256 and contracts["l2ChainId"] == CHAIN_ID
    w3 = devnet["w3"]
    root = w3.eth.contract(address=contracts["rootChain"], abi=abi("RootChain"))
    assert root.functions.maxRange().call() == 256
    # no stakers registered: no active set yet
    assert root.functions.head().call()[:2] == [0, 0]
    assert contracts["rootChain"] in res.stdout

    # an L1 that does not answer: a clear error, no file
    bad = tmp_path / "bad.json"
    res = run([str(koma_bin()), "l1", "deploy", "--l1-rpc", "http://127.0.0.1:9", "--out", str(bad)],
              timeout=60)
    assert res.returncode != 0 and not bad.exists()
    assert "does not answer" in res.stderr, res.stderr


EMPTY_TRIE_ROOT = "0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421"


def test_native_kmc_withdrawn_on_l2_exits_on_l1_once(devnet):
    """Native KMC sent to the L2 bridge predeploy with web3.py: its WithdrawalInitiated
    event is in the receipt and the block's withdrawalsRoot commits to it;
    koma_getWithdrawalProof gives, once a checkpoint covers the block, exactly what
    Bridge.exit takes; a relayer exits it on L1 and the recipient gets the KMC there, to
    the wei; a replay and a changed amount are refused with the contract's errors. The
    bridge's KMC held on L1 backs the L2 genesis allocation from the start."""
    l1, contracts = devnet["w3"], devnet["contracts"]
    l2 = Web3(Web3.HTTPProvider(devnet["l2_url"]))
    token = devnet["token"]
    bridge = l1.eth.contract(address=contracts["bridge"], abi=abi("Bridge"))
    l2_bridge = l2.eth.contract(address=Web3.to_checksum_address(L2_BRIDGE), abi=abi("L2Bridge"))

    # the L2 genesis allocation's circulating KMC (10 dev accounts x 10,000) is locked on L1
    genesis = json.loads((devnet["datadir"] / "genesis.json").read_text())
    circulating = sum(int(a["balance"], 16) for addr, a in genesis["alloc"].items()
                      if addr.lower() != L2_BRIDGE)
    assert circulating == 100_000 * KMC
    assert bridge.functions.genesisLocked().call()
    locked_before = bridge.functions.locked(KMC_ID).call()
    assert locked_before == circulating  # no deposit has been made on this devnet
    assert token.functions.balanceOf(bridge.address).call() == locked_before

    sender = Account.from_key(DEV_KEYS[6])
    recipient = Account.create().address  # a fresh L1 account
    amount = 3 * KMC + 12345
    reserve_before = l2.eth.get_balance(l2_bridge.address)
    tx = l2_bridge.functions.withdraw(recipient).build_transaction({
        "from": sender.address, "value": amount, "chainId": CHAIN_ID, "gas": 200_000,
        "nonce": l2.eth.get_transaction_count(sender.address), "maxFeePerGas": 10**11,
        "maxPriorityFeePerGas": 10**9})
    tx_hash = l2.eth.send_raw_transaction(sender.sign_transaction(tx).raw_transaction)
    receipt = l2.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    assert receipt["status"] == 1
    events = l2_bridge.events.WithdrawalInitiated().process_receipt(receipt)
    assert len(events) == 1
    ev = events[0]["args"]
    assert (ev["sender"], ev["recipient"], ev["token"].lower(), ev["amount"]) == (
        sender.address, recipient, KMC_ID, amount)
    assert l2.eth.get_balance(l2_bridge.address, receipt["blockNumber"]) == reserve_before + amount

    # the header commits to it: one withdrawal is its own root
    leaf = Web3.keccak(eth_abi.encode(["uint256", "address", "address", "address", "uint256"],
                                      [ev["nonce"], sender.address, recipient, KMC_ID, amount]))
    block = l2.eth.get_block(receipt["blockNumber"])
    assert block["withdrawalsRoot"] == leaf
    # a block without withdrawals keeps the empty-trie root clients expect
    assert l2.eth.get_block(receipt["blockNumber"] - 1)["withdrawalsRoot"].to_0x_hex() == EMPTY_TRIE_ROOT

    def proof():
        p = l2.provider.make_request("koma_getWithdrawalProof", [tx_hash.to_0x_hex()])["result"]
        return p if p is not None and p["checkpoint"] is not None else None

    first = l2.provider.make_request("koma_getWithdrawalProof", [tx_hash.to_0x_hex()])["result"]
    assert first["leaf"] == leaf.to_0x_hex() and first["withdrawalIndex"] == "0x0"
    p = wait_until("a checkpoint covering the withdrawal", proof, timeout=150, interval=1)
    assert p["blockLeaf"]["withdrawalsRoot"] == leaf.to_0x_hex()

    # a relayer (not the sender) exits it on L1
    relayer = Account.from_key(DEV_KEYS[7])
    args = exit_args(p)
    bad = list(args)
    bad[0] = args[0][:4] + (amount + 1,)
    with pytest.raises(ContractCustomError) as e:
        bridge.functions.exit(tuple(bad)).call({"from": relayer.address})
    assert error_selector(e.value) == selector("BadWithdrawalProof()")
    exit_tx = bridge.functions.exit(args).build_transaction({
        "from": relayer.address, "chainId": L1_CHAIN_ID, "gas": 300_000,
        "nonce": l1.eth.get_transaction_count(relayer.address)})
    exit_receipt = l1.eth.wait_for_transaction_receipt(
        l1.eth.send_raw_transaction(relayer.sign_transaction(exit_tx).raw_transaction), timeout=30)
    assert exit_receipt["status"] == 1, exit_receipt
    assert token.functions.balanceOf(recipient).call() == amount
    assert bridge.functions.locked(KMC_ID).call() == locked_before - amount
    assert bridge.functions.isExited(ev["nonce"]).call()
    with pytest.raises(ContractCustomError) as e:
        bridge.functions.exit(args).call({"from": relayer.address})
    assert error_selector(e.value) == selector("AlreadyExited(uint256)")

    # an unknown transaction has no proof; there is no second withdrawal in this one
    assert l2.provider.make_request("koma_getWithdrawalProof", ["0x" + "11" * 32])["result"] is None
    err = l2.provider.make_request("koma_getWithdrawalProof", [tx_hash.to_0x_hex(), 1])["error"]
    assert err["code"] == -32602 and "1 withdrawal" in err["message"], err


def test_koma_bridge_withdraws_and_exits(devnet):
    """The operator's tool: `koma bridge withdraw` on L2, `koma bridge exit` (which waits
    for the checkpoint and says so), `koma bridge status`, with development accounts."""
    l1_url = devnet["w3"].provider.endpoint_uri
    contracts_file = str(devnet["datadir"] / "l1-contracts.json")
    recipient = Account.create().address

    out = run([str(koma_bin()), "bridge", "withdraw", "--amount", "2.5", "--to", recipient,
               "--l2-rpc", devnet["l2_url"], "--account", "8"], timeout=90)
    assert out.returncode == 0, out.stdout + out.stderr
    tx = next(line.split()[-1] for line in out.stdout.splitlines() if line.startswith("withdrawal sent:"))
    assert "koma bridge exit --tx" in out.stdout, out.stdout

    status = run([str(koma_bin()), "bridge", "status", "--tx", tx, "--l2-rpc", devnet["l2_url"],
                  "--l1-rpc", l1_url, "--l1-contracts", contracts_file], timeout=30)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "included in L2 block" in status.stdout, status.stdout

    out = run([str(koma_bin()), "bridge", "exit", "--tx", tx, "--l2-rpc", devnet["l2_url"],
               "--l1-rpc", l1_url, "--l1-contracts", contracts_file, "--account", "9"], timeout=200)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "exited: withdrawal" in out.stdout, out.stdout
    assert devnet["token"].functions.balanceOf(recipient).call() == 5 * KMC // 2

    status = run([str(koma_bin()), "bridge", "status", "--tx", tx, "--l2-rpc", devnet["l2_url"],
                  "--l1-rpc", l1_url, "--bridge", devnet["contracts"]["bridge"]], timeout=30)
    assert "exited on L1" in status.stdout, status.stdout
    # a second exit is not sent
    again = run([str(koma_bin()), "bridge", "exit", "--tx", tx, "--l2-rpc", devnet["l2_url"],
                 "--l1-rpc", l1_url, "--l1-contracts", contracts_file], timeout=60)
    assert again.returncode == 0 and "already exited" in again.stdout, again.stdout + again.stderr

    # bad input: one clear line, no panic
    bad = run([str(koma_bin()), "bridge", "withdraw", "--amount", "1.2.3", "--l2-rpc", devnet["l2_url"]],
              timeout=30)
    assert bad.returncode == 1 and bad.stderr.startswith("error: invalid amount"), bad.stderr


SYSTEM = "0xffffFFFfFFffffffffffffffFfFFFfffFFFfFFfE"
TRANSFER_LOG = "0x0000000000000000000000000000000000001010"


def test_deposits_of_kmc_eth_and_an_erc20_are_applied_once_on_l2(devnet):
    """Deposits made on the devnet's L1 with web3.py (KMC, ETH, and a freshly deployed
    ERC-20) arrive on L2 as system transactions at the start of a block: from the system
    address, with receipts and logs clients read like any other, native KMC credited from
    the bridge's reserve (with its transfer-log entry) and ETH/ERC-20 minted as child
    tokens that carry the L1 token's name, symbol and decimals. koma_getDeposit follows
    each from L1 to a final L2 block; the hash chain L2 keeps equals L1's; locked on L1
    equals what L2 holds, to the wei; the credited KMC is spent on L2 at once; the ETH
    and ERC-20 child tokens are burned on L2 and exited on L1 back to their L1 form."""
    l1, contracts = devnet["w3"], devnet["contracts"]
    l2 = Web3(Web3.HTTPProvider(devnet["l2_url"]))
    token = devnet["token"]
    bridge = l1.eth.contract(address=contracts["bridge"], abi=abi("Bridge"))
    l2_bridge = l2.eth.contract(address=Web3.to_checksum_address(L2_BRIDGE), abi=abi("L2Bridge"))
    depositor = DEV_KEYS[0]  # the L1 deployer: holds the KMC not staked or locked
    holder = Account.create()  # fresh on L2: no balance, no nonce
    recipient = holder.address
    kmc_amount, eth_amount, usd_amount = 7 * KMC + 1, KMC // 4, 1_234_567

    # a fresh ERC-20 on L1 (the StakingToken bytecode, with its own supply)
    artifact = json.loads((REPO / "contracts" / "artifacts" / "StakingToken.json").read_text())
    factory = l1.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"]["object"]
                              if isinstance(artifact["bytecode"], dict) else artifact["bytecode"])
    depositor_address = Account.from_key(depositor).address
    created = send_l1(l1, depositor, factory.constructor(depositor_address, 10**24))
    usd = l1.eth.contract(address=created["contractAddress"], abi=artifact["abi"])

    locked_kmc = bridge.functions.locked(KMC_ID).call()
    reserve = l2.eth.get_balance(l2_bridge.address)
    first_id = bridge.functions.stateCounter().call() + 1
    send_l1(l1, depositor, token.functions.approve(bridge.address, kmc_amount))
    send_l1(l1, depositor, bridge.functions.depositERC20For(token.address, recipient, kmc_amount))
    send_l1(l1, depositor, bridge.functions.depositEtherFor(recipient), value=eth_amount)
    send_l1(l1, depositor, usd.functions.approve(bridge.address, usd_amount))
    receipt = send_l1(l1, depositor, bridge.functions.depositERC20For(usd.address, recipient, usd_amount))
    last_id = bridge.events.Deposited().process_receipt(receipt)[0]["args"]["id"]
    assert last_id == first_id + 2

    # the last one's way, as koma_getDeposit tells it (polled every 50 ms): confirmed on
    # L1, announced in an L2 header, agreed by the stakers, applied; never backwards
    ladder = ["unknown", "confirmed", "announced", "agreed", "applied"]
    seen: list[str] = []
    deadline = time.monotonic() + 60
    while not seen or seen[-1] != "applied":
        assert time.monotonic() < deadline, f"deposit {last_id} not applied in 60 s: {seen}"
        status = get_deposit(l2, last_id)["status"]
        if not seen or seen[-1] != status:
            seen.append(status)
        time.sleep(0.05)
    assert [ladder.index(s) for s in seen] == sorted({ladder.index(s) for s in seen}), seen
    assert {"announced", "agreed"} <= set(seen), seen
    # spendable on L2 within seconds of its L1 confirmations
    assert l2.eth.get_balance(recipient) == kmc_amount
    assert all(get_deposit(l2, i)["status"] == "applied" for i in range(first_id, last_id + 1))
    statuses = [get_deposit(l2, i) for i in range(first_id, last_id + 1)]
    kmc_status = statuses[0]
    assert (kmc_status["token"].lower(), Web3.to_checksum_address(kmc_status["to"]),
            int(kmc_status["amount"], 16)) == (KMC_ID, recipient, kmc_amount)
    assert Web3.to_checksum_address(kmc_status["from"]) == depositor_address

    # the system transaction: first in its block, from the system, zero gas price, a
    # receipt with the bridge's event, found by eth_getLogs, and read by web3.py as is
    tx = l2.eth.get_transaction(kmc_status["transactionHash"])
    assert tx["from"] == SYSTEM and tx["to"] == l2_bridge.address and tx["gasPrice"] == 0
    block = l2.eth.get_block(tx["blockNumber"], full_transactions=True)
    assert block["transactions"][0]["hash"] == tx["hash"]
    l2_receipt = l2.eth.get_transaction_receipt(tx["hash"])
    assert l2_receipt["status"] == 1
    applied_events = l2_bridge.events.DepositApplied().process_receipt(l2_receipt)
    assert [(e["args"]["id"], e["args"]["to"], e["args"]["amount"], e["args"]["credited"])
            for e in applied_events] == [(first_id, recipient, kmc_amount, True)]
    logs = l2.eth.get_logs({"fromBlock": tx["blockNumber"], "toBlock": tx["blockNumber"],
                            "address": l2_bridge.address})
    assert any(log["transactionHash"] == tx["hash"] for log in logs)
    # the native credit is in the transfer log, from the bridge's reserve to the recipient
    transfer_topic = Web3.keccak(text="LogTransfer(address,address,address,uint256,uint256,uint256,uint256,uint256)")
    credits = [log for log in l2_receipt["logs"] if log["address"].lower() == TRANSFER_LOG
               and log["topics"][0] == transfer_topic]
    assert len(credits) == 1, l2_receipt["logs"]
    assert Web3.to_checksum_address(credits[0]["topics"][2][-20:]) == l2_bridge.address
    assert Web3.to_checksum_address(credits[0]["topics"][3][-20:]) == recipient

    # ETH and the ERC-20 as child tokens at their deterministic addresses
    child_abi = [{"type": "function", "name": n, "stateMutability": "view", "inputs": i,
                  "outputs": [{"name": "", "type": t}]}
                 for n, i, t in [("name", [], "string"), ("symbol", [], "string"), ("decimals", [], "uint8"),
                                 ("totalSupply", [], "uint256"),
                                 ("balanceOf", [{"name": "a", "type": "address"}], "uint256")]]
    eth_child = l2.eth.contract(address=l2_bridge.functions.childAddress(ETH_ID).call(), abi=child_abi)
    usd_child = l2.eth.contract(address=l2_bridge.functions.childAddress(usd.address).call(), abi=child_abi)
    assert l2_bridge.functions.childOf(ETH_ID).call() == eth_child.address
    assert eth_child.functions.balanceOf(recipient).call() == eth_amount
    assert (eth_child.functions.name().call(), eth_child.functions.symbol().call(),
            eth_child.functions.decimals().call()) == ("Ether", "ETH", 18)
    assert usd_child.functions.balanceOf(recipient).call() == usd_amount
    assert usd_child.functions.symbol().call() == usd.functions.symbol().call()

    # both sides keep the same hash chain and count; locked on L1 = held on L2
    wait_until("final", lambda: get_deposit(l2, last_id)["finality"]["status"] != "included", timeout=60)
    final = get_deposit(l2, last_id)
    assert final["stateHash"] == "0x" + bridge.functions.stateHash().call().hex()
    assert l2_bridge.functions.lastStateHash().call().hex() == bridge.functions.stateHash().call().hex()
    assert l2_bridge.functions.lastStateId().call() == bridge.functions.stateCounter().call()
    assert bridge.functions.locked(KMC_ID).call() == locked_kmc + kmc_amount
    assert l2.eth.get_balance(l2_bridge.address) == reserve - kmc_amount
    assert bridge.functions.locked(ETH_ID).call() == eth_child.functions.totalSupply().call()
    assert bridge.functions.locked(usd.address).call() == usd_child.functions.totalSupply().call() == usd_amount

    # the deposited KMC pays for its own use on L2 at once, gas accounted to the wei
    other = Account.create().address
    spend = l2.eth.send_raw_transaction(holder.sign_transaction({
        "to": other, "value": KMC, "gas": 21_000, "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9,
        "nonce": 0, "chainId": CHAIN_ID}).raw_transaction)
    spent = l2.eth.wait_for_transaction_receipt(spend, timeout=30)
    assert spent["status"] == 1
    assert l2.eth.get_balance(other) == KMC
    assert l2.eth.get_balance(recipient) == kmc_amount - KMC - spent["gasUsed"] * spent["effectiveGasPrice"]

    # no deposit id 0; an id not made yet is unknown
    assert get_deposit(l2, 0) is None
    assert get_deposit(l2, last_id + 1000)["status"] == "unknown"

    # and back: the holder burns part of each child token on L2 (paying gas with the
    # deposited KMC) and a relayer exits both on L1, where the recipient is paid in ETH
    # and in the ERC-20; locked on L1 still equals what L2 holds
    l1_recipient = Account.create().address
    burns = [(eth_child, ETH_ID, eth_amount // 2), (usd_child, usd.address, usd_amount - 1)]
    exits = []
    nonce = 1
    for child, _, amount in burns:
        burn = l2_bridge.functions.withdrawToken(child.address, l1_recipient, amount).build_transaction({
            "from": recipient, "chainId": CHAIN_ID, "gas": 200_000, "nonce": nonce,
            "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9})
        nonce += 1
        burned = l2.eth.wait_for_transaction_receipt(
            l2.eth.send_raw_transaction(holder.sign_transaction(burn).raw_transaction), timeout=30)
        assert burned["status"] == 1, burned
        exits.append(burned["transactionHash"].to_0x_hex())
    assert eth_child.functions.balanceOf(recipient).call() == eth_amount - eth_amount // 2
    assert usd_child.functions.totalSupply().call() == 1

    def proof(tx):
        p = l2.provider.make_request("koma_getWithdrawalProof", [tx])["result"]
        return p if p is not None and p["checkpoint"] is not None else None

    for tx, (_, token_id, _) in zip(exits, burns):
        p = wait_until("a checkpoint covering the burn", lambda: proof(tx), timeout=150, interval=1)
        assert Web3.to_checksum_address(p["withdrawal"]["token"]) == Web3.to_checksum_address(token_id)
        send_l1(l1, DEV_KEYS[7], bridge.functions.exit(exit_args(p)))
    assert l1.eth.get_balance(l1_recipient) == eth_amount // 2
    assert usd.functions.balanceOf(l1_recipient).call() == usd_amount - 1
    assert bridge.functions.locked(ETH_ID).call() == eth_child.functions.totalSupply().call()
    assert bridge.functions.locked(usd.address).call() == usd_child.functions.totalSupply().call() == 1


def test_koma_bridge_deposits_and_waits_for_l2(devnet):
    """`koma bridge deposit` approves, deposits, and says how far it is until the deposit
    is spendable on L2; `koma bridge status --deposit` reports it afterwards."""
    l2 = Web3(Web3.HTTPProvider(devnet["l2_url"]))
    l1_url = devnet["w3"].provider.endpoint_uri
    contracts_file = str(devnet["datadir"] / "l1-contracts.json")
    recipient = Account.create().address
    out = run([str(koma_bin()), "bridge", "deposit", "--amount", "1.5", "--to", recipient,
               "--l2-rpc", devnet["l2_url"], "--l1-rpc", l1_url, "--l1-contracts", contracts_file,
               "--account", "0"], timeout=200)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "applied in L2 block" in out.stdout, out.stdout
    assert l2.eth.get_balance(recipient) == 3 * KMC // 2
    deposit_id = next(line.split()[1] for line in out.stdout.splitlines() if line.startswith("deposit "))
    status = run([str(koma_bin()), "bridge", "status", "--deposit", deposit_id, "--l2-rpc", devnet["l2_url"],
                  "--l1-rpc", l1_url, "--l1-contracts", contracts_file], timeout=30)
    assert status.returncode == 0 and "applied in L2 block" in status.stdout, status.stdout + status.stderr
    bad = run([str(koma_bin()), "bridge", "deposit", "--amount", "1", "--token", "USDC",
               "--l1-contracts", contracts_file], timeout=30)
    assert bad.returncode == 1 and bad.stderr.startswith("error: invalid token"), bad.stderr

    # ETH round trip with the CLI: deposited to the account's own L2 address, its child
    # token burned on L2, exited on L1 to a fresh address
    endpoints = ["--l2-rpc", devnet["l2_url"], "--l1-rpc", l1_url, "--l1-contracts", contracts_file]
    out = run([str(koma_bin()), "bridge", "deposit", "--amount", "0.5", "--token", "ETH", *endpoints,
               "--account", "4"], timeout=200)
    assert out.returncode == 0 and "applied in L2 block" in out.stdout, out.stdout + out.stderr
    l1_to = Account.create().address
    out = run([str(koma_bin()), "bridge", "withdraw", "--amount", "0.25", "--token", "eth", "--to", l1_to,
               "--l2-rpc", devnet["l2_url"], "--account", "4"], timeout=90)
    assert out.returncode == 0 and "0.25 ETH" in out.stdout, out.stdout + out.stderr
    tx = next(line.split()[-1] for line in out.stdout.splitlines() if line.startswith("withdrawal sent:"))
    out = run([str(koma_bin()), "bridge", "exit", "--tx", tx, *endpoints, "--account", "5"], timeout=200)
    assert out.returncode == 0 and "exited: withdrawal" in out.stdout, out.stdout + out.stderr
    assert devnet["w3"].eth.get_balance(l1_to) == KMC // 4
    never = run([str(koma_bin()), "bridge", "withdraw", "--amount", "1", "--token", "0x" + "77" * 20,
                 "--l2-rpc", devnet["l2_url"]], timeout=30)
    assert never.returncode == 1 and "never been deposited" in never.stderr, never.stderr

    # after every deposit, withdrawal and exit of this module, the books balance on the
    # devnet's own L1 too
    code, report, output = audit(devnet["l2_url"], l1_url, devnet["datadir"] / "l1-contracts.json",
                                 devnet["datadir"] / "genesis.json", block="latest")
    assert code == 0 and report["balanced"], output
    assert all(t["surplus"] == "0" for t in report["tokens"]) and report["exited"] >= 4, output
