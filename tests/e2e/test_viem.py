"""viem (Node.js) against the node over HTTP and WebSocket: tests/e2e/viem/smoke.cjs."""

import json
import os
import shutil
from pathlib import Path

from devnode import CHAIN_ID, DEV_ADDRESSES, DEV_KEYS, require_tool, run

SCRIPT = Path(__file__).parent / "viem" / "smoke.cjs"


def test_viem_smoke(node, w3, node_modules):
    node_exe = require_tool("node", shutil.which("node"), "install Node.js")
    modules = node_modules["viem"]
    require_tool("viem", modules if (Path(modules) / "viem").is_dir() else None,
                 f"npm ci in tests/e2e/viem, or set E2E_VIEM_NODE_MODULES (looked in {modules})")
    env = dict(os.environ, NODE_PATH=modules, RPC_HTTP=node.http_url, RPC_WS=node.ws_url,
               CHAIN_ID=str(CHAIN_ID), PRIVATE_KEY=DEV_KEYS[9])
    res = run([node_exe, str(SCRIPT)], timeout=180, env=env)
    assert res.returncode == 0, f"viem smoke failed:\n{res.stdout}\n{res.stderr}"
    out = json.loads(res.stdout.strip().splitlines()[-1])

    assert out["chainIdHttp"] == out["chainIdWs"] == CHAIN_ID
    assert int(out["blockNumberWs"]) >= int(out["blockNumber"]) >= 0
    assert out["from"] == DEV_ADDRESSES[9]
    assert out["status"] == "success"
    assert out["receiptType"] == out["txType"] == "eip1559"
    assert int(out["balance"]) == int(out["value"])

    receipt = w3.eth.get_transaction_receipt(out["hash"])
    assert receipt["status"] == 1 and receipt["blockNumber"] == int(out["receiptBlock"])
    assert w3.eth.get_balance(out["to"]) == int(out["value"])

    numbers = [int(b["number"]) for b in out["blocks"]]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    for b in out["blocks"]:
        assert w3.eth.get_block(int(b["number"]))["hash"].to_0x_hex() == b["hash"]
    assert out["blocks"][1]["parentHash"] == out["blocks"][0]["hash"]
