"""The compiled fixture contracts the suite deploys are committed; they must match their
sources (recompiled with the pinned solc by contracts/test/compile.js --check)."""

import json
import os
import shutil
from pathlib import Path

from devnode import require_tool, run
from ethutil import ARTIFACTS

REPO = Path(__file__).resolve().parents[2]
SOURCES = REPO / "tests" / "fixtures" / "contracts"


def test_every_source_has_an_artifact():
    contracts = sorted(p.stem for p in SOURCES.glob("*.sol"))
    assert contracts == sorted(p.stem for p in ARTIFACTS.glob("*.json"))
    for name in contracts:
        art = json.loads((ARTIFACTS / f"{name}.json").read_text())
        assert art["contractName"] == name
        assert isinstance(art["abi"], list) and art["abi"]
        for key in ("bytecode", "deployedBytecode"):
            assert art[key].startswith("0x") and len(art[key]) > 100
            bytes.fromhex(art[key][2:])


def test_artifacts_are_fresh(node_modules):
    node_exe = require_tool("node", shutil.which("node"), "install Node.js")
    modules = node_modules["solc"]
    require_tool("solc", modules if (Path(modules) / "solc").is_dir() else None,
                 f"npm ci in contracts/test, or set E2E_SOLC_NODE_MODULES (looked in {modules})")
    res = run([node_exe, str(REPO / "contracts" / "test" / "compile.js"), "--check"], timeout=300,
              env=dict(os.environ, NODE_PATH=modules))
    assert res.returncode == 0, res.stdout + res.stderr
