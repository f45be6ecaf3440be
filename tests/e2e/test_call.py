"""eth_call and eth_estimateGas: revert data, block tags, state overrides, storage reads."""

import pytest
from eth_account import Account
from hexbytes import HexBytes

from devnode import CHAIN_ID
from ethutil import artifact, encode_error, hexint

REASON = "Reverter: reason string"


@pytest.fixture(scope="module")
def reverter(chain):
    owner = chain.new_account()
    contract, receipt = chain.deploy(owner, "Reverter", 42)
    return owner, contract, receipt


def call_params(contract, fn, *args, sender=None):
    p = {"to": contract.address, "data": contract.encode_abi(fn, list(args))}
    if sender:
        p["from"] = sender
    return p


def test_revert_reason(raw, reverter):
    owner, c, _ = reverter
    err = raw.error("eth_call", [call_params(c, "failWithReason"), "latest"])
    assert err["code"] == 3
    assert "execution reverted" in err["message"]
    assert REASON in err["message"]
    assert HexBytes(err["data"]) == encode_error("Error(string)", [REASON])


def test_revert_custom_error(raw, reverter):
    owner, c, _ = reverter
    err = raw.error("eth_call", [call_params(c, "failWithCustomError", sender=owner.address), "latest"])
    assert err["code"] == 3
    assert "execution reverted" in err["message"]
    assert HexBytes(err["data"]) == encode_error("Unauthorized(address,uint256)", [owner.address, 42])


def test_estimate_gas_revert(raw, reverter):
    owner, c, _ = reverter
    err = raw.error("eth_estimateGas", [call_params(c, "setValueOrFail", 13, sender=owner.address)])
    assert err["code"] == 3
    assert "execution reverted" in err["message"] and "Reverter: unlucky" in err["message"]
    assert HexBytes(err["data"]) == encode_error("Error(string)", ["Reverter: unlucky"])
    ok = hexint(raw.result("eth_estimateGas", [call_params(c, "setValueOrFail", 12, sender=owner.address)]))
    assert 21_000 < ok < 100_000


def test_call_at_block_tags(w3, chain, raw, reverter):
    owner, c, deploy_receipt = reverter
    deployed_at = deploy_receipt["blockNumber"]
    assert c.functions.getValue().call() == 42
    receipt = chain.transact(owner, c.functions.setValue(43))
    changed_at = receipt["blockNumber"]

    assert c.functions.getValue().call(block_identifier=changed_at - 1) == 42
    assert c.functions.getValue().call(block_identifier=changed_at) == 43
    assert c.functions.getValue().call(block_identifier="latest") == 43
    assert c.functions.getValue().call(block_identifier="pending") == 43
    # EIP-1898: a block by hash
    by_hash = raw.result("eth_call", [call_params(c, "getValue"), {"blockHash": receipt["blockHash"].to_0x_hex()}])
    assert hexint(by_hash) == 43
    # before the contract existed there is no code: empty output
    assert raw.result("eth_call", [call_params(c, "getValue"), hex(deployed_at - 1)]) == "0x"
    assert raw.result("eth_call", [call_params(c, "getValue"), "earliest"]) == "0x"

    # the EVM sees the chain id and the number of the block it is called at
    chain_id, number, _ = c.functions.env().call(block_identifier=changed_at)
    assert chain_id == CHAIN_ID
    assert number == changed_at


def test_storage_at(w3, chain, reverter):
    owner, c, deploy_receipt = reverter
    value = c.functions.getValue().call()
    assert w3.eth.get_storage_at(c.address, 0) == value.to_bytes(32, "big")
    assert w3.eth.get_storage_at(c.address, 0, deploy_receipt["blockNumber"]) == (42).to_bytes(32, "big")
    assert w3.eth.get_storage_at(c.address, 1) == b"\x00" * 32
    assert w3.eth.get_code(c.address) == HexBytes(artifact("Reverter")["deployedBytecode"])
    assert w3.eth.get_code(c.address, deploy_receipt["blockNumber"] - 1) == b""


def test_state_overrides(w3, raw, reverter):
    owner, c, _ = reverter
    slot0 = "0x" + "00" * 32
    seven = "0x" + (7).to_bytes(32, "big").hex()
    # stateDiff: one slot changed, the rest kept
    out = raw.result("eth_call", [call_params(c, "getValue"), "latest", {c.address: {"stateDiff": {slot0: seven}}}])
    assert hexint(out) == 7
    # state: the whole storage replaced
    out = raw.result("eth_call", [call_params(c, "getValue"), "latest", {c.address: {"state": {}}}])
    assert hexint(out) == 0
    # code at an empty address, with storage
    ghost = Account.create().address
    code = artifact("Reverter")["deployedBytecode"]
    p = {"to": ghost, "data": c.encode_abi("getValue", [])}
    assert raw.result("eth_call", [p, "latest"]) == "0x"
    out = raw.result("eth_call", [p, "latest", {ghost: {"code": code, "stateDiff": {slot0: seven}}}])
    assert hexint(out) == 7
    # balance of the caller
    poor = Account.create().address
    p = call_params(c, "env", sender=poor)
    words = HexBytes(raw.result("eth_call", [p, "latest", {poor: {"balance": hex(10**30)}}]))
    assert int.from_bytes(words[64:96], "big") == 10**30
    words = HexBytes(raw.result("eth_call", [p, "latest"]))
    assert int.from_bytes(words[64:96], "big") == 0
    # nothing persisted
    assert w3.eth.get_code(ghost) == b""
    assert c.functions.getValue().call() != 7
