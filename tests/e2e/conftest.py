"""Fixtures of the end-to-end suite: one shared dev chain for the session, private nodes
for the restart/crash tests, web3 clients.

Target selection: E2E_TARGET=koma (default) or anvil, see devnode.py. Tests marked
``koma_only`` are skipped on anvil; against koma no test may be skipped at all (the
session fails if one was), so a missing prerequisite can never pass silently.
"""

from __future__ import annotations

import os
import signal
import sys

import pytest
from web3 import Web3

import devnode
from devnode import IS_KOMA, TARGET, DevNode
from ethutil import Chain, RawRpc, http_web3

def _terminate(signum, frame):  # noqa: ARG001
    # Turn SIGTERM (e.g. from `timeout`) into an exception so fixtures tear down and
    # every node is stopped.
    devnode.kill_all()
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    config.addinivalue_line("markers", "koma_only: needs koma-specific behaviour; skipped on anvil")
    signal.signal(signal.SIGTERM, _terminate)
    config._e2e_skipped = []


def pytest_report_header(config):  # noqa: ARG001
    try:
        binary = devnode.node_binary()
    except RuntimeError as e:
        binary = f"<missing: {e}>"
    return f"e2e target: {TARGET} ({binary}), block time {devnode.BLOCK_TIME_MS} ms"


# Files whose tests take longest, longest first (measured: `scripts/e2e --durations=0`,
# summed per file; docs/benchmarks.md). With `--dist loadfile --no-loadscope-reorder`
# (scripts/test), pytest-xdist deals whole files in collection order: one to each
# worker, then the next one to a worker as soon as it has two tests left. Starting the
# longest files first (longest processing time first) makes the workers end at about
# the same time. (Without `--no-loadscope-reorder` xdist orders files by their number
# of tests instead, which on four workers took 481 s against 408 s modelled for this
# order.) Without xdist the order changes nothing.
SLOW_FILES_FIRST = ("test_staking.py", "test_producers.py", "test_double_seal.py", "test_checkpoint_faults.py", "test_l1.py", "test_bridge_faults.py",
                    "test_network.py", "test_bridge_anvil.py", "test_slashing.py", "test_finality.py",
                    "test_l1_anvil.py", "test_node_lifecycle.py")


def _file_rank(item) -> int:
    name = item.path.name
    return SLOW_FILES_FIRST.index(name) if name in SLOW_FILES_FIRST else len(SLOW_FILES_FIRST)


def pytest_collection_modifyitems(config, items):  # noqa: ARG001
    items.sort(key=_file_rank)  # stable: the order within a file is kept
    if IS_KOMA:
        return
    skip = pytest.mark.skip(reason=f"koma-specific (target is {TARGET})")
    for item in items:
        if "koma_only" in item.keywords:
            item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.skipped:
        item.config._e2e_skipped.append(item.nodeid)
    if report.failed:
        for node in list(devnode._LIVE.values()):
            report.sections.append((f"{node.name} log", node.log_tail(80)))
    return report


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001
    skipped = session.config._e2e_skipped
    if IS_KOMA and skipped:
        sys.stderr.write("\nE2E: against koma nothing may be skipped, but these were:\n  "
                         + "\n  ".join(skipped) + "\n")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def node(tmp_path_factory):
    n = DevNode(tmp_path_factory.mktemp("shared"), "shared")
    n.start()
    yield n
    # SIGTERM must end the node cleanly
    assert n.stop() == 0, n.log_tail()


@pytest.fixture(scope="session")
def w3(node) -> Web3:
    return http_web3(node.http_url)


@pytest.fixture(scope="session")
def chain(w3) -> Chain:
    return Chain(w3)


@pytest.fixture(scope="session")
def raw(node) -> RawRpc:
    return RawRpc(node.http_url)


@pytest.fixture
def private_node(tmp_path):
    """A factory of nodes owned by one test (own datadir and port), all stopped after it."""
    made: list[DevNode] = []

    def make(name: str = "private", **kw) -> DevNode:
        n = DevNode(tmp_path, name, **kw)
        made.append(n)
        return n

    yield make
    for n in made:
        n.kill9()


@pytest.fixture(scope="session")
def node_modules():
    """Where the npm packages of the JS tests are (scripts/test installs them)."""
    return {
        "viem": os.environ.get("E2E_VIEM_NODE_MODULES",
                               str(devnode.KOMA_CACHE / "npm/viem/node_modules")),
    }
