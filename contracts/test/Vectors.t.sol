// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {BLS} from "../src/lib/BLS.sol";
import {CheckpointTree} from "../src/lib/CheckpointTree.sol";
import {RootChain} from "../src/RootChain.sol";
import {StakingToken} from "../src/StakingToken.sol";
import {Test} from "./utils/Test.sol";
import {vm} from "./utils/Vm.sol";

/// The shared vectors (tests/vectors/*.json, made with noble's curves library, independent of this
/// code and of the node's): the contracts must reproduce them byte for byte.
contract VectorsTest is Test {
    string internal cp;

    function setUp() public {
        cp = readVector("checkpoint.json");
    }

    function test_blsVector_hashToCurveAndSignature() public view {
        string memory v = readVector("bls-min-sig.json");
        bytes32 message = vm.parseJsonBytes32(v, ".msg");
        bytes memory h = BLS.hashToG1(message, BLS.SIG_DST);
        assertEq(h, vm.parseJsonBytes(v, ".H_eip2537_128"), "H(m)");
        bytes memory sig = vm.parseJsonBytes(v, ".sig_eip2537_128");
        bytes memory pk = vm.parseJsonBytes(v, ".pk_eip2537_256");
        assertTrue(BLS.verify(sig, message, pk, BLS.SIG_DST), "vector signature verifies");
        assertTrue(!BLS.verify(sig, bytes32(uint256(message) ^ 1), pk, BLS.SIG_DST), "other message fails");
    }

    function test_checkpointVector_leaves() public view {
        bytes32 root = vm.parseJsonBytes32(cp, ".checkpoint.root");
        for (uint256 i; i < 5; ++i) {
            string memory b = string.concat(".blocks[", vm.toString(i), "]");
            CheckpointTree.BlockLeaf memory leaf = CheckpointTree.BlockLeaf({
                number: vm.parseJsonUint(cp, string.concat(b, ".number")),
                timestamp: vm.parseJsonUint(cp, string.concat(b, ".timestamp")),
                blockHash: vm.parseJsonBytes32(cp, string.concat(b, ".blockHash")),
                receiptsRoot: vm.parseJsonBytes32(cp, string.concat(b, ".receiptsRoot")),
                withdrawalsRoot: vm.parseJsonBytes32(cp, string.concat(b, ".withdrawalsRoot"))
            });
            bytes32 leafHash = CheckpointTree.leafHash(leaf);
            assertEq(leafHash, vm.parseJsonBytes32(cp, string.concat(b, ".leaf")), "leaf");
            bytes32[] memory proof = vm.parseJsonBytes32Array(cp, string.concat(b, ".proof"));
            assertEq(this.rootFromProof(leafHash, i, proof), root, "proof reaches the root");
        }
    }

    function test_checkpointVector_paddedRoots() public view {
        for (uint256 n = 1; n <= 9; ++n) {
            bytes32[] memory leaves = new bytes32[](n);
            for (uint256 i; i < n; ++i) {
                leaves[i] = keccak256(abi.encode(i));
            }
            string memory key = string.concat(".roots[", vm.toString(n - 1), "].root");
            assertEq(merkleRoot(leaves), vm.parseJsonBytes32(cp, key), string.concat("root of ", vm.toString(n)));
        }
    }

    function test_checkpointVector_digestPopAndCommit() public {
        (RootChain rc,) = deployAtVectorAddress();
        RootChain.Checkpoint memory c = vectorCheckpoint();
        assertEq(rc.checkpointDigest(c, 1), vm.parseJsonBytes32(cp, ".checkpoint.digest"), "digest");
        for (uint256 i; i < 4; ++i) {
            string memory s = string.concat(".stakers[", vm.toString(i), "]");
            bytes32 m = rc.popMessage(
                vm.parseJsonAddress(cp, string.concat(s, ".owner")),
                vm.parseJsonAddress(cp, string.concat(s, ".signer")),
                vm.parseJsonBytes(cp, string.concat(s, ".pk"))
            );
            assertEq(m, vm.parseJsonBytes32(cp, string.concat(s, ".popMessage")), "pop message");
        }
    }

    /// The whole flow on the vector's data: four stakers register with the vector's keys
    /// and proofs of possession, the set commitment matches, and both submissions (all
    /// sign; slot 2 absent) are accepted with the vector's aggregate signatures.
    function test_checkpointVector_acceptedByTheContract() public {
        (RootChain rc, StakingToken token) = deployAtVectorAddress();
        registerVectorStakers(rc, token);
        assertEq(rc.setCommit(), vm.parseJsonBytes32(cp, ".set.commit"), "set commitment");
        assertEq(rc.pendingAggregateKey(), vm.parseJsonBytes(cp, ".set.aggregateKey"), "aggregate key");

        bytes memory apk = vm.parseJsonBytes(cp, ".set.aggregateKey");
        RootChain.Checkpoint memory c = vectorCheckpoint();
        bytes memory absent = vm.parseJsonBytes(cp, ".submissions[1].absent");
        bytes memory sig = vm.parseJsonBytes(cp, ".submissions[1].signature");
        rc.submitCheckpoint(c, apk, absent, sig);
        assertEq(rc.checkpointRoot(1), c.root, "root stored");

        // the all-sign aggregate of the same checkpoint is now a replay
        vm.expectRevert(abi.encodeWithSelector(RootChain.NotNextCheckpoint.selector, 2, 1));
        rc.submitCheckpoint(c, apk, hex"", vm.parseJsonBytes(cp, ".submissions[0].signature"));
    }

    function test_checkpointVector_allSignAccepted() public {
        (RootChain rc, StakingToken token) = deployAtVectorAddress();
        registerVectorStakers(rc, token);
        RootChain.Checkpoint memory c = vectorCheckpoint();
        rc.submitCheckpoint(
            c, vm.parseJsonBytes(cp, ".set.aggregateKey"), hex"", vm.parseJsonBytes(cp, ".submissions[0].signature")
        );
        assertEq(rc.checkpointRoot(1), c.root, "root stored");
    }

    function test_doubleCheckpointVector_slashesItsSigner() public {
        (RootChain rc, StakingToken token) = deployAtVectorAddress();
        registerVectorStakers(rc, token);
        (RootChain.Checkpoint memory a, uint256 setA, bytes memory sigA) = vectorVote(".doubleCheckpoint.a");
        (RootChain.Checkpoint memory b, uint256 setB, bytes memory sigB) = vectorVote(".doubleCheckpoint.b");
        assertEq(rc.checkpointDigest(a, setA), vm.parseJsonBytes32(cp, ".doubleCheckpoint.a.digest"), "digest a");
        assertEq(rc.checkpointDigest(b, setB), vm.parseJsonBytes32(cp, ".doubleCheckpoint.b.digest"), "digest b");
        address signer = vm.parseJsonAddress(cp, ".doubleCheckpoint.signer");
        address owner = vm.parseJsonAddress(cp, ".stakers[1].owner");
        uint256 amount = vm.parseJsonUint(cp, ".stakers[1].amount");

        // one of the two signatures under the other's header proves nothing
        vm.expectRevert(RootChain.InvalidSignature.selector);
        rc.reportDoubleCheckpoint(a, setA, sigB, b, setB, sigB, signer);
        // nor does the pair against another staker's key
        address other = vm.parseJsonAddress(cp, ".stakers[2].signer");
        vm.expectRevert(RootChain.InvalidSignature.selector);
        rc.reportDoubleCheckpoint(a, setA, sigA, b, setB, sigB, other);

        vm.prank(address(0xBEEF));
        rc.reportDoubleCheckpoint(a, setA, sigA, b, setB, sigB, signer);
        assertTrue(rc.slashed(signer), "slashed");
        (,, uint96 left, uint32 slot,,,,) = rc.stakers(owner);
        assertEq(left, amount / 2, "half the stake is gone");
        assertEq(slot, 0, "out of the pending set");
        assertEq(token.balanceOf(address(0xBEEF)), amount / 2 / 10, "the reporter's tenth");
    }

    function vectorVote(string memory at)
        internal
        view
        returns (RootChain.Checkpoint memory c, uint256 setId, bytes memory signature)
    {
        c = RootChain.Checkpoint({
            number: vm.parseJsonUint(cp, string.concat(at, ".number")),
            start: vm.parseJsonUint(cp, string.concat(at, ".start")),
            end: vm.parseJsonUint(cp, string.concat(at, ".end")),
            root: vm.parseJsonBytes32(cp, string.concat(at, ".root"))
        });
        setId = vm.parseJsonUint(cp, string.concat(at, ".setId"));
        signature = vm.parseJsonBytes(cp, string.concat(at, ".signature"));
    }

    /// The vector's four stakers join with their keys and proofs of possession, and become
    /// the first set.
    function registerVectorStakers(RootChain rc, StakingToken token) internal {
        for (uint256 i; i < 4; ++i) {
            string memory s = string.concat(".stakers[", vm.toString(i), "]");
            address owner = vm.parseJsonAddress(cp, string.concat(s, ".owner"));
            uint256 amount = vm.parseJsonUint(cp, string.concat(s, ".amount"));
            token.transfer(owner, amount);
            vm.startPrank(owner);
            token.approve(address(rc), amount);
            rc.stake(
                amount,
                vm.parseJsonAddress(cp, string.concat(s, ".signer")),
                vm.parseJsonBytes(cp, string.concat(s, ".pk")),
                vm.parseJsonBytes(cp, string.concat(s, ".pop"))
            );
            vm.stopPrank();
        }
        rc.activateGenesisSet();
    }

    function rootFromProof(bytes32 leaf, uint256 index, bytes32[] calldata proof) external pure returns (bytes32) {
        return CheckpointTree.processProof(leaf, index, proof);
    }

    function vectorCheckpoint() internal view returns (RootChain.Checkpoint memory) {
        return RootChain.Checkpoint({
            number: vm.parseJsonUint(cp, ".checkpoint.number"),
            start: vm.parseJsonUint(cp, ".checkpoint.start"),
            end: vm.parseJsonUint(cp, ".checkpoint.end"),
            root: vm.parseJsonBytes32(cp, ".checkpoint.root")
        });
    }

    /// A RootChain at the vector's address (its deployer's CREATE at the vector's nonce)
    /// and L1 chain id, since both are signed into the digest and the PoP messages.
    function deployAtVectorAddress() internal returns (RootChain rc, StakingToken token) {
        token = new StakingToken(address(this), 1e9 ether);
        vm.chainId(vm.parseJsonUint(cp, ".params.l1ChainId"));
        address deployer = vm.parseJsonAddress(cp, ".params.deployer");
        vm.setNonce(deployer, uint64(vm.parseJsonUint(cp, ".params.deployerNonce")));
        vm.prank(deployer);
        rc = new RootChain(
            token,
            vm.parseJsonUint(cp, ".params.l2ChainId"),
            bytes32(0), // not in the checkpoint digest
            vm.parseJsonUint(cp, ".params.maxRange"),
            vm.parseJsonUint(cp, ".params.firstBlock"),
            vm.parseJsonUint(cp, ".params.minStake"),
            vm.parseJsonUint(cp, ".params.maxStakers"),
            vm.parseJsonUint(cp, ".params.withdrawalDelay"),
            0 // no rewards: they are no part of the digest
        );
        assertEq(address(rc), vm.parseJsonAddress(cp, ".params.rootContract"), "deployed at the vector's address");
    }

    /// The padded binary Merkle root, computed here the plain way.
    function merkleRoot(bytes32[] memory leaves) internal pure returns (bytes32) {
        uint256 width = 1;
        while (width < leaves.length) width *= 2;
        bytes32[] memory level = new bytes32[](width);
        for (uint256 i; i < leaves.length; ++i) {
            level[i] = leaves[i];
        }
        while (width > 1) {
            width /= 2;
            for (uint256 i; i < width; ++i) {
                level[i] = keccak256(abi.encodePacked(level[2 * i], level[2 * i + 1]));
            }
        }
        return level[0];
    }
}
