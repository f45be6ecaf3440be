// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {BLS} from "../src/lib/BLS.sol";
import {CheckpointTree} from "../src/lib/CheckpointTree.sol";
import {RootChain} from "../src/RootChain.sol";
import {BlsKeys} from "./utils/BlsKeys.sol";
import {Fixture} from "./utils/Fixture.sol";
import {vm} from "./utils/Vm.sol";

/// submitCheckpoint: what it accepts, and each refusal with its named error.
contract RootChainTest is Fixture {
    function setUp() public {
        deploy(128);
        genesis(4, 100 ether);
    }

    // ---- accepted ----

    function test_acceptsAllSigning_storesRootAndAdvances() public {
        RootChain.Checkpoint memory cp = checkpoint(1, 0, 31);
        submit(cp, none());
        assertEq(root.checkpointRoot(1), cp.root, "root");
        (,, uint256 number, uint256 nextStart,) = root.head();
        assertEq(number, 1, "number");
        assertEq(nextStart, 32, "next start");
        submit(checkpoint(2, 32, 32), none()); // a one-block range
        submit(checkpoint(3, 33, 33 + MAX_RANGE - 1), none()); // the longest range
        (,, number, nextStart,) = root.head();
        assertEq(number, 3, "number");
        assertEq(nextStart, 33 + MAX_RANGE, "next start");
    }

    function test_acceptsOneOfFourAbsent() public {
        // 3 of 4 equal stakes = 75 % > 2/3
        submit(checkpoint(1, 0, 31), one(2));
        assertEq(root.checkpointRoot(1), checkpoint(1, 0, 31).root, "root");
    }

    function test_verifyBlock_provesEachLeafOfAnAcceptedCheckpoint() public {
        // a checkpoint over two real leaves, then a proof of each through the view
        CheckpointTree.BlockLeaf memory a = CheckpointTree.BlockLeaf(0, 100, keccak256("a"), keccak256("ra"), 0);
        CheckpointTree.BlockLeaf memory b = CheckpointTree.BlockLeaf(1, 101, keccak256("b"), keccak256("rb"), 0);
        bytes32 la = CheckpointTree.leafHash(a);
        bytes32 lb = CheckpointTree.leafHash(b);
        RootChain.Checkpoint memory cp =
            RootChain.Checkpoint({number: 1, start: 0, end: 1, root: keccak256(abi.encodePacked(la, lb))});
        submit(cp, none());
        bytes32[] memory proof = new bytes32[](1);
        proof[0] = lb;
        assertTrue(root.verifyBlock(1, a, 0, proof), "leaf 0 verifies");
        proof[0] = la;
        assertTrue(root.verifyBlock(1, b, 1, proof), "leaf 1 verifies");
        assertTrue(!root.verifyBlock(1, b, 0, proof), "wrong index fails");
        b.timestamp += 1;
        assertTrue(!root.verifyBlock(1, b, 1, proof), "tampered leaf fails");
        assertTrue(!root.verifyBlock(2, a, 0, proof), "unknown checkpoint fails");
    }

    // ---- continuity ----

    function test_refusesGap() public {
        RootChain.Checkpoint memory cp = checkpoint(2, 0, 31);
        (bytes memory sig,) = signCheckpoint(cp, 1, none());
        bytes memory apk = activeKey();
        vm.expectRevert(abi.encodeWithSelector(RootChain.NotNextCheckpoint.selector, 1, 2));
        root.submitCheckpoint(cp, apk, "", sig);
    }

    function test_refusesReplay() public {
        RootChain.Checkpoint memory cp = checkpoint(1, 0, 31);
        (bytes memory sig,) = signCheckpoint(cp, 1, none());
        bytes memory apk = activeKey();
        root.submitCheckpoint(cp, apk, "", sig);
        vm.expectRevert(abi.encodeWithSelector(RootChain.NotNextCheckpoint.selector, 2, 1));
        root.submitCheckpoint(cp, apk, "", sig);
    }

    function test_refusesOverlapAndHole() public {
        submit(checkpoint(1, 0, 31), none());
        bytes memory apk = activeKey();
        RootChain.Checkpoint memory overlap = checkpoint(2, 31, 40);
        (bytes memory sig,) = signCheckpoint(overlap, 1, none());
        vm.expectRevert(abi.encodeWithSelector(RootChain.RangeNotContiguous.selector, 32, 31));
        root.submitCheckpoint(overlap, apk, "", sig);
        RootChain.Checkpoint memory hole = checkpoint(2, 33, 40);
        (sig,) = signCheckpoint(hole, 1, none());
        vm.expectRevert(abi.encodeWithSelector(RootChain.RangeNotContiguous.selector, 32, 33));
        root.submitCheckpoint(hole, apk, "", sig);
    }

    function test_refusesEndBeforeStart() public {
        submit(checkpoint(1, 0, 9), none());
        RootChain.Checkpoint memory cp = checkpoint(2, 10, 9);
        (bytes memory sig,) = signCheckpoint(cp, 1, none());
        bytes memory apk = activeKey();
        vm.expectRevert(abi.encodeWithSelector(RootChain.EndBeforeStart.selector, 10, 9));
        root.submitCheckpoint(cp, apk, "", sig);
    }

    function test_refusesRangeAboveMaximum() public {
        RootChain.Checkpoint memory cp = checkpoint(1, 0, MAX_RANGE);
        (bytes memory sig,) = signCheckpoint(cp, 1, none());
        bytes memory apk = activeKey();
        vm.expectRevert(abi.encodeWithSelector(RootChain.RangeTooLong.selector, MAX_RANGE + 1, MAX_RANGE));
        root.submitCheckpoint(cp, apk, "", sig);
    }

    function test_refusesZeroRoot() public {
        RootChain.Checkpoint memory cp = RootChain.Checkpoint({number: 1, start: 0, end: 3, root: 0});
        (bytes memory sig,) = signCheckpoint(cp, 1, none());
        bytes memory apk = activeKey();
        vm.expectRevert(RootChain.ZeroRoot.selector);
        root.submitCheckpoint(cp, apk, "", sig);
    }

    // ---- signatures over another domain ----

    function test_refusesSignatureForAnotherL1Chain() public {
        RootChain.Checkpoint memory cp = checkpoint(1, 0, 31);
        bytes32 other = CheckpointTree.digest(block.chainid + 1, address(root), L2_CHAIN_ID, 1, 0, 31, cp.root, 1);
        bytes memory apk = activeKey();
        bytes memory sig = signAll(other);
        vm.expectRevert(RootChain.InvalidSignature.selector);
        root.submitCheckpoint(cp, apk, "", sig);
    }

    /// The digest the contract checks is the one the signers are meant to sign: a
    /// signature over exactly these fields is accepted (so the refusals above are about
    /// the domain, not about signing).
    function test_acceptsSignatureOverTheLibraryDigest() public {
        RootChain.Checkpoint memory cp = checkpoint(1, 0, 31);
        bytes32 digest = CheckpointTree.digest(block.chainid, address(root), L2_CHAIN_ID, 1, 0, 31, cp.root, 1);
        assertEq(digest, root.checkpointDigest(cp, 1), "view and library agree");
        bytes memory apk = activeKey();
        root.submitCheckpoint(cp, apk, "", signAll(digest));
        assertEq(root.checkpointRoot(1), cp.root, "accepted");
    }

    function test_refusesSignatureForAnotherContract() public {
        // the same stakers' signature for a root contract at another address
        RootChain.Checkpoint memory cp = checkpoint(1, 0, 31);
        bytes32 other = CheckpointTree.digest(block.chainid, address(0xbeef), L2_CHAIN_ID, 1, 0, 31, cp.root, 1);
        bytes memory apk = activeKey();
        bytes memory sig = signAll(other);
        vm.expectRevert(RootChain.InvalidSignature.selector);
        root.submitCheckpoint(cp, apk, "", sig);
    }

    function test_refusesSignatureForAnotherL2Chain() public {
        RootChain.Checkpoint memory cp = checkpoint(1, 0, 31);
        bytes32 other = CheckpointTree.digest(block.chainid, address(root), L2_CHAIN_ID + 1, 1, 0, 31, cp.root, 1);
        bytes memory apk = activeKey();
        bytes memory sig = signAll(other);
        vm.expectRevert(RootChain.InvalidSignature.selector);
        root.submitCheckpoint(cp, apk, "", sig);
    }

    function test_refusesSignatureForAnotherSet() public {
        RootChain.Checkpoint memory cp = checkpoint(1, 0, 31);
        (bytes memory sig,) = signCheckpoint(cp, 2, none()); // set id 2 does not exist yet
        bytes memory apk = activeKey();
        vm.expectRevert(RootChain.InvalidSignature.selector);
        root.submitCheckpoint(cp, apk, "", sig);
    }

    function test_refusesSignatureOverAnotherRoot() public {
        RootChain.Checkpoint memory cp = checkpoint(1, 0, 31);
        (bytes memory sig,) = signCheckpoint(cp, 1, none());
        cp.root = bytes32(uint256(cp.root) ^ 1);
        bytes memory apk = activeKey();
        vm.expectRevert(RootChain.InvalidSignature.selector);
        root.submitCheckpoint(cp, apk, "", sig);
    }

    // ---- weight ----

    function test_refusesTwoThirdsOrLess() public {
        // 4 equal stakes: 2 absent is 1/2 signed
        RootChain.Checkpoint memory cp = checkpoint(1, 0, 31);
        uint256[] memory absentSlots = new uint256[](2);
        absentSlots[0] = 1;
        absentSlots[1] = 3;
        (bytes memory sig, bytes memory absent) = signCheckpoint(cp, 1, absentSlots);
        bytes memory apk = activeKey();
        uint256 w = 100 ether / 1 gwei;
        vm.expectRevert(abi.encodeWithSelector(RootChain.InsufficientStake.selector, 2 * w, 4 * w));
        root.submitCheckpoint(cp, apk, absent, sig);
    }

    function test_refusesExactlyTwoThirds() public {
        // stakes 1, 1, 1 (x100 ether): one absent signs exactly 2/3, which is not enough
        deploy(8);
        genesis(3, 100 ether);
        RootChain.Checkpoint memory cp = checkpoint(1, 0, 31);
        (bytes memory sig, bytes memory absent) = signCheckpoint(cp, 1, one(0));
        bytes memory apk = activeKey();
        uint256 w = 100 ether / 1 gwei;
        vm.expectRevert(abi.encodeWithSelector(RootChain.InsufficientStake.selector, 2 * w, 3 * w));
        root.submitCheckpoint(cp, apk, absent, sig);
    }

    function test_refusesAbsentStakerWhoseSignatureIsIncluded() public {
        // claiming slot 1 absent while its signature is in the aggregate
        RootChain.Checkpoint memory cp = checkpoint(1, 0, 31);
        (bytes memory sig,) = signCheckpoint(cp, 1, none());
        bytes memory apk = activeKey();
        vm.expectRevert(RootChain.InvalidSignature.selector);
        root.submitCheckpoint(cp, apk, hex"0001", sig);
    }

    function test_refusesMissingSignatureNotDeclaredAbsent() public {
        RootChain.Checkpoint memory cp = checkpoint(1, 0, 31);
        (bytes memory sig,) = signCheckpoint(cp, 1, one(3));
        bytes memory apk = activeKey();
        vm.expectRevert(RootChain.InvalidSignature.selector);
        root.submitCheckpoint(cp, apk, "", sig);
    }

    // ---- non-signer list ----

    function test_refusesAbsentListNotAscending() public {
        RootChain.Checkpoint memory cp = checkpoint(1, 0, 31);
        (bytes memory sig,) = signCheckpoint(cp, 1, one(2));
        bytes memory apk = activeKey();
        vm.expectRevert(abi.encodeWithSelector(RootChain.AbsentNotAscending.selector, 2));
        root.submitCheckpoint(cp, apk, hex"00020002", sig);
    }

    function test_refusesAbsentSlotOutsideTheSet() public {
        RootChain.Checkpoint memory cp = checkpoint(1, 0, 31);
        (bytes memory sig,) = signCheckpoint(cp, 1, none());
        bytes memory apk = activeKey();
        vm.expectRevert(abi.encodeWithSelector(RootChain.AbsentNotInSet.selector, 9));
        root.submitCheckpoint(cp, apk, hex"0009", sig);
    }

    function test_refusesOddAbsentList() public {
        RootChain.Checkpoint memory cp = checkpoint(1, 0, 31);
        (bytes memory sig,) = signCheckpoint(cp, 1, none());
        bytes memory apk = activeKey();
        vm.expectRevert(abi.encodeWithSelector(RootChain.BadAbsentList.selector, 3));
        root.submitCheckpoint(cp, apk, hex"000102", sig);
    }

    function test_refusesWrongAggregateKey() public {
        RootChain.Checkpoint memory cp = checkpoint(1, 0, 31);
        (bytes memory sig,) = signCheckpoint(cp, 1, none());
        bytes memory wrong = keyOf(0); // a single staker's key instead of the aggregate
        vm.expectRevert(RootChain.SetMismatch.selector);
        root.submitCheckpoint(cp, wrong, "", sig);
    }

    // ---- malformed signatures ----

    function test_refusesZeroSignature() public {
        bytes memory apk = activeKey();
        vm.expectRevert(RootChain.ZeroSignature.selector);
        root.submitCheckpoint(checkpoint(1, 0, 31), apk, "", new bytes(128));
    }

    function test_refusesSignatureOfWrongLength() public {
        bytes memory apk = activeKey();
        vm.expectRevert(abi.encodeWithSelector(RootChain.BadSignatureLength.selector, 127));
        root.submitCheckpoint(checkpoint(1, 0, 31), apk, "", new bytes(127));
    }

    function test_refusesSignatureNotOnTheCurve() public {
        RootChain.Checkpoint memory cp = checkpoint(1, 0, 31);
        (bytes memory sig,) = signCheckpoint(cp, 1, none());
        sig[127] = bytes1(uint8(sig[127]) ^ 1); // y changed: no longer on the curve
        bytes memory apk = activeKey();
        uint256 gasBefore = gasleft();
        vm.expectRevert(BLS.MalformedPoint.selector);
        root.submitCheckpoint(cp, apk, "", sig);
        // the precompile burns only what it was forwarded, not the whole call's gas
        assertTrue(gasBefore - gasleft() < 500_000, "a malformed point costs a bounded amount of gas");
    }

    function test_refusesSignatureWithNonzeroPadding() public {
        RootChain.Checkpoint memory cp = checkpoint(1, 0, 31);
        (bytes memory sig,) = signCheckpoint(cp, 1, none());
        sig[0] = 0x01;
        bytes memory apk = activeKey();
        vm.expectRevert(BLS.MalformedPoint.selector);
        root.submitCheckpoint(cp, apk, "", sig);
    }

    function test_refusesWithoutActiveSet() public {
        deploy(8);
        bytes memory apk = new bytes(256);
        vm.expectRevert(RootChain.NoActiveSet.selector);
        root.submitCheckpoint(checkpoint(1, 0, 31), apk, "", new bytes(128));
    }

    // ---- fuzz ----

    /// Any range within the rules is accepted when signed, and the head follows it.
    function testFuzz_acceptsAnyValidRange(uint16 lenA, uint16 lenB) public {
        uint256 a = bound(lenA, 1, MAX_RANGE);
        uint256 b = bound(lenB, 1, MAX_RANGE);
        submit(checkpoint(1, 0, a - 1), none());
        submit(checkpoint(2, a, a + b - 1), none());
        (,, uint256 number, uint256 nextStart,) = root.head();
        assertEq(number, 2, "number");
        assertEq(nextStart, a + b, "next start");
    }

    /// A signature with any single bit flipped is refused (never accepted).
    function testFuzz_refusesFlippedSignatureBit(uint16 bit) public {
        RootChain.Checkpoint memory cp = checkpoint(1, 0, 31);
        (bytes memory sig,) = signCheckpoint(cp, 1, none());
        uint256 i = bound(bit, 0, 128 * 8 - 1);
        sig[i / 8] = bytes1(uint8(sig[i / 8]) ^ uint8(1 << (i % 8)));
        bytes memory apk = activeKey();
        (bool ok,) = address(root).call(abi.encodeCall(RootChain.submitCheckpoint, (cp, apk, "", sig)));
        assertTrue(!ok, "a flipped bit is refused");
        assertEq(root.checkpointRoot(1), bytes32(0), "nothing stored");
    }

    /// Any subset of absent stakers: accepted exactly when the signed weight is above 2/3.
    function testFuzz_thresholdHoldsForAnyAbsentSubset(uint8 mask, uint64[4] memory extra) public {
        deploy(8);
        for (uint256 i; i < 4; ++i) {
            join(i, 1 ether + bound(extra[i], 0, 1000 ether));
        }
        root.activateGenesisSet();
        uint256[] memory absentSlots = new uint256[](4);
        uint256 n;
        uint256 total;
        uint256 absentWeight;
        (,,, uint256[] memory weights) = root.activeSet();
        for (uint256 slot; slot < 4; ++slot) {
            total += weights[slot];
            if (mask & (1 << slot) != 0) {
                absentSlots[n++] = slot;
                absentWeight += weights[slot];
            }
        }
        assembly ("memory-safe") {
            mstore(absentSlots, n)
        }
        RootChain.Checkpoint memory cp = checkpoint(1, 0, 31);
        (bytes memory sig, bytes memory absent) = signCheckpoint(cp, 1, absentSlots);
        bytes memory apk = activeKey();
        bool enough = 3 * (total - absentWeight) > 2 * total;
        if (n == 4) {
            vm.expectRevert(RootChain.ZeroSignature.selector); // nobody signed: the aggregate is zero
        } else if (!enough) {
            vm.expectRevert(abi.encodeWithSelector(RootChain.InsufficientStake.selector, total - absentWeight, total));
        }
        root.submitCheckpoint(cp, apk, absent, sig);
        assertEq(root.checkpointRoot(1), enough ? cp.root : bytes32(0), "accepted exactly above 2/3");
    }

    function signAll(bytes32 message) internal view returns (bytes memory) {
        bytes[] memory sigs = new bytes[](4);
        for (uint256 i; i < 4; ++i) {
            sigs[i] = BlsKeys.sign(skOf[i], message, BLS.SIG_DST);
        }
        return BlsKeys.aggregateSignatures(sigs);
    }
}
