// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {BLS} from "../../src/lib/BLS.sol";
import {RootChain} from "../../src/RootChain.sol";
import {StakingToken} from "../../src/StakingToken.sol";
import {BlsKeys} from "./BlsKeys.sol";
import {Test} from "./Test.sol";
import {vm} from "./Vm.sol";

/// A RootChain with a token and stakers made from test keys, and the helpers to sign and
/// submit its checkpoints.
abstract contract Fixture is Test {
    uint256 internal constant L2_CHAIN_ID = 42424;
    bytes32 internal constant CONSENSUS_CHAIN = keccak256("a KOMA test chain");
    uint256 internal constant MAX_RANGE = 1024;
    uint256 internal constant MIN_STAKE = 1 ether;
    uint256 internal constant DELAY = 1 hours;
    uint256 internal constant SUPPLY = 1e9 ether;
    /// The reward per checkpoint (paid only while the pool holds some: see fundPool).
    uint256 internal constant REWARD = 1 ether;

    StakingToken internal token;
    RootChain internal root;

    // staker i (i = 0, 1, ...): owner, signer and secret key derived from i
    mapping(uint256 => uint256) internal skOf;
    // the staker index of a KoMaBFT signer address, plus one
    mapping(address => uint256) internal stakerOfSigner;

    function deploy(uint256 maxStakers) internal {
        deploy(maxStakers, CONSENSUS_CHAIN);
    }

    function deploy(uint256 maxStakers, bytes32 consensusChain) internal {
        token = new StakingToken(address(this), SUPPLY);
        root = new RootChain(token, L2_CHAIN_ID, consensusChain, MAX_RANGE, 0, MIN_STAKE, maxStakers, DELAY, REWARD);
    }

    function ownerOf(uint256 i) internal pure returns (address) {
        return address(uint160(0x10000 + i));
    }

    function signerOf(uint256 i) internal pure returns (address) {
        return address(uint160(0x20000 + i));
    }

    function keyOf(uint256 i) internal returns (bytes memory) {
        if (skOf[i] == 0) skOf[i] = BlsKeys.secretKey(i);
        return BlsKeys.publicKey(skOf[i]);
    }

    function popOf(uint256 i) internal returns (bytes memory) {
        bytes memory pk = keyOf(i);
        return BlsKeys.sign(skOf[i], root.popMessage(ownerOf(i), signerOf(i), pk), BLS.POP_DST);
    }

    /// Staker i joins with `amount` (funded and approved here).
    function join(uint256 i, uint256 amount) internal {
        joinAs(i, amount, signerOf(i));
    }

    /// Staker i joins with `amount` and the KoMaBFT key `signer`.
    function joinAs(uint256 i, uint256 amount, address signer) internal {
        bytes memory pk = keyOf(i);
        if (skOf[i] == 0) skOf[i] = BlsKeys.secretKey(i);
        bytes memory pop = BlsKeys.sign(skOf[i], root.popMessage(ownerOf(i), signer, pk), BLS.POP_DST);
        fund(ownerOf(i), amount);
        stakerOfSigner[signer] = i + 1;
        vm.prank(ownerOf(i));
        root.stake(amount, signer, pk, pop);
    }

    /// Puts `amount` of this contract's tokens into the reward pool.
    function fundPool(uint256 amount) internal {
        token.approve(address(root), amount);
        root.fundRewards(amount);
    }

    function fund(address who, uint256 amount) internal {
        token.transfer(who, amount);
        vm.prank(who);
        token.approve(address(root), type(uint256).max);
    }

    /// Stakers 0..n-1 join with `amount` each and become the active set.
    function genesis(uint256 n, uint256 amount) internal {
        for (uint256 i; i < n; ++i) {
            join(i, amount);
        }
        root.activateGenesisSet();
    }

    function checkpoint(uint256 number, uint256 start, uint256 end)
        internal
        pure
        returns (RootChain.Checkpoint memory)
    {
        return RootChain.Checkpoint({
            number: number, start: start, end: end, root: keccak256(abi.encode(number, start, end))
        });
    }

    /// The active set's aggregate key, from the contract's view.
    function activeKey() internal view returns (bytes memory) {
        (,, bytes[] memory keys,) = root.activeSet();
        return BlsKeys.aggregateKeys(keys);
    }

    /// The aggregate signature over `cp` (under set `setId`) of the stakers in the active
    /// set whose slot is not in `absentSlots`, and the packed absent list.
    function signCheckpoint(RootChain.Checkpoint memory cp, uint256 id, uint256[] memory absentSlots)
        internal
        view
        returns (bytes memory signature, bytes memory absent)
    {
        (, address[] memory signers,,) = root.activeSet();
        bytes32 message = root.checkpointDigest(cp, id);
        bytes[] memory sigs = new bytes[](signers.length);
        uint256 a;
        for (uint256 slot; slot < signers.length; ++slot) {
            if (a < absentSlots.length && absentSlots[a] == slot) {
                absent = bytes.concat(absent, bytes2(uint16(slot)));
                ++a;
                continue;
            }
            if (signers[slot] == address(0)) continue;
            uint256 i = stakerOfSigner[signers[slot]] - 1;
            sigs[slot] = BlsKeys.sign(skOf[i], message, BLS.SIG_DST);
        }
        signature = BlsKeys.aggregateSignatures(sigs);
    }

    function setId() internal view returns (uint256 id) {
        (id,,,,) = root.head();
    }

    /// Signs `cp` with everyone but `absentSlots` and submits it.
    function submit(RootChain.Checkpoint memory cp, uint256[] memory absentSlots) internal {
        (bytes memory sig, bytes memory absent) = signCheckpoint(cp, setId(), absentSlots);
        root.submitCheckpoint(cp, activeKey(), absent, sig);
    }

    function none() internal pure returns (uint256[] memory) {
        return new uint256[](0);
    }

    function one(uint256 x) internal pure returns (uint256[] memory list) {
        list = new uint256[](1);
        list[0] = x;
    }
}
