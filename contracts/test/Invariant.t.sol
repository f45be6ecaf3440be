// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {BLS} from "../src/lib/BLS.sol";
import {RootChain} from "../src/RootChain.sol";
import {StakingToken} from "../src/StakingToken.sol";
import {BlsKeys} from "./utils/BlsKeys.sol";
import {Test} from "./utils/Test.sol";
import {Units} from "./utils/Units.sol";
import {vm} from "./utils/Vm.sol";

/// Drives a RootChain with random joins, top-ups, exits, withdrawals, slashings, time and
/// checkpoints (signed by random subsets), and keeps a model of what must hold.
contract Handler is Test {
    uint256 internal constant STAKERS = 12;
    uint256 internal constant L2_CHAIN_ID = 42424;

    StakingToken public immutable token;
    RootChain public immutable root;

    // the model
    uint256 public locked; // tokens the stakers have locked and not withdrawn
    uint256 public slashedAway; // tokens slashed and kept by the contract
    uint256 public bonds; // producer candidates' bonds not withdrawn
    mapping(uint256 => bool) public candidate; // candidate i is registered (and not left)
    mapping(uint256 => bool) public bondHeld; // candidate i's bond is held (registered or leaving)
    mapping(uint256 => bool) public bannedProducer; // candidate i's key was slashed for a double seal
    uint256 public rewards; // tokens paid to reporters
    uint256 public funded; // tokens put into the reward pool
    uint256 public rewardsPaid; // checkpoint rewards paid to stakers (claims and withdrawals)
    uint256 public roundingBound; // the most wei rounding may have kept back so far
    uint256 public accepted; // checkpoints accepted
    uint256 public nextStart; // first block of the next checkpoint
    bool public thresholdBroken; // a checkpoint was accepted at or below 2/3, or refused above it
    mapping(uint256 => bool) public joined; // staker i has a record (staking or leaving)
    mapping(uint256 => bool) public pending; // staker i is in the pending set
    mapping(uint256 => uint256) public amountOf; // staked and unbonding, not withdrawn
    mapping(uint256 => uint256) public unbondingOf; // taken out by decreases, not withdrawn
    mapping(uint256 => bool) public slashedKey; // staker i's KoMaBFT key was slashed
    mapping(address => uint256) internal indexOfSigner;
    uint256[STAKERS] internal sk;

    constructor(StakingToken token_, RootChain root_) {
        token = token_;
        root = root_;
        for (uint256 i; i < STAKERS; ++i) {
            sk[i] = BlsKeys.secretKey(1000 + i);
            indexOfSigner[signer(i)] = i;
        }
    }

    function owner(uint256 i) public pure returns (address) {
        return address(uint160(0xA0000 + i));
    }

    /// The secp256k1 key staker i signs KoMaBFT units with.
    function unitKey(uint256 i) public pure returns (uint256) {
        return 0xB0000 + i;
    }

    function signer(uint256 i) public pure returns (address) {
        return vm.addr(unitKey(i));
    }

    function keyOf(uint256 i) public view returns (bytes memory) {
        return BlsKeys.publicKey(sk[i]);
    }

    // ---- actions ----

    function join(uint256 seed, uint256 amount) external {
        uint256 i = seed % STAKERS;
        if (joined[i]) return;
        amount = bound(amount, 1 ether, 1000 ether);
        bytes memory pk = keyOf(i);
        bytes memory pop = BlsKeys.sign(sk[i], root.popMessage(owner(i), signer(i), pk), BLS.POP_DST);
        token.transfer(owner(i), amount);
        vm.startPrank(owner(i));
        token.approve(address(root), amount);
        (bool ok,) = address(root).call(abi.encodeCall(root.stake, (amount, signer(i), pk, pop)));
        vm.stopPrank();
        if (!ok) return; // the set is full
        joined[i] = true;
        pending[i] = true;
        amountOf[i] = amount;
        locked += amount;
    }

    function restake(uint256 seed, uint256 amount) external {
        uint256 i = seed % STAKERS;
        if (!pending[i]) return;
        amount = bound(amount, 1 gwei, 100 ether);
        token.transfer(owner(i), amount);
        vm.startPrank(owner(i));
        token.approve(address(root), amount);
        root.restake(amount);
        vm.stopPrank();
        amountOf[i] += amount;
        locked += amount;
    }

    function decrease(uint256 seed, uint256 amount) external {
        uint256 i = seed % STAKERS;
        if (!pending[i]) return;
        uint256 staked = amountOf[i] - unbondingOf[i];
        if (staked <= 1 ether) return; // the minimum must stay
        amount = bound(amount, 1, staked - 1 ether);
        vm.prank(owner(i));
        root.decreaseStake(amount);
        unbondingOf[i] += amount;
    }

    /// A staker that stays takes out its unbonding tokens once it may.
    function withdrawUnbonded(uint256 seed) external {
        uint256 i = seed % STAKERS;
        if (!pending[i] || unbondingOf[i] == 0) return;
        uint256 before = token.balanceOf(owner(i));
        vm.prank(owner(i));
        (bool ok,) = address(root).call(abi.encodeCall(root.withdraw, ()));
        if (!ok) return; // its set is not active yet, or the delay is not over
        assertEq(token.balanceOf(owner(i)) - before, unbondingOf[i], "paid the unbonding amount");
        amountOf[i] -= unbondingOf[i];
        locked -= unbondingOf[i];
        unbondingOf[i] = 0;
    }

    function unstake(uint256 seed) external {
        uint256 i = seed % STAKERS;
        if (!pending[i]) return;
        vm.prank(owner(i));
        root.unstake();
        pending[i] = false;
    }

    function withdraw(uint256 seed) external {
        uint256 i = seed % STAKERS;
        if (!joined[i] || pending[i]) return;
        uint256 before = token.balanceOf(owner(i));
        vm.prank(owner(i));
        (bool ok,) = address(root).call(abi.encodeCall(root.withdraw, ()));
        if (!ok) return; // exit not active yet, or delay not over
        uint256 paid = token.balanceOf(owner(i)) - before;
        assertTrue(paid >= amountOf[i], "the stake paid back");
        if (slashedKey[i]) assertEq(paid, amountOf[i], "a slashed staker's rewards are forfeit");
        rewardsPaid += paid - amountOf[i];
        roundingBound += 1; // the closed account's fraction of a wei
        joined[i] = false;
        locked -= amountOf[i];
        amountOf[i] = 0;
        unbondingOf[i] = 0;
    }

    /// Staker i signs two units with the same seq and someone reports them: half its
    /// stake goes (a tenth of that to the reporter) and it leaves the pending set.
    function slash(uint256 seed, uint64 seq) external {
        uint256 i = seed % STAKERS;
        if (!joined[i] || slashedKey[i]) return;
        bytes32 instance = Units.instanceId(bytes32(0), 1, bytes32(0));
        bytes memory a = Units.encode(instance, uint32(i), seq, 1, bytes32("a"), 4);
        bytes memory b = Units.encode(instance, uint32(i), seq, 1, bytes32("b"), 4);
        vm.prank(address(0xBEEF));
        root.reportEquivocation(a, Units.sign(unitKey(i), a), b, Units.sign(unitKey(i), b), 1, bytes32(0));
        _slashed(i);
    }

    /// Staker i's BLS key signs two checkpoints with one number and someone reports them:
    /// the same penalty as an equivocation.
    function slashDoubleCheckpoint(uint256 seed, uint64 number, uint32 setId) external {
        uint256 i = seed % STAKERS;
        if (!joined[i] || slashedKey[i]) return;
        RootChain.Checkpoint memory a = RootChain.Checkpoint({number: number, start: 0, end: 7, root: bytes32("a")});
        RootChain.Checkpoint memory b = RootChain.Checkpoint({number: number, start: 0, end: 7, root: bytes32("b")});
        bytes memory sa = BlsKeys.sign(sk[i], root.checkpointDigest(a, setId), BLS.SIG_DST);
        bytes memory sb = BlsKeys.sign(sk[i], root.checkpointDigest(b, setId), BLS.SIG_DST);
        vm.prank(address(0xBEEF));
        root.reportDoubleCheckpoint(a, setId, sa, b, setId, sb, signer(i));
        _slashed(i);
    }

    /// The books after staker i was slashed.
    function _slashed(uint256 i) internal {
        uint256 cut = amountOf[i] / 2;
        uint256 reward = cut / 10;
        amountOf[i] -= cut;
        locked -= cut;
        slashedAway += cut - reward;
        rewards += reward;
        slashedKey[i] = true;
        pending[i] = false;
        unbondingOf[i] = 0; // joined the rest, withdrawable at the exit
    }

    function candidateOwner(uint256 i) public pure returns (address) {
        return address(uint160(0xC0000 + i));
    }

    /// Candidate i's block-sealing key.
    function producer(uint256 i) public pure returns (address) {
        return vm.addr(0xE0000 + i);
    }

    function registerProducer(uint256 seed) external {
        uint256 i = seed % STAKERS;
        if (bondHeld[i] || bannedProducer[i]) return;
        token.transfer(candidateOwner(i), 1 ether);
        vm.startPrank(candidateOwner(i));
        token.approve(address(root), 1 ether);
        root.registerProducer(producer(i));
        vm.stopPrank();
        candidate[i] = true;
        bondHeld[i] = true;
        bonds += 1 ether;
    }

    function leaveProducers(uint256 seed) external {
        uint256 i = seed % STAKERS;
        if (!candidate[i]) return;
        vm.prank(candidateOwner(i));
        root.leaveProducers(producer(i));
        candidate[i] = false;
    }

    function withdrawBond(uint256 seed) external {
        uint256 i = seed % STAKERS;
        if (!bondHeld[i] || candidate[i]) return;
        vm.prank(candidateOwner(i));
        (bool ok,) = address(root).call(abi.encodeCall(root.withdrawBond, (producer(i))));
        if (!ok) return; // the delay is not over
        bondHeld[i] = false;
        bonds -= 1 ether;
    }

    /// Candidate i's key seals two blocks on one parent and someone reports it: its bond
    /// goes (a tenth to the reporter), and so does its candidacy, for good.
    function slashProducer(uint256 seed, bytes32 parent) external {
        uint256 i = seed % STAKERS;
        if (!bondHeld[i]) return;
        bytes memory a = abi.encodePacked(bytes1(0xf9), uint16(289), bytes1(0xa0), parent, new bytes(256));
        bytes memory b = abi.encodePacked(bytes1(0xf9), uint16(289), bytes1(0xa0), parent, bytes32("b"), new bytes(224));
        vm.prank(address(0xBEEF));
        root.reportDoubleSeal(a, sealOf(i, a), b, sealOf(i, b));
        candidate[i] = false;
        bondHeld[i] = false;
        bonds -= 1 ether;
        slashedAway += 1 ether - 0.1 ether;
        rewards += 0.1 ether;
        bannedProducer[i] = true;
    }

    function sealOf(uint256 i, bytes memory h) internal pure returns (bytes memory) {
        bytes32 digest = keccak256(abi.encodePacked(bytes18("KOMA block seal v1"), uint64(L2_CHAIN_ID), keccak256(h)));
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(0xE0000 + i, digest);
        return abi.encodePacked(r, s, v);
    }

    /// Staker i (while it has a record) votes for candidate `choice`, or withdraws its vote.
    function vote(uint256 seed, uint256 choice) external {
        uint256 i = seed % STAKERS;
        if (!joined[i]) return;
        uint256 c = choice % (STAKERS + 1);
        address p = c == STAKERS || !candidate[c] ? address(0) : producer(c);
        vm.prank(owner(i));
        root.vote(p);
    }

    function fundRewards(uint256 amount) external {
        amount = bound(amount, 1, 100 ether);
        token.approve(address(root), amount);
        root.fundRewards(amount);
        funded += amount;
    }

    /// Staker i claims its rewards; what it gets is what rewardsOf said.
    function claimRewards(uint256 seed) external {
        uint256 i = seed % STAKERS;
        if (!joined[i]) return;
        uint256 owed = root.rewardsOf(owner(i));
        uint256 before = token.balanceOf(owner(i));
        vm.prank(owner(i));
        (bool ok,) = address(root).call(abi.encodeCall(root.claimRewards, ()));
        assertTrue(ok == (owed != 0 && !slashedKey[i]), "claimable exactly when owed and not slashed");
        if (!ok) return;
        assertEq(token.balanceOf(owner(i)) - before, owed, "paid what was owed");
        rewardsPaid += owed;
    }

    function passTime(uint256 secondsLater) external {
        vm.warp(block.timestamp + bound(secondsLater, 1, 2 hours));
    }

    function activateGenesis() external {
        (, uint256 total,,,) = root.head();
        if (total != 0) return;
        (bool ok,) = address(root).call(abi.encodeCall(root.activateGenesisSet, ()));
        ok; // refused when nothing is pending
    }

    /// Signs checkpoint `accepted + 1` with the active set less the stakers in `absentMask`
    /// and submits it; it must be accepted exactly when more than 2/3 of the weight signed.
    function checkpoint(uint256 length, uint256 absentMask) external {
        (uint256 setId, address[] memory signers, bytes[] memory keys, uint256[] memory weights) = root.activeSet();
        uint256 total;
        for (uint256 s; s < weights.length; ++s) {
            total += weights[s];
        }
        if (total == 0) return;
        length = bound(length, 1, 64);
        RootChain.Checkpoint memory cp = RootChain.Checkpoint({
            number: accepted + 1,
            start: nextStart,
            end: nextStart + length - 1,
            root: keccak256(abi.encode(accepted + 1, nextStart))
        });
        bytes32 message = root.checkpointDigest(cp, setId);
        bytes[] memory sigs = new bytes[](signers.length);
        bytes memory absent;
        uint256 signedWeight;
        for (uint256 s; s < signers.length; ++s) {
            if (signers[s] == address(0)) continue;
            if (absentMask & (1 << s) != 0) {
                absent = bytes.concat(absent, bytes2(uint16(s)));
                continue;
            }
            sigs[s] = BlsKeys.sign(sk[indexOfSigner[signers[s]]], message, BLS.SIG_DST);
            signedWeight += weights[s];
        }
        if (signedWeight == 0) return; // the zero signature: refused for its own reason
        (bool ok,) = address(root)
            .call(
                abi.encodeCall(
                    root.submitCheckpoint, (cp, BlsKeys.aggregateKeys(keys), absent, BlsKeys.aggregateSignatures(sigs))
                )
            );
        if (ok != (3 * signedWeight > 2 * total)) thresholdBroken = true;
        if (ok) {
            accepted += 1;
            nextStart = cp.end + 1;
            roundingBound += 1; // the pool pays the shares' sum rounded up
        }
    }
}

/// The invariants of staking and checkpoints under the handler's random sequences.
contract InvariantTest is Test {
    StakingToken internal token;
    RootChain internal root;
    Handler internal handler;

    function setUp() public {
        token = new StakingToken(address(this), 1e9 ether);
        root = new RootChain(token, 42424, bytes32(0), 1024, 0, 1 ether, 8, 1 hours, 1 ether);
        handler = new Handler(token, root);
        token.transfer(address(handler), 1e8 ether);
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /// Tokens are neither created nor lost: the contract holds exactly what the stakers
    /// locked and have not withdrawn, plus what was slashed and not paid to reporters, the
    /// candidates' bonds and the reward funding not paid out.
    function invariant_lockedTokensAreAccountedFor() public view {
        assertEq(
            token.balanceOf(address(root)),
            handler.locked() + handler.slashedAway() + handler.bonds() + handler.funded() - handler.rewardsPaid(),
            "locked"
        );
        assertEq(root.bonded(), handler.bonds(), "bonds");
        assertEq(root.slashedHeld(), handler.slashedAway(), "slashed");
        assertEq(token.balanceOf(address(0xBEEF)), handler.rewards(), "rewards");
    }

    /// Checkpoint rewards: what was funded and not paid out is the pool plus what the
    /// stakers have earned, less at most the rounding (a wei per checkpoint and per closed
    /// account, and each staker's fraction of a wei).
    function invariant_rewardsAreAccountedFor() public view {
        uint256 earned;
        for (uint256 i; i < 12; ++i) {
            earned += root.rewardsOf(handler.owner(i));
        }
        uint256 unpaid = handler.funded() - handler.rewardsPaid();
        uint256 accounted = root.rewardPool() + earned;
        assertTrue(accounted <= unpaid, "never more than funded");
        assertTrue(unpaid - accounted <= handler.roundingBound() + 12, "lost only to rounding");
    }

    /// The ranking lists exactly the registered candidates, in order, and their votes add
    /// up to the active weight of the stakers voting for a registered candidate.
    function invariant_rankingIsTheActiveTally() public view {
        (address[] memory producers, uint256[] memory votes) = root.producerRanking();
        uint256 registered;
        for (uint256 i; i < 12; ++i) {
            if (handler.candidate(i)) ++registered;
        }
        assertEq(producers.length, registered, "candidates");
        uint256 sum;
        for (uint256 k; k < producers.length; ++k) {
            sum += votes[k];
            if (k > 0) assertTrue(votes[k - 1] >= votes[k], "most votes first");
        }
        (, address[] memory signers,, uint256[] memory weights) = root.activeSet();
        uint256 expected;
        for (uint256 s; s < signers.length; ++s) {
            if (signers[s] == address(0)) continue;
            address choice = root.voteOf(root.signerOwner(signers[s]));
            (,, uint32 index,,) = root.candidates(choice);
            if (choice != address(0) && index != 0) expected += weights[s];
        }
        assertEq(sum, expected, "votes");
    }

    /// The pending set's weight and aggregate key are the sums over its members.
    function invariant_pendingSetMatchesItsMembers() public view {
        (,, bytes[] memory keys, uint256[] memory weights) = root.pendingSet();
        uint256 total;
        for (uint256 s; s < weights.length; ++s) {
            total += weights[s];
        }
        assertEq(uint256(root.pendingTotalWeight()), total, "pending weight");
        assertEq(root.pendingAggregateKey(), BlsKeys.aggregateKeys(keys), "pending key");
        uint256 members;
        for (uint256 i; i < 12; ++i) {
            if (handler.pending(i)) ++members;
        }
        assertEq(uint256(root.pendingStakerCount()), members, "pending members");
    }

    /// The active set read slot by slot is the one the commitment names.
    function invariant_activeSetMatchesItsCommitment() public view {
        (uint256 setId,, bytes[] memory keys, uint256[] memory weights) = root.activeSet();
        if (setId == 0) return;
        uint256 total;
        for (uint256 s; s < weights.length; ++s) {
            total += weights[s];
        }
        (, uint256 headTotal,,,) = root.head();
        assertEq(headTotal, total, "active weight");
        bytes32 commit = keccak256(abi.encodePacked(setId, total, BlsKeys.aggregateKeys(keys)));
        assertEq(root.setCommit(), commit, "active commitment");
    }

    /// Checkpoints are numbered without gaps over contiguous ranges, each root is kept,
    /// and acceptance follows the 2/3 rule exactly.
    function invariant_checkpointsAreContiguous() public view {
        (,, uint256 number, uint256 nextStart,) = root.head();
        assertEq(number, handler.accepted(), "number");
        assertEq(nextStart, handler.nextStart(), "next start");
        if (number > 0) assertTrue(root.checkpointRoot(number) != bytes32(0), "last root kept");
        assertTrue(root.checkpointRoot(number + 1) == bytes32(0), "nothing beyond the head");
        assertTrue(!handler.thresholdBroken(), "accepted exactly above 2/3");
    }
}
