"""The README's first-frame snippet runs as written, on the defaults (DuckDB under ~/.feature_cache), also beside
`python -m service` on the defaults, whose scrape then counts the snippet's inserts and hits; its two runs say which
one computed the frame and which read it from the cache."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from featurestore.metrics import HIT_RATIO, HITS, MANIFEST_INSERT_LATENCY, MISSES
from tests.conftest import REPO
from tests.service.conftest import API
from tests.service.test_main import served


def snippet(name: str) -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    found = re.search(rf"<!-- snippet: {re.escape(name)} -->\n```python\n(.*?)```", readme, re.DOTALL)
    assert found is not None, f"README.md has no python block marked <!-- snippet: {name} -->"
    return found.group(1)


def test_the_first_frame_snippet_runs_as_written_beside_the_service_and_its_inserts_and_hits_reach_the_scrape(
    tmp_path: Path,
) -> None:
    # Both on the defaults, as the README says: DuckDB in ~/.feature_cache, no PROMETHEUS_MULTIPROC_DIR.
    script = tmp_path / "first_frame.py"
    script.write_text(snippet("first-frame"), encoding="utf-8")
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("SERVICE_", "FEATURESTORE_"))}
    environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    environ["HOME"] = str(tmp_path)  # the service's HOME too
    outputs = []
    with served(tmp_path, cache_dir=False) as (base, _):
        for _ in range(2):  # a miss (compute, insert), then a hit
            run = subprocess.run(
                [sys.executable, str(script)], cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=60
            )
            assert run.returncode == 0, run.stderr
            outputs.append(run.stdout)
            files = sorted((tmp_path / ".feature_cache").rglob("*.parquet"))
            assert len(files) == 1
            if len(outputs) == 1:
                written = files[0].stat().st_mtime_ns
        text = httpx.get(f"{base}{API}/metrics", timeout=30).text
    assert files[0].stat().st_mtime_ns == written  # the second run read the file, it did not write it again
    frame = "8 rows: ['symbol', 'close', 'return_5']"
    assert outputs == [f"{frame} computed\n", f"{frame} read from the cache\n"]
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    aapl = (("symbol", "AAPL"),)
    assert samples.get((MISSES.name, aapl)) == 1
    assert samples.get((HITS.name, aapl)) == 1
    assert samples.get((f"{MANIFEST_INSERT_LATENCY.name}_count", (("backend", "duckdb"), *aapl))) == 1
    assert samples.get((HIT_RATIO.name, ())) == 0.5
