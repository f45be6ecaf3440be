#!/usr/bin/env node
// viem against a running node: reads over HTTP and WebSocket, a signed EIP-1559 transfer
// from a dev key (viem fills nonce, gas and fees from the node), watchBlocks over WS.
// Run by tests/e2e/test_viem.py; prints one JSON line with what it saw.
//
//   RPC_HTTP=http://127.0.0.1:P RPC_WS=ws://127.0.0.1:P CHAIN_ID=42424 PRIVATE_KEY=0x.. \
//   NODE_PATH=<dir with viem> node smoke.cjs
'use strict';

const { createPublicClient, createWalletClient, defineChain, http, webSocket } = require('viem');
const { generatePrivateKey, privateKeyToAccount } = require('viem/accounts');

const { RPC_HTTP, RPC_WS, PRIVATE_KEY } = process.env;
const CHAIN_ID = Number(process.env.CHAIN_ID || 42424);
const TIMEOUT_MS = 60_000;

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function main() {
  const chain = defineChain({
    id: CHAIN_ID,
    name: 'koma devnet',
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [RPC_HTTP], webSocket: [RPC_WS] } },
  });
  const httpClient = createPublicClient({ chain, transport: http(RPC_HTTP) });
  const wsClient = createPublicClient({ chain, transport: webSocket(RPC_WS) });

  const chainIdHttp = await httpClient.getChainId();
  const chainIdWs = await wsClient.getChainId();
  const blockNumber = await httpClient.getBlockNumber();
  const blockNumberWs = await wsClient.getBlockNumber();

  // watchBlocks over WS subscribes to newHeads
  const blocks = [];
  let unwatch;
  const threeBlocks = new Promise((resolve, reject) => {
    unwatch = wsClient.watchBlocks({
      onBlock: (b) => {
        blocks.push({ number: b.number.toString(), hash: b.hash, parentHash: b.parentHash });
        if (blocks.length >= 3) resolve();
      },
      onError: reject,
    });
  });

  const account = privateKeyToAccount(PRIVATE_KEY);
  const wallet = createWalletClient({ account, chain, transport: http(RPC_HTTP) });
  const to = privateKeyToAccount(generatePrivateKey()).address;
  const value = 123456789n;
  const hash = await wallet.sendTransaction({ to, value, type: 'eip1559' });
  const receipt = await httpClient.waitForTransactionReceipt({ hash, timeout: TIMEOUT_MS, pollingInterval: 250 });
  const tx = await wsClient.getTransaction({ hash });
  const balance = await httpClient.getBalance({ address: to });

  await withTimeout(threeBlocks, TIMEOUT_MS, 'watchBlocks');
  unwatch();

  const result = {
    chainIdHttp,
    chainIdWs,
    blockNumber: blockNumber.toString(),
    blockNumberWs: blockNumberWs.toString(),
    from: account.address,
    to,
    value: value.toString(),
    hash,
    status: receipt.status,
    receiptType: receipt.type,
    txType: tx.type,
    receiptBlock: receipt.blockNumber.toString(),
    balance: balance.toString(),
    blocks,
  };
  console.log(JSON.stringify(result));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err && err.stack ? err.stack : err);
    process.exit(1);
  },
);
