// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {BLS} from "../src/lib/BLS.sol";
import {Equivocation} from "../src/lib/Equivocation.sol";
import {RootChain} from "../src/RootChain.sol";
import {StakeManager} from "../src/StakeManager.sol";
import {BlsKeys} from "./utils/BlsKeys.sol";
import {Fixture} from "./utils/Fixture.sol";
import {Units} from "./utils/Units.sol";
import {vm} from "./utils/Vm.sol";

/// Slashing a KoMaBFT equivocator on the evidence of two units it signed: the shared
/// vector (made with noble, checked by the node too), forged and malformed evidence, and
/// what slashing does to the stake, the set and the key.
contract SlashingTest is Fixture {
    string internal ev;
    address internal reporter = address(0xBEEF);
    uint256 internal constant STAKE = 100 ether;

    // the vector's evidence
    bytes internal unitA;
    bytes internal sigA;
    bytes internal unitB;
    bytes internal sigB;
    uint64 internal era;
    bytes32 internal keyBlock;
    address internal equivocator;

    function setUp() public {
        ev = readVector("equivocation.json");
        deploy(8, vm.parseJsonBytes32(ev, ".chain"));
        unitA = vm.parseJsonBytes(ev, ".units[0].encoding");
        sigA = vm.parseJsonBytes(ev, ".units[0].signature");
        unitB = vm.parseJsonBytes(ev, ".units[1].encoding");
        sigB = vm.parseJsonBytes(ev, ".units[1].signature");
        era = uint64(vm.parseJsonUint(ev, ".era"));
        keyBlock = vm.parseJsonBytes32(ev, ".keyBlock");
        equivocator = vm.parseJsonAddress(ev, ".signer");
        // staker 0 signs KoMaBFT units with the vector's key; 1..3 with others
        joinAs(0, STAKE, equivocator);
        for (uint256 i = 1; i < 4; ++i) {
            join(i, STAKE);
        }
        root.activateGenesisSet();
    }

    function report(bytes memory a, bytes memory sa, bytes memory b, bytes memory sb, uint64 era_, bytes32 kb)
        internal
    {
        vm.prank(reporter);
        root.reportEquivocation(a, sa, b, sb, era_, kb);
    }

    // ---- the vector ----

    function test_vector_isAnEquivocationOfItsSigner() public view {
        assertEq(keccak256(unitA), vm.parseJsonBytes32(ev, ".units[0].hash"), "unit hash");
        assertEq(
            Units.instanceId(root.consensusChain(), era, keyBlock),
            vm.parseJsonBytes32(ev, ".instanceId"),
            "instance id"
        );
    }

    function test_vector_slashesHalfPaysTheReporterAndRemovesTheStaker() public {
        uint256 held = token.balanceOf(address(root));
        report(unitA, sigA, unitB, sigB, era, keyBlock);

        uint256 cut = STAKE / 2;
        uint256 reward = cut / 10;
        (,, uint96 amount, uint32 slot, uint32 exitSetId,,,) = root.stakers(ownerOf(0));
        assertEq(uint256(amount), STAKE - cut, "half the stake is gone");
        assertEq(slot, 0, "out of the pending set");
        assertEq(exitSetId, 2, "its exit holds from the next set");
        assertTrue(root.slashed(equivocator), "key marked");
        assertEq(token.balanceOf(reporter), reward, "reporter paid a tenth of the cut");
        assertEq(root.slashedHeld(), cut - reward, "the rest stays locked");
        assertEq(token.balanceOf(address(root)), held - reward, "only the reward left the contract");
        (, address[] memory signers,, uint256[] memory weights) = root.pendingSet();
        assertEq(signers[0], address(0), "slot 0 empty in the pending set");
        assertEq(weights[0], 0, "no weight");
        assertEq(uint256(root.pendingTotalWeight()), 3 * STAKE / 1 gwei, "three stakers left");
        // the active set still holds it until the next checkpoint activates the pending one
        (, address[] memory active,,) = root.activeSet();
        assertEq(active[0], equivocator, "active until the next checkpoint");
    }

    function test_vector_countsOnceAndTheKeyCannotStakeAgain() public {
        report(unitA, sigA, unitB, sigB, era, keyBlock);
        vm.expectRevert(abi.encodeWithSelector(StakeManager.SignerSlashed.selector, equivocator));
        report(unitB, sigB, unitA, sigA, era, keyBlock);

        // after the exit and the delay the rest is withdrawable, and the key stays banned
        submit(checkpoint(1, 0, 31), none()); // activates the set without it
        vm.warp(block.timestamp + DELAY);
        vm.prank(ownerOf(0));
        root.withdraw();
        assertEq(token.balanceOf(ownerOf(0)), STAKE / 2, "the unslashed half paid out");
        bytes memory pk = keyOf(0);
        bytes memory pop = BlsKeys.sign(skOf[0], root.popMessage(ownerOf(0), equivocator, pk), BLS.POP_DST);
        fund(ownerOf(0), STAKE);
        vm.prank(ownerOf(0));
        vm.expectRevert(abi.encodeWithSelector(StakeManager.SignerSlashed.selector, equivocator));
        root.stake(STAKE, equivocator, pk, pop);
    }

    function test_vector_reportingOneselfEarnsNothing() public {
        vm.prank(ownerOf(0));
        root.reportEquivocation(unitA, sigA, unitB, sigB, era, keyBlock);
        assertEq(token.balanceOf(ownerOf(0)), 0, "no reward to the offender's owner");
        assertEq(root.slashedHeld(), STAKE / 2, "all of the cut stays locked");
    }

    function test_vector_reportedByItsOwnKeyEarnsNothing() public {
        vm.prank(equivocator);
        root.reportEquivocation(unitA, sigA, unitB, sigB, era, keyBlock);
        assertEq(token.balanceOf(equivocator), 0, "no reward to the offender's key");
        assertEq(root.slashedHeld(), STAKE / 2, "all of the cut stays locked");
    }

    function test_vector_slashesAStakerThatIsAlreadyLeaving() public {
        vm.prank(ownerOf(0));
        root.unstake();
        report(unitA, sigA, unitB, sigB, era, keyBlock);
        (,, uint96 amount,,,,,) = root.stakers(ownerOf(0));
        assertEq(uint256(amount), STAKE / 2, "slashed while unbonding");
    }

    function test_vector_slashesTheUnbondingPartToo() public {
        // tokens taken out by a decrease still answer for the signatures made with them
        vm.prank(ownerOf(0));
        root.decreaseStake(STAKE / 4);
        report(unitA, sigA, unitB, sigB, era, keyBlock);
        (,, uint96 amount, uint32 slot,,, uint96 unbonding,) = root.stakers(ownerOf(0));
        assertEq(uint256(amount), STAKE / 2, "half of stake plus unbonding is gone");
        assertEq(uint256(unbonding), 0, "the unbonding part joined the rest");
        assertEq(slot, 0, "out of the pending set");
        submit(checkpoint(1, 0, 31), none());
        vm.warp(block.timestamp + DELAY);
        vm.prank(ownerOf(0));
        root.withdraw();
        assertEq(token.balanceOf(ownerOf(0)), STAKE / 2, "the unslashed half paid out, once");
    }

    // ---- forged or malformed evidence ----

    function test_forged_refused() public {
        bytes memory changed = bytes.concat(unitB);
        changed[changed.length - 1] ^= 0x01; // the signature no longer covers it
        address other = _recoverOrZero(changed, sigB);
        vm.expectRevert(abi.encodeWithSelector(Equivocation.SignersDiffer.selector, equivocator, other));
        report(unitA, sigA, changed, sigB, era, keyBlock);

        vm.expectRevert(Equivocation.NotAnEquivocation.selector);
        report(unitA, sigA, unitA, sigA, era, keyBlock); // the same unit twice

        vm.expectRevert(
            abi.encodeWithSelector(
                RootChain.WrongInstance.selector,
                vm.parseJsonBytes32(ev, ".instanceId"),
                Units.instanceId(root.consensusChain(), era + 1, keyBlock)
            )
        );
        report(unitA, sigA, unitB, sigB, era + 1, keyBlock); // another era

        bytes memory badTag = bytes.concat(unitA);
        badTag[0] = "x";
        vm.expectRevert(abi.encodeWithSelector(Equivocation.NotAUnit.selector, badTag.length));
        report(badTag, sigA, unitB, sigB, era, keyBlock);

        vm.expectRevert(abi.encodeWithSelector(Equivocation.NotAUnit.selector, 55));
        report(_slice(unitA, 55), sigA, unitB, sigB, era, keyBlock);

        vm.expectRevert(Equivocation.BadUnitSignature.selector);
        report(unitA, _slice(sigA, 64), unitB, sigB, era, keyBlock);

        vm.expectRevert(Equivocation.BadUnitSignature.selector);
        report(unitA, _highS(sigA), unitB, sigB, era, keyBlock);
    }

    function test_forged_differentSeqOrCreatorIsNoEquivocation() public {
        uint256 key = vm.parseJsonUint(ev, ".privateKey");
        bytes32 instance = Units.instanceId(root.consensusChain(), era, keyBlock);
        bytes memory a = Units.encode(instance, 2, 7, 1000, bytes32("a"), 4);
        bytes memory b = Units.encode(instance, 2, 8, 1000, bytes32("b"), 4);
        vm.expectRevert(Equivocation.NotAnEquivocation.selector);
        report(a, Units.sign(key, a), b, Units.sign(key, b), era, keyBlock);
        b = Units.encode(instance, 3, 7, 1000, bytes32("b"), 4);
        vm.expectRevert(Equivocation.NotAnEquivocation.selector);
        report(a, Units.sign(key, a), b, Units.sign(key, b), era, keyBlock);
        // the same slot and seq, different values: slashed
        b = Units.encode(instance, 2, 7, 1000, bytes32("b"), 4);
        report(a, Units.sign(key, a), b, Units.sign(key, b), era, keyBlock);
        assertTrue(root.slashed(equivocator), "slashed");
    }

    function test_unknownSignerRefused() public {
        uint256 key = 0xA11CE;
        bytes32 instance = Units.instanceId(root.consensusChain(), era, keyBlock);
        bytes memory a = Units.encode(instance, 2, 7, 1000, bytes32("a"), 4);
        bytes memory b = Units.encode(instance, 2, 7, 1000, bytes32("b"), 4);
        vm.expectRevert(abi.encodeWithSelector(StakeManager.UnknownSigner.selector, vm.addr(key)));
        report(a, Units.sign(key, a), b, Units.sign(key, b), era, keyBlock);
    }

    /// Any two units of one key: slashed exactly when they share instance, creator and
    /// seq and differ; never by units of another key.
    function testFuzz_equivocationIsSlashedExactly(
        uint32 creatorB,
        uint64 seqB,
        uint64 timeA,
        uint64 timeB,
        bytes32 valueA,
        bytes32 valueB,
        bool sameHeader
    ) public {
        uint256 key = vm.parseJsonUint(ev, ".privateKey");
        bytes32 instance = Units.instanceId(root.consensusChain(), era, keyBlock);
        if (sameHeader) (creatorB, seqB) = (2, 7);
        bytes memory a = Units.encode(instance, 2, 7, timeA, valueA, 4);
        bytes memory b = Units.encode(instance, creatorB, seqB, timeB, valueB, 4);
        bool equivocation = creatorB == 2 && seqB == 7 && keccak256(a) != keccak256(b);
        if (!equivocation) vm.expectRevert(Equivocation.NotAnEquivocation.selector);
        report(a, Units.sign(key, a), b, Units.sign(key, b), era, keyBlock);
        assertTrue(root.slashed(equivocator) == equivocation, "slashed iff an equivocation");
    }

    // ---- two BLS signatures on different checkpoints with one number ----

    /// Staker `i`'s signature over `cp` under set `id`.
    function blsSign(uint256 i, RootChain.Checkpoint memory cp, uint256 id) internal view returns (bytes memory) {
        return BlsKeys.sign(skOf[i], root.checkpointDigest(cp, id), BLS.SIG_DST);
    }

    function withRoot(RootChain.Checkpoint memory cp, bytes32 r) internal pure returns (RootChain.Checkpoint memory) {
        return RootChain.Checkpoint({number: cp.number, start: cp.start, end: cp.end, root: r});
    }

    function reportDouble(
        RootChain.Checkpoint memory a,
        uint256 setA,
        bytes memory sa,
        RootChain.Checkpoint memory b,
        uint256 setB,
        bytes memory sb,
        address signer
    ) internal {
        vm.prank(reporter);
        root.reportDoubleCheckpoint(a, setA, sa, b, setB, sb, signer);
    }

    function test_doubleCheckpoint_slashesHalfAndRemovesTheStaker() public {
        RootChain.Checkpoint memory a = checkpoint(1, 0, 31);
        RootChain.Checkpoint memory b = withRoot(a, keccak256("a fork's root"));
        reportDouble(a, 1, blsSign(1, a, 1), b, 1, blsSign(1, b, 1), signerOf(1));

        (,, uint96 amount, uint32 slot, uint32 exitSetId,,,) = root.stakers(ownerOf(1));
        assertEq(uint256(amount), STAKE / 2, "half the stake is gone");
        assertEq(slot, 0, "out of the pending set");
        assertEq(exitSetId, 2, "its exit holds from the next set");
        assertTrue(root.slashed(signerOf(1)), "key marked");
        assertEq(token.balanceOf(reporter), STAKE / 20, "reporter paid a tenth of the cut");
        // counts once
        bytes memory sa = blsSign(1, a, 1);
        bytes memory sb = blsSign(1, b, 1);
        vm.expectRevert(abi.encodeWithSelector(StakeManager.SignerSlashed.selector, signerOf(1)));
        reportDouble(b, 1, sb, a, 1, sa, signerOf(1));
        // the next checkpoint goes through without it and activates the set without it
        submit(checkpoint(1, 0, 31), one(1));
        (, address[] memory active,,) = root.activeSet();
        assertEq(active[1], address(0), "no longer in the active set");
    }

    function test_doubleCheckpoint_acrossSetsAndRangesIsSlashed() public {
        // another range for the same number, signed under another set id: still two
        // checkpoints where honest stakers sign one
        RootChain.Checkpoint memory a = checkpoint(1, 0, 31);
        RootChain.Checkpoint memory b = checkpoint(1, 0, 15);
        reportDouble(a, 1, blsSign(2, a, 1), b, 7, blsSign(2, b, 7), signerOf(2));
        assertTrue(root.slashed(signerOf(2)), "slashed");
    }

    function test_doubleCheckpoint_forgedRefused() public {
        RootChain.Checkpoint memory a = checkpoint(1, 0, 31);
        RootChain.Checkpoint memory b = withRoot(a, keccak256("a fork's root"));
        bytes memory sa = blsSign(1, a, 1);
        bytes memory sb = blsSign(1, b, 1);
        // (signatures are made before expectRevert: signing reads the digest from the contract)
        bytes memory sameUnderSet2 = blsSign(1, a, 2);
        RootChain.Checkpoint memory next = checkpoint(2, 32, 63);
        bytes memory sNext = blsSign(1, next, 1);
        bytes memory byStaker2 = blsSign(2, b, 1);

        // the same checkpoint twice, even under two set ids, is what honest stakers do
        vm.expectRevert(RootChain.NotConflicting.selector);
        reportDouble(a, 1, sa, a, 2, sameUnderSet2, signerOf(1));
        // two numbers
        vm.expectRevert(RootChain.NotConflicting.selector);
        reportDouble(a, 1, sa, next, 1, sNext, signerOf(1));
        // a signature that covers another header, set or key
        vm.expectRevert(RootChain.InvalidSignature.selector);
        reportDouble(a, 1, sa, b, 1, sa, signerOf(1));
        vm.expectRevert(RootChain.InvalidSignature.selector);
        reportDouble(a, 1, sa, b, 2, sb, signerOf(1));
        vm.expectRevert(RootChain.InvalidSignature.selector);
        reportDouble(a, 1, sa, b, 1, byStaker2, signerOf(1));
        vm.expectRevert(RootChain.InvalidSignature.selector);
        reportDouble(a, 1, sa, b, 1, sb, signerOf(2)); // named against another staker
        // malformed signatures
        vm.expectRevert(abi.encodeWithSelector(RootChain.BadSignatureLength.selector, 127));
        reportDouble(a, 1, sa, b, 1, _slice(sb, 127), signerOf(1));
        vm.expectRevert(RootChain.ZeroSignature.selector);
        reportDouble(a, 1, new bytes(128), b, 1, sb, signerOf(1));
        bytes memory offCurve = bytes.concat(sb);
        offCurve[127] ^= 0x01;
        vm.expectRevert(BLS.MalformedPoint.selector);
        reportDouble(a, 1, sa, b, 1, offCurve, signerOf(1));
        // a key that never staked
        vm.expectRevert(abi.encodeWithSelector(StakeManager.UnknownSigner.selector, address(0xDEAD)));
        reportDouble(a, 1, sa, b, 1, sb, address(0xDEAD));
        assertTrue(!root.slashed(signerOf(1)), "nothing slashed");
        assertEq(token.balanceOf(reporter), 0, "nothing paid");
    }

    /// Any two signed checkpoints of one staker: slashed exactly when they share the
    /// number and differ in range or root.
    function testFuzz_doubleCheckpointIsSlashedExactly(
        uint64 numberB,
        uint64 startB,
        uint64 endB,
        bytes32 rootB,
        uint32 setB,
        bool sameHeader
    ) public {
        RootChain.Checkpoint memory a = checkpoint(3, 64, 95);
        RootChain.Checkpoint memory b =
            RootChain.Checkpoint({number: numberB % 4 == 0 ? 3 : numberB, start: startB, end: endB, root: rootB});
        if (sameHeader) b = withRoot(checkpoint(3, 64, 95), a.root);
        bool conflict = b.number == 3 && keccak256(abi.encode(a)) != keccak256(abi.encode(b));
        bytes memory sa = blsSign(3, a, 1);
        bytes memory sb = blsSign(3, b, setB);
        if (!conflict) vm.expectRevert(RootChain.NotConflicting.selector);
        reportDouble(a, 1, sa, b, setB, sb, signerOf(3));
        assertTrue(root.slashed(signerOf(3)) == conflict, "slashed iff two checkpoints for one number");
    }

    // ---- helpers ----

    function _slice(bytes memory b, uint256 n) internal pure returns (bytes memory out) {
        out = new bytes(n);
        for (uint256 i; i < n; ++i) {
            out[i] = b[i];
        }
    }

    /// The same signature with s replaced by n - s (valid for ecrecover, refused as malleable).
    function _highS(bytes memory sig) internal pure returns (bytes memory) {
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        bytes32 r;
        uint256 s;
        uint8 v = uint8(sig[64]);
        assembly {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
        }
        return abi.encodePacked(r, bytes32(n - s), v == 27 ? uint8(28) : uint8(27));
    }

    function _recoverOrZero(bytes memory unit, bytes memory sig) internal pure returns (address) {
        bytes32 r;
        bytes32 s;
        assembly {
            r := mload(add(sig, 32))
            s := mload(add(sig, 64))
        }
        return ecrecover(keccak256(unit), uint8(sig[64]), r, s);
    }
}
