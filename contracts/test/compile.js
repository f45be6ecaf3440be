#!/usr/bin/env node
// Compiles the Solidity fixtures of the end-to-end tests (tests/fixtures/contracts/*.sol)
// with solc-js from the npm registry and writes one JSON artifact per contract
// (abi + bytecode + deployedBytecode) to tests/fixtures/artifacts/.
//
//   node contracts/test/compile.js            write the artifacts
//   node contracts/test/compile.js --check    exit 1 if a committed artifact is stale
//
// solc is resolved with require('solc'): install it with `npm ci` in this directory or
// point NODE_PATH at a node_modules that has it (scripts/test does the latter). The
// version must be the one pinned in package.json, or the bytecode would differ.
'use strict';

const fs = require('fs');
const path = require('path');

const repo = path.resolve(__dirname, '..', '..');
const srcDir = path.join(repo, 'tests', 'fixtures', 'contracts');
const outDir = path.join(repo, 'tests', 'fixtures', 'artifacts');
const pinned = require('./package.json').dependencies.solc;

const SETTINGS = {
  evmVersion: 'prague',
  optimizer: { enabled: true, runs: 200 },
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
};

function loadSolc() {
  let solc;
  try {
    solc = require('solc');
  } catch (e) {
    console.error(`solc not found: run \`npm ci\` in ${__dirname} or set NODE_PATH (${e.message})`);
    process.exit(2);
  }
  const version = solc.version();
  if (!version.startsWith(`${pinned}+`)) {
    console.error(`solc ${version} found, but package.json pins ${pinned}`);
    process.exit(2);
  }
  return solc;
}

function compile(solc) {
  const sources = {};
  for (const file of fs.readdirSync(srcDir).filter((f) => f.endsWith('.sol')).sort()) {
    sources[file] = { content: fs.readFileSync(path.join(srcDir, file), 'utf8') };
  }
  const input = { language: 'Solidity', sources, settings: SETTINGS };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors || []).filter((e) => e.severity === 'error');
  for (const e of output.errors || []) console.error(e.formattedMessage);
  if (errors.length > 0) process.exit(1);

  const artifacts = {};
  for (const sourceName of Object.keys(output.contracts).sort()) {
    for (const [contractName, c] of Object.entries(output.contracts[sourceName])) {
      const artifact = {
        contractName,
        sourceName,
        compiler: { version: solc.version(), settings: { evmVersion: SETTINGS.evmVersion, optimizer: SETTINGS.optimizer } },
        abi: c.abi,
        bytecode: `0x${c.evm.bytecode.object}`,
        deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
      };
      artifacts[`${contractName}.json`] = `${JSON.stringify(artifact, null, 2)}\n`;
    }
  }
  return artifacts;
}

function main() {
  const check = process.argv.includes('--check');
  const artifacts = compile(loadSolc());
  const existing = fs.existsSync(outDir) ? fs.readdirSync(outDir).filter((f) => f.endsWith('.json')) : [];
  if (check) {
    const stale = [];
    for (const [file, text] of Object.entries(artifacts)) {
      const p = path.join(outDir, file);
      if (!fs.existsSync(p) || fs.readFileSync(p, 'utf8') !== text) stale.push(file);
    }
    for (const file of existing) if (!(file in artifacts)) stale.push(`${file} (no source)`);
    if (stale.length > 0) {
      console.error(`stale artifacts in ${outDir}: ${stale.join(', ')}; run: node contracts/test/compile.js`);
      process.exit(1);
    }
    console.log(`artifacts up to date (${Object.keys(artifacts).length} contracts)`);
    return;
  }
  fs.mkdirSync(outDir, { recursive: true });
  for (const file of existing) if (!(file in artifacts)) fs.unlinkSync(path.join(outDir, file));
  for (const [file, text] of Object.entries(artifacts)) fs.writeFileSync(path.join(outDir, file), text);
  console.log(`wrote ${Object.keys(artifacts).length} artifacts to ${path.relative(repo, outDir)}`);
}

main();
