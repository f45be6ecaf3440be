// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.30;

import {Bridge} from "../src/Bridge.sol";
import {BridgeMessages} from "../src/bridge/BridgeMessages.sol";
import {WithdrawManager} from "../src/bridge/WithdrawManager.sol";
import {CheckpointTree} from "../src/lib/CheckpointTree.sol";
import {StakingToken} from "../src/StakingToken.sol";
import {MockRoots, TestToken} from "./utils/BridgeKit.sol";
import {Test} from "./utils/Test.sol";
import {vm} from "./utils/Vm.sol";

/// tests/vectors/bridge.json (made independently with noble, checked by the node too):
/// the contracts encode deposits, chain their hashes and hash withdrawals byte for byte as
/// the vector does, and the bridge pays out the vector's exits.
contract BridgeVectorsTest is Test {
    string internal v;

    function setUp() public {
        v = readVector("bridge.json");
    }

    function _s(string memory prefix, uint256 i, string memory field) internal pure returns (string memory) {
        return string.concat(prefix, "[", vm.toString(i), "].", field);
    }

    function test_depositDataAndTheStateHashChain() public view {
        bytes32 hash;
        for (uint256 i; i < 4; ++i) {
            bytes memory data = BridgeMessages.depositData(
                vm.parseJsonAddress(v, _s(".deposits", i, "token")),
                vm.parseJsonAddress(v, _s(".deposits", i, "from")),
                vm.parseJsonAddress(v, _s(".deposits", i, "to")),
                vm.parseJsonUint(v, _s(".deposits", i, "amount")),
                vm.parseJsonBytes(v, _s(".deposits", i, "metadata"))
            );
            assertEq(data, vm.parseJsonBytes(v, _s(".deposits", i, "data")), "data");
            hash =
                BridgeMessages.nextStateHash(hash, i + 1, vm.parseJsonAddress(v, _s(".deposits", i, "receiver")), data);
            assertEq(hash, vm.parseJsonBytes32(v, _s(".deposits", i, "stateHash")), "state hash");
        }
        assertEq(vm.parseJsonBytes(v, ".deposits[0].metadata"), abi.encode("Ether", "ETH", uint8(18)), "ETH metadata");
        assertEq(
            vm.parseJsonBytes(v, ".deposits[2].metadata"), abi.encode("USD Coin", "USDC", uint8(6)), "ERC-20 metadata"
        );
        assertEq(vm.parseJsonAddress(v, ".deposits[1].token"), BridgeMessages.KMC, "KMC id");
        assertEq(vm.parseJsonAddress(v, ".deposits[0].token"), BridgeMessages.ETH, "ETH id");
    }

    function test_theVectorExitsArePaidOnce() public {
        StakingToken kmc = new StakingToken(address(this), 1e9 ether);
        MockRoots roots = new MockRoots();
        Bridge bridge = new Bridge(kmc, roots, address(0x1001));
        roots.set(5, vm.parseJsonBytes32(v, ".checkpoint.root"));
        CheckpointTree.BlockLeaf memory leaf = CheckpointTree.BlockLeaf(
            vm.parseJsonUint(v, ".block.number"),
            vm.parseJsonUint(v, ".block.timestamp"),
            vm.parseJsonBytes32(v, ".block.blockHash"),
            vm.parseJsonBytes32(v, ".block.receiptsRoot"),
            vm.parseJsonBytes32(v, ".block.withdrawalsRoot")
        );
        for (uint256 i; i < 3; ++i) {
            string memory w = string.concat(".exits[", vm.toString(i), "].withdrawal");
            BridgeMessages.Withdrawal memory wd = BridgeMessages.Withdrawal(
                vm.parseJsonUint(v, string.concat(w, ".nonce")),
                vm.parseJsonAddress(v, string.concat(w, ".sender")),
                vm.parseJsonAddress(v, string.concat(w, ".recipient")),
                vm.parseJsonAddress(v, string.concat(w, ".token")),
                vm.parseJsonUint(v, string.concat(w, ".amount"))
            );
            assertEq(BridgeMessages.withdrawalLeaf(wd), vm.parseJsonBytes32(v, _s(".exits", i, "leaf")), "leaf");
            // fund the vault with exactly this withdrawal's amount
            if (wd.token == BridgeMessages.ETH) {
                bridge.depositEtherFor{value: wd.amount}(address(this));
            } else if (wd.token == BridgeMessages.KMC) {
                kmc.approve(address(bridge), wd.amount);
                bridge.depositERC20For(address(kmc), address(this), wd.amount);
            } else {
                // an ERC-20 at the vector's address
                vm.etch(wd.token, address(new TestToken("", "", 6)).code);
                TestToken(wd.token).mint(address(this), wd.amount);
                TestToken(wd.token).approve(address(bridge), wd.amount);
                bridge.depositERC20For(wd.token, address(this), wd.amount);
            }
            WithdrawManager.ExitProof memory p = WithdrawManager.ExitProof(
                wd,
                vm.parseJsonUint(v, _s(".exits", i, "withdrawalIndex")),
                vm.parseJsonBytes32Array(v, _s(".exits", i, "withdrawalProof")),
                5,
                leaf,
                vm.parseJsonUint(v, _s(".exits", i, "blockIndex")),
                vm.parseJsonBytes32Array(v, _s(".exits", i, "blockProof"))
            );
            bridge.exit(p);
            assertTrue(bridge.isExited(wd.nonce), "exited");
            assertEq(bridge.locked(wd.token), 0, "paid out");
        }
    }

    receive() external payable {}
}
