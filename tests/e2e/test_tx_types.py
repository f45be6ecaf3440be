"""Every transaction type a wallet can send: legacy (EIP-155), EIP-2930, EIP-1559, EIP-7702."""

from eth_account import Account
from hexbytes import HexBytes
from web3 import Web3
from web3.logs import DISCARD
from web3.middleware import SignAndSendRawMiddlewareBuilder

from devnode import CHAIN_ID
from ethutil import GWEI, http_web3

VALUE = 12345


def test_legacy_eip155(w3, chain):
    sender, to = chain.new_account(), Account.create().address
    gas_price = w3.eth.gas_price + GWEI
    receipt = chain.send(sender, {"to": to, "value": VALUE, "gas": 21000, "gasPrice": gas_price})
    tx = w3.eth.get_transaction(receipt["transactionHash"])
    assert tx["type"] == 0 and receipt["type"] == 0
    assert tx["v"] in (2 * CHAIN_ID + 35, 2 * CHAIN_ID + 36)  # EIP-155 replay protection
    assert tx["gasPrice"] == gas_price
    assert receipt["effectiveGasPrice"] == gas_price
    assert receipt["status"] == 1
    assert w3.eth.get_balance(to) == VALUE


def test_access_list_eip2930(w3, chain):
    sender, to = chain.new_account(), Account.create().address
    touched = Account.create().address
    access_list = [{"address": touched, "storageKeys": ["0x" + "00" * 31 + "01"]}]
    gas_price = w3.eth.gas_price + GWEI
    receipt = chain.send(sender, {"type": 1, "to": to, "value": VALUE, "gas": 30000,
                                  "gasPrice": gas_price, "accessList": access_list})
    tx = w3.eth.get_transaction(receipt["transactionHash"])
    assert tx["type"] == 1 and receipt["type"] == 1
    assert tx["chainId"] == CHAIN_ID
    assert [(e["address"], [HexBytes(k) for k in e["storageKeys"]]) for e in tx["accessList"]] == \
        [(touched, [HexBytes(access_list[0]["storageKeys"][0])])]
    # EIP-2930 prices: 2400 per address, 1900 per storage key
    assert receipt["gasUsed"] == 21000 + 2400 + 1900
    assert receipt["status"] == 1


def test_dynamic_fee_eip1559(w3, chain):
    sender, to = chain.new_account(), Account.create().address
    tip = 3 * GWEI
    max_fee = 4 * w3.eth.get_block("latest")["baseFeePerGas"] + tip
    receipt = chain.send(sender, {"type": 2, "to": to, "value": VALUE, "gas": 21000,
                                  "maxFeePerGas": max_fee, "maxPriorityFeePerGas": tip})
    tx = w3.eth.get_transaction(receipt["transactionHash"])
    assert tx["type"] == 2 and receipt["type"] == 2
    assert tx["chainId"] == CHAIN_ID
    assert tx["maxFeePerGas"] == max_fee and tx["maxPriorityFeePerGas"] == tip
    base = w3.eth.get_block(receipt["blockNumber"])["baseFeePerGas"]
    assert receipt["effectiveGasPrice"] == min(max_fee, base + tip)
    assert w3.eth.get_balance(to) == VALUE


def test_all_types_in_one_go(w3, chain):
    """Three senders, three types, sent back to back: all mined with their own type."""
    a, b, c = chain.new_accounts(3)
    to = Account.create().address
    price = w3.eth.gas_price + GWEI
    hashes = [
        chain.send(a, {"to": to, "value": 1, "gas": 21000, "gasPrice": price}, wait=False),
        chain.send(b, {"type": 1, "to": to, "value": 2, "gas": 21000, "gasPrice": price,
                       "accessList": []}, wait=False),
        chain.send(c, {"to": to, "value": 3, "gas": 21000}, wait=False),
    ]
    receipts = [chain.wait(h) for h in hashes]
    assert [r["type"] for r in receipts] == [0, 1, 2]
    assert all(r["status"] == 1 for r in receipts)
    assert w3.eth.get_balance(to) == 6


def test_web3_defaults_with_signing_middleware(node, w3, chain):
    """What a DApp does: web3.py fills gas and fees from the node's suggestions and the
    signing middleware turns eth_sendTransaction into a locally signed raw tx."""
    sender = chain.new_account()
    to = Account.create().address
    client = http_web3(node.http_url)
    client.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(sender), layer=0)
    h = client.eth.send_transaction({"from": sender.address, "to": to, "value": VALUE})
    receipt = chain.wait(h)
    assert receipt["status"] == 1 and receipt["type"] == 2
    assert w3.eth.get_balance(to) == VALUE


def test_set_code_eip7702(w3, chain):
    """A type-4 tx delegates an EOA to contract code (sponsored by another account)."""
    deployer, sponsor = chain.new_accounts(2)
    reverter, _ = chain.deploy(deployer, "Reverter", 42)
    authority = chain.new_account()
    auth_nonce = w3.eth.get_transaction_count(authority.address)
    auth = Account.sign_authorization(
        {"chainId": CHAIN_ID, "address": reverter.address, "nonce": auth_nonce}, authority.key)
    # The type-4 tx itself calls the EOA, which already runs the delegated code.
    as_reverter = w3.eth.contract(address=authority.address, abi=reverter.abi)
    call_data = as_reverter.encode_abi("setValue", [7])
    receipt = chain.send(sponsor, {"type": 4, "to": authority.address, "value": 0, "gas": 200_000,
                                   "data": call_data, "authorizationList": [auth]})
    assert receipt["status"] == 1
    assert receipt["type"] == 4
    tx = w3.eth.get_transaction(receipt["transactionHash"])
    assert tx["type"] == 4
    (entry,) = tx["authorizationList"]
    assert Web3.to_checksum_address(entry["address"]) == reverter.address
    assert int(entry["nonce"]) == auth_nonce
    (event,) = as_reverter.events.ValueSet().process_receipt(receipt, errors=DISCARD)
    assert event["address"] == authority.address and event["args"]["newValue"] == 7

    # The delegation designator 0xef0100 || address is the authority's code now.
    assert w3.eth.get_code(authority.address) == HexBytes("0xef0100") + HexBytes(reverter.address)
    assert w3.eth.get_transaction_count(authority.address) == auth_nonce + 1

    # Later calls run Reverter's code on the EOA's own storage, not the contract's.
    assert w3.eth.get_storage_at(authority.address, 0) == (7).to_bytes(32, "big")
    assert as_reverter.functions.getValue().call() == 7
    r2 = chain.transact(sponsor, as_reverter.functions.setValue(9))
    assert r2["status"] == 1 and r2["type"] == 2
    assert as_reverter.functions.getValue().call() == 9
    assert reverter.functions.getValue().call() == 42
