#!/usr/bin/env node
// Compiles the project's Solidity with solc-js from the npm registry (the version pinned
// in package.json) and writes one JSON artifact per deployable contract (abi, bytecode,
// deployedBytecode). The artifacts are committed, so building the node needs no Node.js.
//
//   node contracts/build.js            write the artifacts
//   node contracts/build.js --check    exit 1 if a committed artifact is stale
//
// Two builds:
//   - the contracts, contracts/src -> contracts/artifacts (via-IR: the BLS code needs it),
//     and the L2 bridge predeploy's code into genesis/devnet.json;
//   - the end-to-end test fixtures, tests/fixtures/contracts -> tests/fixtures/artifacts.
// solc and OpenZeppelin are resolved from contracts/node_modules (`npm ci` there; the
// test command links it to its cache).
'use strict';

const fs = require('fs');
const path = require('path');

const repo = path.resolve(__dirname, '..');
const modules = path.join(__dirname, 'node_modules');
const pinned = require('./package.json').dependencies.solc;

const BASE_SETTINGS = {
  evmVersion: 'prague',
  optimizer: { enabled: true, runs: 200 },
  outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
};

const BUILDS = [
  {
    name: 'L1 contracts',
    srcDir: path.join(__dirname, 'src'),
    outDir: path.join(__dirname, 'artifacts'),
    settings: { ...BASE_SETTINGS, viaIR: true },
    // only what gets deployed: libraries are internal, OpenZeppelin is imported
    deployable: ['RootChain', 'StakingToken', 'Bridge', 'L2Bridge'],
    predeploys: true,
  },
  {
    name: 'test fixtures',
    srcDir: path.join(repo, 'tests', 'fixtures', 'contracts'),
    outDir: path.join(repo, 'tests', 'fixtures', 'artifacts'),
    settings: BASE_SETTINGS,
    deployable: null, // every contract
  },
];

function loadSolc() {
  let solc;
  try {
    solc = require(path.join(modules, 'solc'));
  } catch (e) {
    console.error(`solc not found: run \`npm ci\` in ${__dirname} (${e.message})`);
    process.exit(2);
  }
  const version = solc.version();
  if (!version.startsWith(`${pinned}+`)) {
    console.error(`solc ${version} found, but package.json pins ${pinned}`);
    process.exit(2);
  }
  return solc;
}

function solidityFiles(dir) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...solidityFiles(full));
    else if (entry.name.endsWith('.sol')) out.push(full);
  }
  return out.sort();
}

// Imports: relative ones are resolved by solc against the importing source's name;
// package imports (@openzeppelin/...) come from node_modules.
function findImports(importPath, srcDir) {
  for (const base of [srcDir, modules]) {
    const full = path.join(base, importPath);
    if (fs.existsSync(full)) return { contents: fs.readFileSync(full, 'utf8') };
  }
  return { error: `not found: ${importPath}` };
}

function compile(solc, build) {
  const sources = {};
  for (const file of solidityFiles(build.srcDir)) {
    sources[path.relative(build.srcDir, file)] = { content: fs.readFileSync(file, 'utf8') };
  }
  const input = { language: 'Solidity', sources, settings: build.settings };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: (p) => findImports(p, build.srcDir) }));
  for (const e of output.errors || []) console.error(e.formattedMessage);
  if ((output.errors || []).some((e) => e.severity === 'error')) process.exit(1);

  const artifacts = {};
  for (const sourceName of Object.keys(output.contracts).sort()) {
    if (!(sourceName in sources)) continue; // imported from a package
    for (const [contractName, c] of Object.entries(output.contracts[sourceName])) {
      if (build.deployable && !build.deployable.includes(contractName)) continue;
      const { outputSelection, ...settings } = build.settings;
      const artifact = {
        contractName,
        sourceName,
        compiler: { version: solc.version(), settings },
        abi: c.abi,
        bytecode: `0x${c.evm.bytecode.object}`,
        deployedBytecode: `0x${c.evm.deployedBytecode.object}`,
      };
      artifacts[`${contractName}.json`] = `${JSON.stringify(artifact, null, 2)}\n`;
    }
  }
  return artifacts;
}

// The devnet genesis (genesis/devnet.json) carries the L2 bridge predeploy's code; it is
// kept equal to the artifact's deployedBytecode here, and `--check` fails if it is not.
const GENESIS = path.join(repo, 'genesis', 'devnet.json');
const PREDEPLOYS = { L2Bridge: '0x0000000000000000000000000000000000001001' };

function genesisWithPredeploys(artifacts) {
  let text = fs.readFileSync(GENESIS, 'utf8');
  for (const [name, address] of Object.entries(PREDEPLOYS)) {
    const code = JSON.parse(artifacts[`${name}.json`]).deployedBytecode;
    const entry = new RegExp(`("${address}":\\s*\\{[^}]*"code":\\s*")0x[0-9a-fA-F]*(")`);
    if (!entry.test(text)) {
      console.error(`${path.relative(repo, GENESIS)} has no alloc entry with code for ${name} at ${address}`);
      process.exit(1);
    }
    text = text.replace(entry, `$1${code}$2`);
  }
  return text;
}

function main() {
  const check = process.argv.includes('--check');
  const solc = loadSolc();
  let stale = [];
  for (const build of BUILDS) {
    const artifacts = compile(solc, build);
    const { outDir } = build;
    if (build.predeploys) {
      const genesis = genesisWithPredeploys(artifacts);
      if (check && fs.readFileSync(GENESIS, 'utf8') !== genesis) stale.push('genesis/devnet.json (predeploy code)');
      if (!check) fs.writeFileSync(GENESIS, genesis);
    }
    const existing = fs.existsSync(outDir) ? fs.readdirSync(outDir).filter((f) => f.endsWith('.json')) : [];
    const rel = path.relative(repo, outDir);
    if (check) {
      for (const [file, text] of Object.entries(artifacts)) {
        const p = path.join(outDir, file);
        if (!fs.existsSync(p) || fs.readFileSync(p, 'utf8') !== text) stale.push(`${rel}/${file}`);
      }
      for (const file of existing) if (!(file in artifacts)) stale.push(`${rel}/${file} (no source)`);
      continue;
    }
    fs.mkdirSync(outDir, { recursive: true });
    for (const file of existing) if (!(file in artifacts)) fs.unlinkSync(path.join(outDir, file));
    for (const [file, text] of Object.entries(artifacts)) fs.writeFileSync(path.join(outDir, file), text);
    console.log(`${build.name}: wrote ${Object.keys(artifacts).length} artifacts to ${rel}`);
  }
  if (check) {
    if (stale.length > 0) {
      console.error(`stale artifacts: ${stale.join(', ')}; run: node contracts/build.js`);
      process.exit(1);
    }
    console.log('artifacts up to date');
  }
}

main();
