#!/usr/bin/env node
// Writes tests/vectors/bridge.json: the bridge's messages (deposit data, the state hash
// chain, withdrawal leaves, the withdrawals tree) and one complete exit proof (withdrawal
// -> withdrawalsRoot -> block leaf -> checkpoint root), computed here with
// @noble/hashes, independently of the node (Rust) and the contracts (Solidity). Both test
// suites read the file and must reproduce every byte.
//
//   node contracts/scripts/bridge-vectors.js           write the vector
//   node contracts/scripts/bridge-vectors.js --check   exit 1 if the committed file differs
'use strict';

const path = require('path');
const { hex, unhex, cat, keccak, writeOrCheck } = require('./vector-file');

const OUT = path.resolve(__dirname, '..', '..', 'tests', 'vectors', 'bridge.json');
const KMC = '0x0000000000000000000000000000000000001010';
const ETH = '0xeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee';
const L2_BRIDGE = '0x0000000000000000000000000000000000001001';

// ---- bytes and the ABI encoding of the few shapes used ----
const word = (n) => unhex(BigInt(n).toString(16).padStart(64, '0'));
const addrWord = (a) => cat(new Uint8Array(12), unhex(a));
const padded = (b) => cat(b, new Uint8Array((32 - (b.length % 32)) % 32));
const dynBytes = (b) => cat(word(b.length), padded(b));

// abi.encode(string name, string symbol, uint8 decimals)
function metadata(name, symbol, decimals) {
  const n = dynBytes(Buffer.from(name, 'utf8'));
  const s = dynBytes(Buffer.from(symbol, 'utf8'));
  return cat(word(0x60), word(0x60 + n.length), word(decimals), n, s);
}
// abi.encode(address token, address from, address to, uint256 amount, bytes metadata)
function depositData(d) {
  return cat(addrWord(d.token), addrWord(d.from), addrWord(d.to), word(d.amount), word(0xa0), dynBytes(d.metadata));
}
// keccak256(abi.encode(bytes32 previous, uint256 id, address receiver, keccak256(data)))
function nextStateHash(previous, id, receiver, data) {
  return keccak(previous, word(id), addrWord(receiver), keccak(data));
}
// keccak256(abi.encode(nonce, sender, recipient, token, amount))
function withdrawalLeaf(w) {
  return keccak(word(w.nonce), addrWord(w.sender), addrWord(w.recipient), addrWord(w.token), word(w.amount));
}
function blockLeaf(b) {
  return keccak(word(b.number), word(b.timestamp), unhex(b.blockHash), unhex(b.receiptsRoot), unhex(b.withdrawalsRoot));
}
function tree(leaves) {
  let width = 1;
  while (width < leaves.length) width *= 2;
  const levels = [leaves.concat(Array(width - leaves.length).fill(new Uint8Array(32)))];
  while (levels[levels.length - 1].length > 1) {
    const prev = levels[levels.length - 1];
    const next = [];
    for (let i = 0; i < prev.length; i += 2) next.push(keccak(prev[i], prev[i + 1]));
    levels.push(next);
  }
  const proof = (index) => levels.slice(0, -1).map((level, d) => hex(level[(index >> d) ^ 1]));
  return { root: levels[levels.length - 1][0], proof };
}
const fakeHash = (label) => hex(keccak(Buffer.from(label)));

function build() {
  const alice = '0x00000000000000000000000000000000000a11ce';
  const bob = '0x0000000000000000000000000000000000000b0b';
  const usdc = '0x5fbdb2315678afecb367f032d93f642f64180aa3';
  const deposits = [
    { token: ETH, from: alice, to: bob, amount: 10n ** 18n, meta: ['Ether', 'ETH', 18] },
    { token: KMC, from: alice, to: alice, amount: 25n * 10n ** 17n, meta: null },
    { token: usdc, from: alice, to: bob, amount: 1234567n, meta: ['USD Coin', 'USDC', 6] },
    { token: usdc, from: bob, to: alice, amount: 1n, meta: null },
  ];
  let hash = new Uint8Array(32);
  const out = deposits.map((d, i) => {
    const id = i + 1;
    const meta = d.meta ? metadata(...d.meta) : new Uint8Array(0);
    const data = depositData({ ...d, metadata: meta });
    hash = nextStateHash(hash, id, L2_BRIDGE, data);
    return {
      id, receiver: L2_BRIDGE, token: d.token, from: d.from, to: d.to, amount: d.amount.toString(),
      metadata: hex(meta), data: hex(data), stateHash: hex(hash),
    };
  });

  const withdrawals = [
    { nonce: 7, sender: alice, recipient: bob, token: KMC, amount: 5n * 10n ** 18n },
    { nonce: 8, sender: bob, recipient: bob, token: ETH, amount: 1n },
    { nonce: 9, sender: alice, recipient: alice, token: usdc, amount: 1000000n },
  ];
  const wLeaves = withdrawals.map(withdrawalLeaf);
  const wTree = tree(wLeaves);
  const block = {
    number: 37, timestamp: 1767225600, blockHash: fakeHash('block 37'), receiptsRoot: fakeHash('receipts 37'),
    withdrawalsRoot: hex(wTree.root),
  };
  const start = 32;
  const bLeaves = [];
  for (let n = start; n < start + 8; n++) {
    bLeaves.push(n === block.number ? blockLeaf(block) : blockLeaf({
      number: n, timestamp: 1767225600 - 37 + n, blockHash: fakeHash(`block ${n}`), receiptsRoot: fakeHash(`receipts ${n}`),
      withdrawalsRoot: '0x56e81f171bcc55a6ff8345e692c0f86e5b48e01b996cadc001622fb5e363b421',
    }));
  }
  const bTree = tree(bLeaves);
  const exits = withdrawals.map((w, i) => ({
    withdrawal: { ...w, amount: w.amount.toString() },
    leaf: hex(wLeaves[i]),
    withdrawalIndex: i,
    withdrawalProof: wTree.proof(i),
    blockIndex: block.number - start,
    blockProof: bTree.proof(block.number - start),
  }));

  return {
    description:
      'The bridge messages. Token ids: KMC (native on L2) = 0x…1010, ETH = 0xeeee…eeee, an ERC-20 = its L1 address. ' +
      'deposit data = abi.encode(address token, address from, address to, uint256 amount, bytes metadata), metadata = abi.encode(string name, string symbol, uint8 decimals) on the first deposit of an ETH/ERC-20 token, else empty; ' +
      'stateHash(id) = keccak256(abi.encode(stateHash(id-1), id, receiver, keccak256(data))), stateHash(0) = 0; ' +
      'withdrawal leaf = keccak256(abi.encode(uint256 nonce, address sender, address recipient, address token, uint256 amount)); ' +
      'withdrawalsRoot = the padded binary Merkle tree of the checkpoint format over the block\'s withdrawal leaves in order; ' +
      'an exit proves the leaf to withdrawalsRoot, and the block leaf (checkpoint format) to the checkpoint root. ' +
      'Generated by contracts/scripts/bridge-vectors.js with @noble/hashes, independent of the node and the contracts.',
    deposits: out,
    block,
    checkpoint: { start, end: start + 7, root: hex(bTree.root) },
    exits,
  };
}

writeOrCheck(OUT, build(), __filename);
