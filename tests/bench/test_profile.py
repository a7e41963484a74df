"""`make profile`: a real py-spy run writes a flame graph, and the summary reads the functions inside a publish."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.profile import LOOKUP_ROOT_FRAME, top_frames
from tests.conftest import REPO


def _frame(name: str, y: int, x: int, w: int) -> str:
    rect = f'<rect x="0%" y="{y}" width="1%" height="15" fg:x="{x}" fg:w="{w}"/>'
    return f"<g><title>{name} ({w} samples, 1.00%)</title>{rect}</g>"


def test_the_summary_counts_only_what_runs_inside_a_publish_by_the_samples_each_function_spends_itself() -> None:
    svg = "".join(
        [
            _frame("main (bench/profile.py:70)", 0, 0, 100),
            _frame("FeatureStore.publish (featurestore/store.py:193)", 16, 0, 80),
            _frame("FrameFiles.write (featurestore/files.py:190)", 32, 0, 50),
            _frame("_publish_at (featurestore/files.py:74)", 48, 0, 30),
            _frame("_publish_at (featurestore/files.py:68)", 48, 30, 10),
            _frame("PostgresManifest.insert (featurestore/manifest/postgres.py:168)", 32, 50, 30),
            _frame("Queue.get (queue.py:180)", 16, 80, 20),  # another stack: not inside a publish
        ]
    )
    assert top_frames(svg, 3) == [
        ("_publish_at (featurestore/files.py)", 40),
        ("PostgresManifest.insert (featurestore/manifest/postgres.py)", 30),
        ("FrameFiles.write (featurestore/files.py)", 10),
    ]


def test_make_profile_writes_a_flame_graph_and_prints_where_a_publish_spends_its_samples(tmp_path: Path) -> None:
    assert (Path(sys.executable).parent / "py-spy").exists(), "py-spy is a dev dependency: make install"
    result = subprocess.run(
        [sys.executable, "-m", "bench.profile", "--backend", "duckdb", "--publishes", "300", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    svgs = list(tmp_path.glob("publish-duckdb-*.svg"))
    assert len(svgs) == 1 and "FeatureStore.publish" in svgs[0].read_text()
    assert "client CPU" in result.stdout
    assert "(featurestore/" in result.stdout.split("inside FeatureStore.publish", 1)[1]


def test_the_summary_of_a_lookup_profile_counts_what_runs_inside_get_or_compute() -> None:
    svg = "".join(
        [
            _frame("main (bench/profile.py:70)", 0, 0, 100),
            _frame("FeatureStore.get_or_compute (featurestore/store.py:160)", 16, 0, 60),
            _frame("FrameFiles.read_verified (featurestore/files.py:300)", 32, 0, 40),
            _frame("FeatureStore.publish (featurestore/store.py:193)", 16, 60, 40),  # not inside a lookup
        ]
    )
    assert top_frames(svg, 3, LOOKUP_ROOT_FRAME) == [("FrameFiles.read_verified (featurestore/files.py)", 40)]


def test_make_profile_with_hits_writes_a_flame_graph_of_lookups_and_prints_where_they_spend_their_samples(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.profile", "--backend", "duckdb", "--hits", "0.9", "--publishes", "300",
         "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    svgs = list(tmp_path.glob("lookups-duckdb-*.svg"))
    assert len(svgs) == 1 and "FeatureStore.get_or_compute" in svgs[0].read_text()
    assert "ms per lookup" in result.stdout
    assert "(featurestore/" in result.stdout.split("inside FeatureStore.get_or_compute", 1)[1]
