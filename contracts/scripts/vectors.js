#!/usr/bin/env node
// Writes tests/vectors/checkpoint.json: the checkpoint format (block leaves, the padded
// binary Merkle tree, proofs, the signed digest), the staker set commitment, proofs of
// possession and min_sig BLS signatures, computed with @noble/curves and @noble/hashes,
// independently of both the node (Rust, blst) and the contracts (Solidity). Both test
// suites read the file and must reproduce every byte.
//
//   node contracts/scripts/vectors.js           write the vector
//   node contracts/scripts/vectors.js --check   exit 1 if the committed file differs
'use strict';

const path = require('path');
const { bls12_381: bls } = require('@noble/curves/bls12-381');
const { sha256 } = require('@noble/hashes/sha2');
const { hex, unhex, cat, keccak, writeOrCheck } = require('./vector-file');

const OUT = path.resolve(__dirname, '..', '..', 'tests', 'vectors', 'checkpoint.json');
const SIG_DST = 'BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_';
const POP_DST = 'BLS_POP_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_';
const R = bls.fields.Fr.ORDER;

// ---- bytes ----
const word = (n) => unhex(BigInt(n).toString(16).padStart(64, '0'));
const addr = (a) => unhex(a);
const addrWord = (a) => cat(new Uint8Array(12), addr(a));
const fp64 = (n) => cat(new Uint8Array(16), unhex(n.toString(16).padStart(96, '0')));

// ---- EIP-2537 encodings ----
function g1Eip2537(point) {
  const { x, y } = point.toAffine();
  return cat(fp64(x), fp64(y));
}
function g2Eip2537(point) {
  const { x, y } = point.toAffine();
  return cat(fp64(x.c0), fp64(x.c1), fp64(y.c0), fp64(y.c1));
}

// ---- keys and signatures (min_sig: signatures in G1, keys in G2) ----
function secretKey(i) {
  // sha256("koma-checkpoint-vector-sk-" i) mod (r - 1) + 1
  const h = BigInt(hex(sha256(Buffer.from(`koma-checkpoint-vector-sk-${i}`))));
  return (h % (R - 1n)) + 1n;
}
const skBytes = (sk) => word(sk);
const publicKey = (sk) => bls.shortSignatures.getPublicKey(skBytes(sk));
function sign(sk, message32, dst) {
  const h = bls.G1.hashToCurve(message32, { DST: dst });
  return bls.shortSignatures.sign(h, skBytes(sk));
}

// ---- checkpoint format ----
function leafHash(b) {
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
  const proof = (index) => levels.slice(0, -1).map((level, d) => level[(index >> d) ^ 1]);
  return { root: levels[levels.length - 1][0], proof };
}
function digest(p) {
  return keccak(
    keccak(Buffer.from('KOMA_CHECKPOINT_V1')),
    word(p.l1ChainId), addrWord(p.rootContract), word(p.l2ChainId),
    word(p.number), word(p.start), word(p.end), p.root, word(p.setId),
  );
}
function popMessage(p, owner, signer, pk2537) {
  return keccak(keccak(Buffer.from('KOMA_BLS_POP_V1')), word(p.l1ChainId), addr(p.rootContract), addr(owner), addr(signer), pk2537);
}
// The CREATE address of `deployer` at `nonce` (RLP of [deployer, nonce], nonce < 128).
function createAddress(deployer, nonce) {
  if (nonce < 1 || nonce > 127) throw new Error('nonce out of the range this helper encodes');
  const rlp = cat([0xd6, 0x94], addr(deployer), [nonce]);
  return `0x${Buffer.from(keccak(rlp).slice(12)).toString('hex')}`;
}

function fakeHash(label) {
  return hex(keccak(Buffer.from(label)));
}

function build() {
  const deployer = '0x00000000000000000000000000000000000d0e05';
  const deployerNonce = 1;
  const params = {
    l1ChainId: 31337,
    l2ChainId: 42424,
    deployer,
    deployerNonce,
    rootContract: createAddress(deployer, deployerNonce),
    minStake: '1000000000000000000',
    maxStakers: 128,
    maxRange: 1024,
    withdrawalDelay: 3600,
    firstBlock: 0,
  };

  const amountsKmc = [1000n, 2000n, 3000n, 4000n];
  const stakers = amountsKmc.map((kmc, i) => {
    const sk = secretKey(i);
    const pk = publicKey(sk);
    const pk2537 = g2Eip2537(pk);
    const owner = `0x${Buffer.from(keccak(Buffer.from(`koma-owner-${i}`)).slice(12)).toString('hex')}`;
    const signer = `0x${Buffer.from(keccak(Buffer.from(`koma-signer-${i}`)).slice(12)).toString('hex')}`;
    const amount = kmc * 10n ** 18n;
    const pm = popMessage(params, owner, signer, pk2537);
    const pop = sign(sk, pm, POP_DST);
    return {
      sk: hex(skBytes(sk)),
      owner,
      signer,
      amount: amount.toString(),
      weight: (amount / 10n ** 9n).toString(),
      slot: i,
      pkCompressed: hex(pk.toRawBytes(true)),
      pk: hex(pk2537),
      keyHash: hex(keccak(pk2537)),
      popMessage: hex(pm),
      pop: hex(g1Eip2537(pop)),
      popCompressed: hex(pop.toRawBytes(true)),
      _sk: sk,
      _pk: pk,
    };
  });
  const totalWeight = stakers.reduce((s, x) => s + BigInt(x.weight), 0n);
  const aggregateKey = bls.shortSignatures.aggregatePublicKeys(stakers.map((s) => s._pk));
  const setId = 1;
  const set = {
    setId,
    totalWeight: totalWeight.toString(),
    aggregateKey: hex(g2Eip2537(aggregateKey)),
    commit: hex(keccak(word(setId), word(totalWeight), g2Eip2537(aggregateKey))),
  };

  // Checkpoint 1 covers blocks 0..4: five leaves padded to eight.
  const blocks = [0, 1, 2, 3, 4].map((n) => {
    const b = {
      number: n,
      timestamp: 1767225600 + n,
      blockHash: fakeHash(`block-${n}`),
      receiptsRoot: fakeHash(`receipts-${n}`),
      withdrawalsRoot: n === 3 ? fakeHash('withdrawals-3') : hex(new Uint8Array(32)),
    };
    b.leaf = hex(leafHash(b));
    return b;
  });
  const t = tree(blocks.map((b) => unhex(b.leaf)));
  blocks.forEach((b, i) => { b.proof = t.proof(i).map(hex); });
  const checkpoint = { number: 1, start: 0, end: 4, root: hex(t.root), setId };
  const d = digest({ ...params, ...checkpoint, root: t.root });
  checkpoint.digest = hex(d);

  const sigs = stakers.map((s) => sign(s._sk, d, SIG_DST));
  const aggregate = (idx) => bls.shortSignatures.aggregateSignatures(idx.map((i) => sigs[i]));
  const signatures = stakers.map((s, i) => ({ slot: i, sig: hex(g1Eip2537(sigs[i])), compressed: hex(sigs[i].toRawBytes(true)) }));
  const submissions = [
    { name: 'all sign', absent: '0x', signedWeight: totalWeight.toString(), signature: hex(g1Eip2537(aggregate([0, 1, 2, 3]))) },
    {
      name: 'slot 2 absent',
      absent: '0x0002',
      signedWeight: (totalWeight - BigInt(stakers[2].weight)).toString(),
      signature: hex(g1Eip2537(aggregate([0, 1, 3]))),
      signersKey: hex(g2Eip2537(bls.shortSignatures.aggregatePublicKeys([0, 1, 3].map((i) => stakers[i]._pk)))),
    },
  ];

  // Evidence of a double signature: staker 1 also signs checkpoint 1 with another root
  // (what RootChain.reportDoubleCheckpoint slashes on).
  const otherRoot = keccak(Buffer.from('koma-conflicting-root'));
  const conflicting = { number: 1, start: 0, end: 4, root: hex(otherRoot), setId };
  const dOther = digest({ ...params, ...conflicting, root: otherRoot });
  conflicting.digest = hex(dOther);
  const sigOther = sign(stakers[1]._sk, dOther, SIG_DST);
  const doubleCheckpoint = {
    slot: 1,
    signer: stakers[1].signer,
    a: { ...checkpoint, signature: signatures[1].sig, compressed: signatures[1].compressed },
    b: { ...conflicting, signature: hex(g1Eip2537(sigOther)), compressed: hex(sigOther.toRawBytes(true)) },
  };

  // Roots of trees of 1..9 leaves (leaf i = keccak256(uint256 i)), to pin the padding.
  const roots = [];
  for (let n = 1; n <= 9; n++) {
    roots.push({ leaves: n, root: hex(tree([...Array(n).keys()].map((i) => keccak(word(i)))).root) });
  }

  for (const s of stakers) { delete s._sk; delete s._pk; }
  return {
    description:
      'The checkpoint format and its BLS12-381 min_sig signatures. leaf = keccak256(uint256 number ‖ uint256 timestamp ‖ blockHash ‖ receiptsRoot ‖ withdrawalsRoot); ' +
      'the tree pads the leaves with zero hashes to a power of two, parent = keccak256(left ‖ right); ' +
      'digest = keccak256(abi.encode(keccak256("KOMA_CHECKPOINT_V1"), l1ChainId, rootContract, l2ChainId, number, start, end, root, setId)); ' +
      'signatures under DST BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_; proofs of possession over keccak256(keccak256("KOMA_BLS_POP_V1") ‖ uint256 l1ChainId ‖ rootContract ‖ owner ‖ signer ‖ pk) ' +
      'under BLS_POP_BLS12381G1_XMD:SHA-256_SSWU_RO_POP_; weight = amount / 1 gwei; set commit = keccak256(uint256 setId ‖ uint256 totalWeight ‖ aggregateKey). ' +
      'Points in EIP-2537 encoding unless named compressed (ZCash). Generated by contracts/scripts/vectors.js with @noble/curves, independent of the node and the contracts.',
    params,
    stakers,
    set,
    blocks,
    checkpoint,
    signatures,
    submissions,
    doubleCheckpoint,
    roots,
  };
}

writeOrCheck(OUT, build(), __filename);
