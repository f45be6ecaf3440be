"""The compiled fixture contracts the suite deploys are committed (their freshness against
the sources is checked by scripts/contracts, which runs contracts/build.js --check)."""

import json
from pathlib import Path

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
