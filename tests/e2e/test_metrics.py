"""Operator basics: the Prometheus endpoint (``--metrics``, ``koma devnet
--metrics-port``) scraped with plain HTTP, and ``koma node --config FILE``."""

from __future__ import annotations

import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cluster import Cluster, ProcNode, free_port_range, wait_until
from devnode import free_port, koma_bin

pytestmark = pytest.mark.koma_only

REPO = Path(__file__).resolve().parents[2]
LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)")


def scrape(url: str) -> tuple[str, dict[str, float]]:
    """The exposition text and its samples by ``name{labels}``."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
        text = resp.read().decode()
    samples = {}
    for line in text.splitlines():
        m = LINE.match(line)
        if m:
            samples[m.group(1)] = float(m.group(2))
    return text, samples


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    base = free_port_range(2)
    c = Cluster(tmp_path_factory.mktemp("metrics"), n=2, sprint=4,
                extra=("--metrics-port", str(base))).start()
    yield c
    c.stop()


def metrics_url(net, i: int) -> str:
    url = net.manifest["nodes"][i]["metricsUrl"]
    assert url and url.endswith("/metrics"), net.manifest["nodes"][i]
    return url


def test_devnet_gives_each_node_a_metrics_port(net):
    urls = [metrics_url(net, i) for i in range(2)]
    assert len(set(urls)) == 2
    for node in net.nodes:
        i = net.nodes.index(node)
        assert "--metrics" in node.args and urls[i].rsplit("/", 1)[0].endswith(
            node.args[node.args.index("--metrics") + 1])


def test_the_series_are_there_and_move(net):
    url = metrics_url(net, 0)
    node = net.nodes[0]
    # Both producers take turns (sprints of 4), so node 0 builds and imports blocks,
    # receives gossip and sees finality.
    wait_until("node 0 imported a block and built one", lambda: (
        scrape(url)[1].get("koma_block_import_seconds_count", 0) > 0
        and scrape(url)[1].get("koma_block_build_seconds_count", 0) > 0), timeout=90)
    wait_until("a block is final", lambda: scrape(url)[1].get("koma_finalized_block", 0) > 0,
               timeout=60)
    text, s = scrape(url)
    for name in ("koma_head_block", "koma_safe_block", "koma_finalized_block",
                 "koma_block_commit_seconds_count", "koma_consensus_round_length_seconds",
                 "koma_p2p_peers", "koma_p2p_peers_banned_total", "koma_txpool_pending",
                 "koma_txpool_queued", "koma_sync_syncing", "koma_sync_highest_block"):
        assert name in s, f"{name} missing:\n{text}"
    for threshold in ("1/100", "1/3", "1/2", "2/3"):
        key = f'koma_finality_lag_blocks{{threshold="{threshold}"}}'
        assert key in s, f"{key} missing:\n{text}"
        assert 0 <= s[key] <= s["koma_head_block"]
    assert s["koma_consensus_round_length_seconds"] > 0
    assert s["koma_p2p_peers"] >= 1
    assert s["koma_sync_syncing"] == 0
    assert s["koma_sync_highest_block"] >= s["koma_head_block"] - 1
    assert s['koma_p2p_gossip_received_total{topic="blocks"}'] > 0
    assert s['koma_p2p_gossip_received_total{topic="consensus"}'] > 0
    assert s['koma_p2p_gossip_validation_total{topic="blocks",outcome="accept"}'] > 0
    assert 'koma_block_build_seconds_bucket{le="+Inf"}' in s
    assert text.endswith("# EOF\n")

    # Head height grows between scrapes.
    head = s["koma_head_block"]
    wait_until("the head gauge grows", lambda: scrape(url)[1]["koma_head_block"] > head,
               timeout=20)

    # RPC counters and latency by method; unknown methods all count as `other`.
    key = 'koma_rpc_requests_total{method="eth_blockNumber"}'
    before = scrape(url)[1].get(key, 0)
    other_before = scrape(url)[1].get('koma_rpc_requests_total{method="other"}', 0)
    for _ in range(5):
        node.head()
    node.call_raw("koma_noSuchMethod")
    node.call_raw("nope_atAll")
    text, s = scrape(url)
    assert s[key] >= before + 5
    assert s['koma_rpc_requests_total{method="other"}'] >= other_before + 2
    assert s['koma_rpc_errors_total{method="other"}'] >= 2
    assert s['koma_rpc_request_duration_seconds_count{method="eth_blockNumber"}'] >= 5
    assert "koma_noSuchMethod" not in text and "nope_atAll" not in text


def test_only_get_metrics_is_served(net):
    base = metrics_url(net, 1).removesuffix("/metrics")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(base + "/", timeout=10)
    assert e.value.code == 404
    req = urllib.request.Request(base + "/metrics", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 405


def test_config_file_sets_flags_and_the_command_line_wins(tmp_path):
    http_port, metrics_port, cli_port = free_port(), free_port(), free_port()
    config = tmp_path / "koma.toml"
    config.write_text(f"""
genesis = "{REPO / 'genesis' / 'devnet.json'}"
datadir = "{tmp_path / 'data'}"
http-port = {http_port}
metrics = {metrics_port}
no-p2p = true
rpc-max-logs = 5000
txpool-globalslots = 5000
log = "info"
""")
    node = ProcNode(tmp_path, "from-config", http_port, ["node", "--config", str(config)])
    node.start()
    try:
        assert int(node.call("eth_chainId"), 16) == 42424
        _, s = scrape(f"http://127.0.0.1:{metrics_port}/metrics")
        assert "koma_head_block" in s
    finally:
        node.stop()

    # A flag on the command line overrides the file's value.
    node = ProcNode(tmp_path, "flag-wins", cli_port,
                    ["node", "--config", str(config), "--http-port", str(cli_port)])
    node.start()
    try:
        assert int(node.call("eth_chainId"), 16) == 42424
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{http_port}", timeout=2)
    finally:
        node.stop()


def test_config_file_with_an_unknown_key_is_refused(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('datadir = "x"\nhttp-prot = 1\n')
    res = subprocess.run([str(koma_bin()), "node", "--config", str(config)],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode != 0
    assert "unknown key `http-prot`" in res.stderr, res.stderr
    assert "http-port" in res.stderr, res.stderr
