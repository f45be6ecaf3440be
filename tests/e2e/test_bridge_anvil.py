"""The bridge with anvil (Foundry's reference node, from the npm registry) as the L1:
`koma devnet --l1-rpc` deploys the bridge there, and web3.py deposits ETH, KMC and a
fresh ERC-20, uses them on KOMA, withdraws and exits them, with every balance and every
fee accounted to the wei on both chains. `koma bridge audit` balances after each step of
a seeded random run of deposits, transfers, withdrawals, exits and L1 reorgs. A deposit
reorged out on L1 before its confirmations is never applied; one made while the whole
devnet is down is applied exactly once after it restarts."""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from pathlib import Path

import eth_abi
import pytest
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractCustomError
from web3.logs import DISCARD

from bridgeutil import (CHILD_ABI, ETH_ID, KMC, KMC_ID, L2_BRIDGE, abi, audit, checkpointed_proof,
                        deploy_erc20, exit_args, fee, get_deposit, notarized_proof, send_l1, send_l2)
from cluster import free_port_range, wait_until
from devnode import DEV_KEYS, anvil_bin, koma_bin, run

pytestmark = pytest.mark.koma_only

INTERVAL = 8  # L2 blocks per checkpoint
EMPTY_TRIE_ROOT = "0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421"
DEPLOYER = DEV_KEYS[0]  # deploys on anvil and holds the KMC not staked or locked
RELAYER = DEV_KEYS[2]  # sends exits on L1


class Net:
    """anvil, and a 2-node devnet on it that can be stopped and started again."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.datadir = tmp / "devnet"
        self.http, self.p2p = free_port_range(2), free_port_range(2)
        anvil_port = free_port_range(1)
        self.l1_url = f"http://127.0.0.1:{anvil_port}"
        with open(tmp / "anvil.log", "w") as out:
            self.anvil = subprocess.Popen(
                [str(anvil_bin()), "--host", "127.0.0.1", "--port", str(anvil_port), "--chain-id", "31337",
                 "--hardfork", "prague", "--block-time", "1"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.l1 = Web3(Web3.HTTPProvider(self.l1_url, request_kwargs={"timeout": 30}))
        self.l2_url = f"http://127.0.0.1:{self.http}"
        self.l2 = Web3(Web3.HTTPProvider(self.l2_url, request_kwargs={"timeout": 30}))
        self.devnet: subprocess.Popen | None = None
        self.runs = 0
        wait_until("anvil", lambda: self.l1.is_connected(), timeout=30)

    @property
    def contracts_file(self) -> Path:
        return self.datadir / "l1-contracts.json"

    @property
    def log(self) -> Path:
        return self.tmp / f"devnet-{self.runs}.out"

    def start(self) -> None:
        self.runs += 1
        with open(self.log, "w") as out:
            self.devnet = subprocess.Popen(
                [str(koma_bin()), "--log", "warn", "devnet", "--nodes", "2", "--datadir", str(self.datadir),
                 "--http-port", str(self.http), "--p2p-port", str(self.p2p), "--l1-rpc", self.l1_url,
                 "--checkpoint-interval", str(INTERVAL)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_until("the deployment on anvil",
                   lambda: self.contracts_file.exists() or self.devnet.poll() is not None, timeout=120)
        assert self.devnet.poll() is None, self.log.read_text()
        wait_until("the L2", lambda: self.l2.is_connected() and self.l2.eth.block_number > 0, timeout=60)
        self.contracts = json.loads(self.contracts_file.read_text())
        self.bridge = self.l1.eth.contract(address=self.contracts["bridge"], abi=abi("Bridge"))
        self.kmc = self.l1.eth.contract(address=self.contracts["stakingToken"], abi=abi("StakingToken"))
        self.l2_bridge = self.l2.eth.contract(address=Web3.to_checksum_address(L2_BRIDGE), abi=abi("L2Bridge"))

    def stop(self) -> None:
        if self.devnet is not None and self.devnet.poll() is None:
            self.devnet.terminate()
            try:
                self.devnet.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.devnet.kill()
                self.devnet.wait()

    def close(self) -> None:
        self.stop()
        self.anvil.terminate()
        self.anvil.wait(timeout=30)

    def child(self, l1_token: str):
        return self.l2.eth.contract(address=self.l2_bridge.functions.childAddress(l1_token).call(), abi=CHILD_ABI)

    def audit(self, block: str = "finalized") -> dict:
        code, report, output = audit(self.l2_url, self.l1_url, self.contracts_file,
                                     self.datadir / "genesis.json", block)
        assert code == 0 and report is not None and report["balanced"], output
        assert all(t["surplus"] == "0" for t in report["tokens"]), output
        return report

    def deposit(self, key: str, token: str, to: str, amount: int) -> tuple[int, list[dict]]:
        """Deposits on L1; (the state id, the depositor's receipts)."""
        receipts = []
        if token == ETH_ID:
            receipts.append(send_l1(self.l1, key, self.bridge.functions.depositEtherFor(to), value=amount))
        else:
            erc20 = self.kmc if token == KMC_ID else self.l1.eth.contract(address=token, abi=abi("StakingToken"))
            receipts.append(send_l1(self.l1, key, erc20.functions.approve(self.bridge.address, amount)))
            receipts.append(send_l1(self.l1, key, self.bridge.functions.depositERC20For(erc20.address, to, amount)))
        event = self.bridge.events.Deposited().process_receipt(receipts[-1], errors=DISCARD)[0]["args"]
        return event["id"], receipts

    def wait_applied(self, deposit_id: int) -> dict:
        return wait_until(f"deposit {deposit_id} applied on L2",
                          lambda: (d := get_deposit(self.l2, deposit_id))["status"] == "applied" and d,
                          timeout=90, interval=0.5)

    def exit(self, tx_hash: str) -> dict:
        # notarized: this test rolls the newest L1 block back, which can hold a checkpoint
        p = wait_until("a notarized checkpoint covering the withdrawal",
                       lambda: notarized_proof(self.l2, tx_hash), timeout=120, interval=1)
        return send_l1(self.l1, RELAYER, self.bridge.functions.exit(exit_args(p)))

    def reorged_deposit(self, key: str, to: str, amount: int) -> tuple[str, int]:
        """An ether deposit mined in an L1 block that a reorg then drops before its
        confirmations; (its transaction hash, the block it was in)."""
        self.mining(False)
        try:
            counter = self.bridge.functions.stateCounter().call()
            account = Account.from_key(key)
            tx = self.bridge.functions.depositEtherFor(to).build_transaction({
                "from": account.address, "value": amount, "chainId": self.l1.eth.chain_id, "gas": 200_000,
                "nonce": self.l1.eth.get_transaction_count(account.address)})
            tx_hash = self.l1.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
            assert "error" not in self.l1.provider.make_request("evm_mine", [])
            receipt = self.l1.eth.get_transaction_receipt(tx_hash)
            assert receipt["status"] == 1
            assert self.bridge.functions.stateCounter().call() == counter + 1
            time.sleep(3)  # the nodes poll the L1: they see the event, not yet confirmed
            assert get_deposit(self.l2, counter + 1)["status"] == "unknown"
            assert "error" not in self.l1.provider.make_request("anvil_rollback", [1])
            assert self.bridge.functions.stateCounter().call() == counter
            return tx_hash, receipt["blockNumber"]
        finally:
            self.mining(True)

    def mining(self, on: bool) -> None:
        result = self.l1.provider.make_request("anvil_setIntervalMining", [1 if on else 0])
        assert "error" not in result, result


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    net = Net(tmp_path_factory.mktemp("bridge-anvil"))
    try:
        net.start()
        yield net
    finally:
        net.close()


def test_eth_kmc_and_an_erc20_round_trip_through_anvil_to_the_wei(net):
    l1, l2 = net.l1, net.l2
    depositor = Account.from_key(DEPLOYER)
    alice, bob = Account.create(), Account.create()  # fresh on L2
    l1_alice, l1_bob = Account.create().address, Account.create().address  # fresh on L1
    usd = deploy_erc20(l1, DEPLOYER, 10**24)
    kmc_in, eth_in, usd_in = 5 * KMC + 7, 3 * KMC // 10, 1_000_000

    eth_before = l1.eth.get_balance(depositor.address)
    kmc_before = net.kmc.functions.balanceOf(depositor.address).call()
    locked_before = {t: net.bridge.functions.locked(t).call() for t in (KMC_ID, ETH_ID)}
    ids, l1_receipts = [], []
    for token, amount in ((KMC_ID, kmc_in), (ETH_ID, eth_in), (usd.address, usd_in)):
        deposit_id, receipts = net.deposit(DEPLOYER, token, alice.address, amount)
        ids.append(deposit_id)
        l1_receipts += receipts
    # on L1: the depositor paid the amounts and the gas, nothing more
    assert eth_before - l1.eth.get_balance(depositor.address) == eth_in + sum(fee(r) for r in l1_receipts)
    assert kmc_before - net.kmc.functions.balanceOf(depositor.address).call() == kmc_in
    assert usd.functions.balanceOf(depositor.address).call() == 10**24 - usd_in
    for deposit_id in ids:
        net.wait_applied(deposit_id)
    eth_child, usd_child = net.child(ETH_ID), net.child(usd.address)
    assert l2.eth.get_balance(alice.address) == kmc_in
    assert eth_child.functions.balanceOf(alice.address).call() == eth_in
    assert usd_child.functions.balanceOf(alice.address).call() == usd_in
    assert (usd_child.functions.symbol().call(), usd_child.functions.decimals().call()) == \
        (usd.functions.symbol().call(), usd.functions.decimals().call())

    # use them on L2: the deposited KMC pays every fee; a plain transfer and token calls
    l2_receipts = [send_l2(l2, alice, to=bob.address, value=KMC, gas=21_000)]
    l2_receipts.append(send_l2(l2, alice, usd_child.functions.transfer(bob.address, 250_000)))
    l2_receipts.append(send_l2(l2, alice, eth_child.functions.transfer(bob.address, KMC // 10)))
    assert usd_child.functions.balanceOf(bob.address).call() == 250_000
    # withdraw: native KMC, and both child tokens burned
    w_kmc = send_l2(l2, alice, net.l2_bridge.functions.withdraw(l1_alice), value=2 * KMC)
    w_eth = send_l2(l2, alice, net.l2_bridge.functions.withdrawToken(eth_child.address, l1_alice, KMC // 10))
    l2_receipts += [w_kmc, w_eth]
    # bob pays its fee with the KMC alice sent
    w_usd = send_l2(l2, bob, net.l2_bridge.functions.withdrawToken(usd_child.address, l1_bob, 100_000))
    alice_fees = sum(fee(r) for r in l2_receipts)
    assert l2.eth.get_balance(alice.address) == kmc_in - KMC - 2 * KMC - alice_fees
    assert l2.eth.get_balance(bob.address) == KMC - fee(w_usd)
    assert eth_child.functions.totalSupply().call() == eth_in - KMC // 10
    assert usd_child.functions.totalSupply().call() == usd_in - 100_000

    for w in (w_kmc, w_eth, w_usd):
        net.exit(w["transactionHash"].to_0x_hex())
    assert net.kmc.functions.balanceOf(l1_alice).call() == 2 * KMC
    assert l1.eth.get_balance(l1_alice) == KMC // 10
    assert usd.functions.balanceOf(l1_bob).call() == 100_000
    # the L1 bridge holds exactly what L2 can still claim
    assert net.bridge.functions.locked(ETH_ID).call() - locked_before[ETH_ID] == eth_child.functions.totalSupply().call()
    assert net.bridge.functions.locked(usd.address).call() == usd_child.functions.totalSupply().call() == 900_000
    assert net.bridge.functions.locked(KMC_ID).call() - locked_before[KMC_ID] == kmc_in - 2 * KMC
    assert usd.functions.balanceOf(net.bridge.address).call() == 900_000

    wait_until("the exits' blocks final", lambda: l2.eth.get_block("finalized")["number"] >= w_usd["blockNumber"],
               timeout=60)
    report = net.audit()
    usd_books = next(t for t in report["tokens"] if t["token"].lower() == usd.address.lower())
    assert (wei(usd_books["locked"]), wei(usd_books["issued"]), wei(usd_books["pendingExits"])) == \
        (900_000, 900_000, 0), usd_books
    # the same for a person, and a clear error for a block that does not exist
    endpoints = ["--l2-rpc", net.l2_url, "--l1-rpc", net.l1_url, "--l1-contracts", str(net.contracts_file),
                 "--genesis", str(net.datadir / "genesis.json")]
    out = run([str(koma_bin()), "bridge", "audit", *endpoints], timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{usd.functions.symbol().call()} ({usd.address}): balanced" in out.stdout, out.stdout
    assert "issued on L2 0.0000000000009 + pending deposits 0 + pending exits 0"  # 18 decimals in out.stdout, out.stdout
    out = run([str(koma_bin()), "bridge", "audit", *endpoints, "--block", "99999999"], timeout=60)
    assert out.returncode == 1 and "the L2 has no block 99999999 yet" in out.stderr, out.stderr


def test_a_deposit_reorged_out_before_its_confirmations_is_never_applied(net):
    l1, l2 = net.l1, net.l2
    victim, honest = Account.create().address, Account.create().address
    eth_child = net.child(ETH_ID)
    counter = net.bridge.functions.stateCounter().call()
    tx_hash, mined_in = net.reorged_deposit(DEV_KEYS[3], victim, KMC)
    # the next deposit takes the same id, with other data; the dropped one never appears
    deposit_id, _ = net.deposit(DEV_KEYS[4], ETH_ID, honest, 12345)
    assert deposit_id == counter + 1
    d = net.wait_applied(deposit_id)
    assert Web3.to_checksum_address(d["to"]) == honest and int(d["amount"], 16) == 12345
    assert eth_child.functions.balanceOf(honest).call() == 12345
    wait_until("10 more L1 blocks", lambda: l1.eth.block_number >= mined_in + 10, timeout=30)
    assert not _mined_again(l1, tx_hash), "anvil mined the dropped deposit again"
    assert eth_child.functions.balanceOf(victim).call() == 0
    applied = net.l2_bridge.events.DepositApplied().get_logs(from_block=0, argument_filters={"id": deposit_id})
    assert len(applied) == 1
    wait_until("the deposit final", lambda: l2.eth.get_block("finalized")["number"] >= int(d["blockNumber"], 16),
               timeout=60)
    net.audit()


def wei(quantity: str) -> int:
    return int(quantity, 16)


def _mined_again(l1: Web3, tx_hash) -> bool:
    """Whether a transaction dropped by a rollback was mined again later."""
    try:
        return l1.eth.get_transaction_receipt(tx_hash) is not None
    except Exception:  # web3.py raises TransactionNotFound
        return False


def test_random_deposits_transfers_withdrawals_exits_and_reorgs_keep_the_books(net):
    """A seeded random run (KOMA_BRIDGE_SEED replays one, KOMA_BRIDGE_STEPS sets its
    length): after every step `koma bridge audit` balances to the wei at the finalized
    and at the latest L2 block, and at the end, with everything applied and exited,
    nothing is pending and L1 locks exactly what L2 issued."""
    seed = int(os.environ.get("KOMA_BRIDGE_SEED", random.randrange(2**32)))
    print(f"bridge run seed {seed} (replay: KOMA_BRIDGE_SEED={seed})")
    rng = random.Random(seed)
    l2 = net.l2
    users = [Account.create() for _ in range(3)]
    usd = deploy_erc20(net.l1, DEPLOYER, 10**24)
    tokens = [KMC_ID, ETH_ID, usd.address]
    last_id = 0
    for user in users:  # every user can pay L2 gas
        last_id, _ = net.deposit(DEPLOYER, KMC_ID, user.address, 2 * KMC)
    net.wait_applied(last_id)
    unexited: list[str] = []

    def holding(user, token) -> int:
        if token == KMC_ID:
            return l2.eth.get_balance(user.address) - KMC // 10  # keeps enough for fees
        child = net.l2_bridge.functions.childOf(token).call()
        if int(child, 16) == 0:
            return 0
        return net.child(token).functions.balanceOf(user.address).call()

    for step in range(int(os.environ.get("KOMA_BRIDGE_STEPS", "14"))):
        op = rng.choice(["deposit", "deposit", "transfer", "withdraw", "withdraw", "exit", "reorg"])
        user, token = rng.choice(users), rng.choice(tokens)
        scale = {KMC_ID: KMC, ETH_ID: KMC // 10, usd.address: 10**6}[token]
        did = op
        if op == "deposit":
            last_id, _ = net.deposit(DEPLOYER, token, user.address, rng.randint(1, scale))
            did = f"deposit {last_id}: {token} to {user.address}"
        elif op in ("transfer", "withdraw") and holding(user, token) > 0:
            amount = rng.randint(1, holding(user, token))
            if op == "transfer":
                other = rng.choice([u for u in users if u is not user])
                if token == KMC_ID:
                    send_l2(l2, user, to=other.address, value=amount, gas=21_000)
                else:
                    send_l2(l2, user, net.child(token).functions.transfer(other.address, amount))
            elif token == KMC_ID:
                r = send_l2(l2, user, net.l2_bridge.functions.withdraw(user.address), value=amount)
                unexited.append(r["transactionHash"].to_0x_hex())
            else:
                child = net.child(token).address
                r = send_l2(l2, user, net.l2_bridge.functions.withdrawToken(child, user.address, amount))
                unexited.append(r["transactionHash"].to_0x_hex())
            did = f"{op} {amount} of {token}"
        elif op == "exit" and unexited:
            net.exit(unexited.pop(rng.randrange(len(unexited))))
            did = f"exit ({len(unexited)} withdrawals left to exit)"
        elif op == "reorg":
            net.reorged_deposit(DEV_KEYS[3], user.address, rng.randint(1, KMC))
            did = "a deposit reorged out on L1"
        else:
            did = f"{op} (nothing to do)"
        print(f"step {step}: {did}")
        for block in ("finalized", "latest"):
            try:
                net.audit(block)
            except AssertionError as e:
                raise AssertionError(f"seed {seed}, step {step} ({did}), audit of the {block} block: {e}") from e

    # drain: every deposit applied, every withdrawal exited, all final
    net.wait_applied(net.bridge.functions.stateCounter().call())
    while unexited:
        net.exit(unexited.pop())
    head = l2.eth.block_number
    wait_until("the L2 head final", lambda: l2.eth.get_block("finalized")["number"] >= head, timeout=60)
    report = net.audit()
    for t in report["tokens"]:
        assert wei(t["pendingDeposits"]) == 0 and wei(t["pendingExits"]) == 0, (seed, t)
        assert wei(t["locked"]) == wei(t["issued"]), (seed, t)


def deploy_l2(l2: Web3, account, runtime: bytes) -> str:
    """Deploys `runtime` as a contract on KOMA (a minimal initcode copies it out)."""
    init = bytes([0x60, len(runtime), 0x80, 0x60, 0x0B, 0x60, 0x00, 0x39, 0x60, 0x00, 0xF3]) + runtime
    tx = {"from": account.address, "data": init, "chainId": l2.eth.chain_id, "gas": 300_000,
          "nonce": l2.eth.get_transaction_count(account.address, "pending"),
          "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9}
    receipt = l2.eth.wait_for_transaction_receipt(
        l2.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction), timeout=60)
    assert receipt["status"] == 1
    return receipt["contractAddress"]


LOOK_ALIKE_NONCE = 123_456_789  # no real withdrawal has it


def look_alike_emitter(sender: str, recipient: str, token: str, amount: int) -> bytes:
    """Runtime code that emits WithdrawalInitiated(LOOK_ALIKE_NONCE, sender, recipient, token, amount),
    the L2 bridge's event, from another contract."""
    topic = Web3.keccak(text="WithdrawalInitiated(uint256,address,address,address,uint256)")
    address = lambda a: bytes.fromhex(a[2:].lower().rjust(40, "0"))  # noqa: E731
    return (bytes([0x73]) + address(token) + bytes([0x60, 0x00, 0x52])          # mstore(0, token)
            + bytes([0x7F]) + amount.to_bytes(32, "big") + bytes([0x60, 0x20, 0x52])  # mstore(32, amount)
            + bytes([0x73]) + address(recipient) + bytes([0x73]) + address(sender)
            + bytes([0x63]) + LOOK_ALIKE_NONCE.to_bytes(4, "big") + bytes([0x7F]) + bytes(topic)
            + bytes([0x60, 0x40, 0x60, 0x00, 0xA4, 0x00]))                         # log4(0, 64, ...)


def test_forged_exits_look_alike_withdrawals_and_a_refusing_recipient(net):
    """Exits that L1 must refuse, each with the contract's named error: one for a block
    no checkpoint covers yet; a changed recipient, token or amount; a truncated or
    altered block proof; a replay; and a withdrawal event emitted by a contract other
    than the L2 bridge (not in the block's withdrawalsRoot, no proof, no exit). A KMC
    deposit to an L2 contract that refuses ether stays claimable and the books still
    balance."""
    l1, l2 = net.l1, net.l2
    alice = Account.create()
    l1_to = Account.create().address
    deposit_id, _ = net.deposit(DEPLOYER, KMC_ID, alice.address, 3 * KMC)
    net.wait_applied(deposit_id)
    w = send_l2(l2, alice, net.l2_bridge.functions.withdraw(l1_to), value=KMC)
    tx = w["transactionHash"].to_0x_hex()
    relayer = Account.from_key(RELAYER).address
    root = l1.eth.contract(address=net.contracts["rootChain"], abi=abi("RootChain"))

    def refused(args) -> str:
        with pytest.raises(ContractCustomError) as e:
            net.bridge.functions.exit(args).call({"from": relayer})
        data = e.value.data if isinstance(e.value.data, str) else e.value.args[0]
        return data.removeprefix("0x")[:8]

    def selector(signature: str) -> str:
        return Web3.keccak(text=signature)[:4].hex().removeprefix("0x")

    # not checkpointed yet: an exit naming a checkpoint L1 does not have (the next one)
    # is refused, whether or not the withdrawal's own checkpoint has arrived already
    early = l2.provider.make_request("koma_getWithdrawalProof", [tx])["result"]
    early = {**early, "checkpoint": hex(root.functions.head().call()[2] + 1), "blockIndex": "0x0",
             "blockProof": []}
    assert refused(exit_args(early)) == selector("UnknownCheckpoint(uint256)")

    p = wait_until("a checkpoint covering the withdrawal", lambda: checkpointed_proof(l2, tx), timeout=120,
                   interval=1)
    good = exit_args(p)
    withdrawal = good[0]
    for changed in (withdrawal[:2] + (Account.create().address,) + withdrawal[3:],   # recipient
                    withdrawal[:3] + (Web3.to_checksum_address(ETH_ID),) + withdrawal[4:],  # token
                    withdrawal[:4] + (withdrawal[4] + 1,)):                      # amount
        assert refused((changed, *good[1:])) == selector("BadWithdrawalProof()")
    if good[6]:  # truncated
        assert refused((*good[:6], good[6][:-1])) in (selector("BadBlockProof()"),
                                                      selector("BadProofIndex(uint256,uint256)"))
    leaf = good[4]
    assert refused((*good[:4], (leaf[0], leaf[1] + 1, *leaf[2:]), *good[5:])) == selector("BadBlockProof()")
    send_l1(l1, RELAYER, net.bridge.functions.exit(good))
    assert net.kmc.functions.balanceOf(l1_to).call() == KMC
    assert refused(good) == selector("AlreadyExited(uint256)")

    # the bridge's event from another contract is not a withdrawal
    fake = deploy_l2(l2, alice, look_alike_emitter(alice.address, l1_to, KMC_ID, 10 * KMC))
    r = send_l2(l2, alice, to=fake, gas=100_000)
    emitted = [log for log in r["logs"] if log["address"] == fake]  # beside the fee entries
    assert len(emitted) == 1 and emitted[0]["topics"][1] == LOOK_ALIKE_NONCE.to_bytes(32, "big"), r["logs"]
    assert l2.eth.get_block(r["blockNumber"])["withdrawalsRoot"].to_0x_hex() == EMPTY_TRIE_ROOT
    err = l2.provider.make_request("koma_getWithdrawalProof", [r["transactionHash"].to_0x_hex()])["error"]
    assert err["code"] == -32602 and "made 0 withdrawal(s)" in err["message"], err
    forged_leaf = Web3.keccak(eth_abi.encode(["uint256", "address", "address", "address", "uint256"],
                                             [LOOK_ALIKE_NONCE, alice.address, l1_to, KMC_ID, 10 * KMC]))
    block = l2.eth.get_block(r["blockNumber"])
    forged = ((LOOK_ALIKE_NONCE, alice.address, l1_to, Web3.to_checksum_address(KMC_ID), 10 * KMC), 0, [], good[3],
              (block["number"], block["timestamp"], block["hash"], block["receiptsRoot"], forged_leaf), 0, [])
    assert refused(forged) == selector("BadBlockProof()")

    # KMC deposited to an L2 contract that refuses ether: claimable, not lost
    refuser = deploy_l2(l2, alice, bytes([0x60, 0x00, 0x80, 0xFD]))  # revert(0, 0)
    deposit_id, _ = net.deposit(DEPLOYER, KMC_ID, refuser, 2 * KMC + 3)
    d = net.wait_applied(deposit_id)
    applied = net.l2_bridge.events.DepositApplied().get_logs(from_block=int(d["blockNumber"], 16),
                                                             argument_filters={"id": deposit_id})
    assert [e["args"]["credited"] for e in applied] == [False]
    assert l2.eth.get_balance(refuser) == 0
    assert net.l2_bridge.functions.claimable(refuser).call() == 2 * KMC + 3
    wait_until("the deposit final", lambda: l2.eth.get_block("finalized")["number"] >= int(d["blockNumber"], 16),
               timeout=60)
    net.audit()


def test_deposits_around_a_devnet_restart_are_applied_exactly_once(net):
    """One deposit lands on L1 just as the whole devnet stops, another while it is down:
    after the restart each is applied exactly once and credited to the wei."""
    l2 = net.l2
    first_to, second_to = Account.create().address, Account.create().address
    first, _ = net.deposit(DEPLOYER, KMC_ID, first_to, 3 * KMC + 1)
    net.stop()
    second, _ = net.deposit(DEPLOYER, KMC_ID, second_to, 4 * KMC + 2)
    mined = net.l1.eth.block_number
    wait_until("the deposit confirmed on L1", lambda: net.l1.eth.block_number >= mined + 4, timeout=30)
    net.start()
    for deposit_id, to, amount in ((first, first_to, 3 * KMC + 1), (second, second_to, 4 * KMC + 2)):
        d = net.wait_applied(deposit_id)
        assert l2.eth.get_balance(to) == amount
        applied = net.l2_bridge.events.DepositApplied().get_logs(from_block=0, argument_filters={"id": deposit_id})
        assert [(e["args"]["to"], e["args"]["amount"]) for e in applied] == [(to, amount)]
    wait_until("the deposit final", lambda: l2.eth.get_block("finalized")["number"] >= int(d["blockNumber"], 16),
               timeout=60)
    net.audit()
