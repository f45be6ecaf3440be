"""A DApp's life: deploy an ERC-20, transfer, approve, read events back with eth_getLogs."""

import pytest
from eth_account import Account
from hexbytes import HexBytes
from web3.exceptions import ContractCustomError
from web3.logs import DISCARD

from ethutil import (ERC20_TRANSFER_TOPIC, ZERO_ADDRESS, address_from_topic, artifact, encode_error,
                     logs_of, topic_address)

SUPPLY = 1_000_000 * 10**18


@pytest.fixture(scope="module")
def token(chain):
    owner = chain.new_account()
    contract, receipt = chain.deploy(owner, "TestToken", "Koma Test", "KTT", SUPPLY)
    return owner, contract, receipt


def test_deploy(w3, token):
    owner, contract, receipt = token
    assert receipt["status"] == 1
    assert receipt["to"] is None
    assert receipt["contractAddress"] == contract.address
    # No immutables: the runtime code is exactly the compiler's deployedBytecode.
    assert w3.eth.get_code(contract.address) == HexBytes(artifact("TestToken")["deployedBytecode"])
    assert contract.functions.name().call() == "Koma Test"
    assert contract.functions.symbol().call() == "KTT"
    assert contract.functions.decimals().call() == 18
    assert contract.functions.totalSupply().call() == SUPPLY
    assert contract.functions.balanceOf(owner.address).call() == SUPPLY
    # The mint's Transfer event is in the deployment receipt.
    (mint,) = contract.events.Transfer().process_receipt(receipt, errors=DISCARD)
    assert mint["args"]["from"] == ZERO_ADDRESS
    assert mint["args"]["to"] == owner.address
    assert mint["args"]["value"] == SUPPLY
    assert w3.eth.get_transaction_count(owner.address) == 1


def test_transfer_and_logs(w3, chain, token):
    owner, contract, _ = token
    alice = Account.create().address
    receipt = chain.transact(owner, contract.functions.transfer(alice, 1234))
    assert receipt["status"] == 1
    assert contract.functions.balanceOf(alice).call() == 1234
    assert contract.functions.balanceOf(owner.address).call() == SUPPLY - 1234
    # ... but not in the block before
    assert contract.functions.balanceOf(alice).call(block_identifier=receipt["blockNumber"] - 1) == 0

    (log,) = logs_of(receipt, contract.address)
    assert log["address"] == contract.address
    assert log["topics"] == [ERC20_TRANSFER_TOPIC, HexBytes(topic_address(owner.address)),
                             HexBytes(topic_address(alice))]
    assert int.from_bytes(log["data"], "big") == 1234
    assert log["transactionHash"] == receipt["transactionHash"]
    assert log["blockNumber"] == receipt["blockNumber"]
    assert log["blockHash"] == receipt["blockHash"]
    assert log["removed"] is False
    (event,) = contract.events.Transfer().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["value"] == 1234

    block = receipt["blockNumber"]
    by_address = w3.eth.get_logs({"address": contract.address, "fromBlock": block, "toBlock": block})
    assert log in by_address
    by_topics = w3.eth.get_logs({"fromBlock": block, "toBlock": block,
                                 "topics": [ERC20_TRANSFER_TOPIC, None, topic_address(alice)]})
    assert by_topics == [log]
    # OR within one topic position
    either = w3.eth.get_logs({"fromBlock": block, "toBlock": block, "address": contract.address,
                              "topics": [None, [topic_address(alice), topic_address(owner.address)]]})
    assert log in either
    by_hash = w3.eth.get_logs({"blockHash": receipt["blockHash"], "address": contract.address})
    assert log in by_hash
    nobody = w3.eth.get_logs({"fromBlock": block, "toBlock": block,
                              "topics": [ERC20_TRANSFER_TOPIC, topic_address(alice)]})
    assert nobody == []
    # The whole history from genesis has both the mint and this transfer, in order.
    history = w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": contract.address})
    assert history[0]["topics"][1] == HexBytes(topic_address(ZERO_ADDRESS))
    assert log in history
    keys = [(x["blockNumber"], x["logIndex"]) for x in history]
    assert keys == sorted(keys)


def test_approve_and_transfer_from(w3, chain, token):
    owner, contract, _ = token
    spender = chain.new_account()
    dest = Account.create().address
    r1 = chain.transact(owner, contract.functions.approve(spender.address, 500))
    (approval,) = contract.events.Approval().process_receipt(r1, errors=DISCARD)
    assert approval["args"]["owner"] == owner.address
    assert approval["args"]["spender"] == spender.address
    assert contract.functions.allowance(owner.address, spender.address).call() == 500

    r2 = chain.transact(spender, contract.functions.transferFrom(owner.address, dest, 300))
    assert r2["status"] == 1
    (t,) = contract.events.Transfer().process_receipt(r2, errors=DISCARD)
    assert (t["args"]["from"], t["args"]["to"], t["args"]["value"]) == (owner.address, dest, 300)
    assert address_from_topic(logs_of(r2, contract.address)[0]["topics"][2]) == dest
    assert contract.functions.allowance(owner.address, spender.address).call() == 200
    assert contract.functions.balanceOf(dest).call() == 300


def test_failing_transfer(w3, chain, token):
    _, contract, _ = token
    poor = chain.new_account()
    fn = contract.functions.transfer(Account.create().address, 1)
    # eth_call / eth_estimateGas report the custom error
    with pytest.raises(ContractCustomError) as err:
        fn.call({"from": poor.address})
    expected = encode_error("ERC20InsufficientBalance(address,uint256,uint256)", [poor.address, 0, 1])
    assert HexBytes(err.value.data) == HexBytes(expected)
    with pytest.raises(ContractCustomError):
        fn.estimate_gas({"from": poor.address})
    # mined anyway with an explicit gas limit: status 0, no logs, nonce used
    receipt = chain.transact(poor, fn, gas=100_000)
    assert receipt["status"] == 0
    assert logs_of(receipt, contract.address) == []
    assert 21_000 < receipt["gasUsed"] < 100_000
    assert w3.eth.get_transaction_count(poor.address) == 1


def test_estimate_gas_is_enough(w3, chain, token):
    owner, contract, _ = token
    fn = contract.functions.transfer(Account.create().address, 7)
    estimate = fn.estimate_gas({"from": owner.address})
    assert 21_000 < estimate < 100_000
    receipt = chain.transact(owner, fn, gas=estimate)
    assert receipt["status"] == 1
    assert receipt["gasUsed"] <= estimate
