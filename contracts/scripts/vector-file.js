// What the vector scripts share: byte helpers, secp256k1 signing, and writing a vector file or checking
// that the committed one is fresh (`--check`).
'use strict';

const fs = require('fs');
const path = require('path');
const { keccak_256 } = require('@noble/hashes/sha3');
const { secp256k1 } = require('@noble/curves/secp256k1');

const hex = (b) => `0x${Buffer.from(b).toString('hex')}`;
const unhex = (h) => Uint8Array.from(Buffer.from(h.replace(/^0x/, ''), 'hex'));
const cat = (...parts) => Uint8Array.from(Buffer.concat(parts.map((p) => Buffer.from(p))));
const keccak = (...parts) => keccak_256(cat(...parts));
const ascii = (s) => Uint8Array.from(Buffer.from(s, 'ascii'));
const be = (n, bytes) => unhex(BigInt(n).toString(16).padStart(bytes * 2, '0'));

/// A secp256k1 signature over a 32-byte hash, no prefix (RFC 6979, low s): r ‖ s ‖ v,
/// v = 27 or 28.
function sign(hash, key) {
  const sig = secp256k1.sign(hash, key, { lowS: true });
  return cat(be(sig.r, 32), be(sig.s, 32), [27 + sig.recovery]);
}

/// The Ethereum address of a secp256k1 secret key.
function address(key) {
  const pub = secp256k1.getPublicKey(key, false).slice(1);
  return hex(keccak(pub).slice(12));
}

/// Writes `value` as JSON to `out`, or with `--check` exits 1 if the file holds anything
/// else (`script` names the generator in the message).
function writeOrCheck(out, value, script) {
  const text = `${JSON.stringify(value, null, 1)}\n`;
  const name = path.relative(process.cwd(), out);
  if (process.argv.includes('--check')) {
    if (!fs.existsSync(out) || fs.readFileSync(out, 'utf8') !== text) {
      console.error(`${out} is stale: run node contracts/scripts/${path.basename(script)}`);
      process.exit(1);
    }
    console.log(`${name} is up to date`);
    return;
  }
  fs.writeFileSync(out, text);
  console.log(`wrote ${name}`);
}

module.exports = { hex, unhex, cat, keccak, ascii, be, sign, address, writeOrCheck };
