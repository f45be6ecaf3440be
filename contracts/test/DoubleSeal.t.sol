// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {ProducerElection} from "../src/ProducerElection.sol";
import {DoubleSeal} from "../src/lib/DoubleSeal.sol";
import {Fixture} from "./utils/Fixture.sol";
import {vm} from "./utils/Vm.sol";

/// A producer that seals two blocks on one parent loses its bond and its candidacy, on
/// evidence anyone submits; forged evidence is refused.
contract DoubleSealTest is Fixture {
    uint256 internal constant KEY = 0xB10C;
    address internal producer;
    address internal constant OWNER = address(0x7001);
    address internal constant REPORTER = address(0xBEEF);
    string internal v;

    function setUp() public {
        deploy(8);
        producer = vm.addr(KEY);
        fund(OWNER, MIN_STAKE);
        vm.prank(OWNER);
        root.registerProducer(producer);
        v = readVector("double-seal.json");
    }

    /// An RLP-shaped header (0xf9 list of 33 + 300 bytes) on `parent`; `salt` tells blocks apart.
    function header(bytes32 parent, bytes32 salt) internal pure returns (bytes memory h) {
        bytes memory rest;
        for (uint256 i; i < 8; ++i) {
            rest = bytes.concat(rest, salt);
        }
        rest = bytes.concat(rest, new bytes(300 - rest.length));
        h = abi.encodePacked(bytes1(0xf9), uint16(33 + rest.length), bytes1(0xa0), parent, rest);
    }

    function seal(uint256 key, bytes memory h, uint256 chainId) internal pure returns (bytes memory) {
        (uint8 sv, bytes32 r, bytes32 s) = vm.sign(key, DoubleSeal.sealDigest(chainId, keccak256(h)));
        return abi.encodePacked(r, s, sv);
    }

    function report(bytes memory a, bytes memory sa, bytes memory b, bytes memory sb) internal {
        vm.prank(REPORTER);
        root.reportDoubleSeal(a, sa, b, sb);
    }

    // ---- valid evidence ----

    function test_doubleSeal_slashesTheBondAndTheCandidacy() public {
        register(0x2);
        bytes memory a = header("parent", "a");
        bytes memory b = header("parent", "b");
        uint256 held = token.balanceOf(address(root));
        vm.expectEmit(address(root));
        emit ProducerElection.ProducerSlashed(producer, OWNER, MIN_STAKE, REPORTER, MIN_STAKE / 10);
        report(a, seal(KEY, a, L2_CHAIN_ID), b, seal(KEY, b, L2_CHAIN_ID));
        assertTrue(root.producerSlashed(producer), "banned");
        (address owner,, uint32 index,,) = root.candidates(producer);
        assertEq(owner, address(0), "the record is gone");
        assertEq(uint256(index), 0, "out of the list");
        assertEq(root.candidateCount(), 1, "the other candidate stays");
        (address[] memory ranked,) = root.producerRanking();
        assertEq(ranked.length, 1, "ranked without it");
        assertEq(root.bonded(), MIN_STAKE, "the other bond");
        assertEq(token.balanceOf(REPORTER), MIN_STAKE / 10, "a tenth to the reporter");
        assertEq(root.slashedHeld(), MIN_STAKE - MIN_STAKE / 10, "the rest held for good");
        assertEq(token.balanceOf(address(root)), held - MIN_STAKE / 10, "only the reward left");
        // once only, and the key can never stand again
        bytes memory sa = seal(KEY, a, L2_CHAIN_ID);
        bytes memory sb = seal(KEY, b, L2_CHAIN_ID);
        vm.expectRevert(abi.encodeWithSelector(ProducerElection.ProducerBanned.selector, producer));
        report(a, sa, b, sb);
        fund(OWNER, MIN_STAKE);
        vm.prank(OWNER);
        vm.expectRevert(abi.encodeWithSelector(ProducerElection.ProducerBanned.selector, producer));
        root.registerProducer(producer);
    }

    function test_doubleSeal_aCandidateThatLeftAnswersUntilItWithdraws() public {
        vm.prank(OWNER);
        root.leaveProducers(producer);
        bytes memory a = header("parent", "a");
        bytes memory b = header("parent", "b");
        report(a, seal(KEY, a, L2_CHAIN_ID), b, seal(KEY, b, L2_CHAIN_ID));
        assertEq(root.bonded(), 0, "bond gone");
        vm.warp(block.timestamp + DELAY);
        vm.prank(OWNER);
        vm.expectRevert(abi.encodeWithSelector(ProducerElection.NotCandidateOwner.selector, producer));
        root.withdrawBond(producer);
    }

    function test_doubleSeal_noRewardForReportingOneself() public {
        bytes memory a = header("parent", "a");
        bytes memory b = header("parent", "b");
        bytes memory sa = seal(KEY, a, L2_CHAIN_ID);
        bytes memory sb = seal(KEY, b, L2_CHAIN_ID);
        vm.prank(OWNER);
        root.reportDoubleSeal(a, sa, b, sb);
        assertEq(token.balanceOf(OWNER), 0, "no reward");
        assertEq(root.slashedHeld(), MIN_STAKE, "all of it held");
    }

    function test_vector_isADoubleSeal() public {
        address vp = vm.parseJsonAddress(v, ".producer");
        assertEq(vm.parseJsonUint(v, ".chainId"), L2_CHAIN_ID, "the vector's chain is this root's L2");
        fund(OWNER, MIN_STAKE);
        vm.prank(OWNER);
        root.registerProducer(vp);
        bytes memory a = vm.parseJsonBytes(v, ".headers[0].rlp");
        bytes memory b = vm.parseJsonBytes(v, ".headers[1].rlp");
        assertEq(keccak256(a), vm.parseJsonBytes32(v, ".headers[0].hash"), "block hash");
        assertEq(
            DoubleSeal.sealDigest(L2_CHAIN_ID, keccak256(a)), vm.parseJsonBytes32(v, ".headers[0].digest"), "digest"
        );
        bytes memory sa = vm.parseJsonBytes(v, ".headers[0].seal");
        bytes memory sb = vm.parseJsonBytes(v, ".headers[1].seal");
        // swapped seals prove nothing
        vm.expectRevert();
        report(a, sb, b, sa);
        report(a, sa, b, sb);
        assertTrue(root.producerSlashed(vp), "slashed on the vector");
    }

    // ---- forged evidence ----

    function test_forged_theSameHeaderTwiceOrTwoParents() public {
        bytes memory a = header("parent", "a");
        bytes memory sa = seal(KEY, a, L2_CHAIN_ID);
        vm.expectRevert(DoubleSeal.NotADoubleSeal.selector);
        report(a, sa, a, sa);
        bytes memory b = header("another parent", "b");
        bytes memory sb = seal(KEY, b, L2_CHAIN_ID);
        vm.expectRevert(DoubleSeal.NotADoubleSeal.selector);
        report(a, sa, b, sb);
    }

    function test_forged_sealsOfAnotherKeyChainOrHeader() public {
        bytes memory a = header("parent", "a");
        bytes memory b = header("parent", "b");
        bytes memory sa = seal(KEY, a, L2_CHAIN_ID);
        // another key sealed b
        bytes memory other = seal(0xC0FFEE, b, L2_CHAIN_ID);
        vm.expectRevert(abi.encodeWithSelector(DoubleSeal.SealersDiffer.selector, producer, vm.addr(0xC0FFEE)));
        report(a, sa, b, other);
        // b sealed for another chain recovers to someone else
        bytes memory wrongChain = seal(KEY, b, L2_CHAIN_ID + 1);
        vm.expectRevert();
        report(a, sa, b, wrongChain);
        // a seal over a (not b) given for b
        vm.expectRevert();
        report(a, sa, b, sa);
        // short, zero and high-s seals
        vm.expectRevert(DoubleSeal.BadSeal.selector);
        report(a, sa, b, new bytes(64));
        vm.expectRevert(DoubleSeal.BadSeal.selector);
        report(a, sa, b, new bytes(65));
        assertTrue(!root.producerSlashed(producer), "not slashed");
    }

    function test_forged_headersThatAreNoRlpHeaders() public {
        bytes memory a = header("parent", "a");
        bytes memory b = header("parent", "b");
        bytes memory sa = seal(KEY, a, L2_CHAIN_ID);
        bytes memory sb = seal(KEY, b, L2_CHAIN_ID);
        bytes memory shortList = bytes.concat(bytes1(0xf8), bytes1(0x21), bytes1(0xa0), bytes32("parent"));
        vm.expectRevert(DoubleSeal.BadHeader.selector);
        report(shortList, sa, b, sb);
        bytes memory badLength = bytes.concat(b, bytes1(0x00)); // one byte more than its prefix says
        vm.expectRevert(DoubleSeal.BadHeader.selector);
        report(a, sa, badLength, sb);
        bytes memory notAString = bytes.concat(a);
        notAString[3] = 0x9f;
        vm.expectRevert(DoubleSeal.BadHeader.selector);
        report(notAString, sa, b, sb);
    }

    function test_forged_aKeyThatIsNoCandidate() public {
        bytes memory a = header("parent", "a");
        bytes memory b = header("parent", "b");
        bytes memory sa = seal(0xC0FFEE, a, L2_CHAIN_ID);
        bytes memory sb = seal(0xC0FFEE, b, L2_CHAIN_ID);
        vm.expectRevert(abi.encodeWithSelector(ProducerElection.NotCandidate.selector, vm.addr(0xC0FFEE)));
        report(a, sa, b, sb);
    }

    // ---- fuzz ----

    /// Exactly two different headers on one parent sealed by the candidate's key slash it.
    function testFuzz_onlyADoubleSealSlashes(
        bytes32 parentA,
        bytes32 parentB,
        bytes32 saltA,
        bytes32 saltB,
        bool sameParent,
        bool sameSalt,
        bool sameKey
    ) public {
        if (sameParent) parentB = parentA;
        if (sameSalt) saltB = saltA;
        bytes memory a = header(parentA, saltA);
        bytes memory b = header(parentB, saltB);
        bytes memory sa = seal(KEY, a, L2_CHAIN_ID);
        bytes memory sb = seal(sameKey ? KEY : 0xC0FFEE, b, L2_CHAIN_ID);
        bool offence = parentA == parentB && saltA != saltB && sameKey;
        vm.prank(REPORTER);
        (bool ok,) = address(root).call(abi.encodeCall(root.reportDoubleSeal, (a, sa, b, sb)));
        assertTrue(ok == offence, "slashed exactly on a double seal");
        assertTrue(root.producerSlashed(producer) == offence, "banned exactly then");
    }

    function register(uint256 i) internal {
        address o = address(uint160(0x8000 + i));
        fund(o, MIN_STAKE);
        vm.prank(o);
        root.registerProducer(address(uint160(0x9000 + i)));
    }
}
