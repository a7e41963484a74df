"""`python -m slos report` against a fake Prometheus HTTP API on loopback: the error paths, "no data", the status
and the escaping of label values. tests/slos/test_report_prometheus.py runs it against the real binary."""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from slos.__main__ import main as slos_main
from slos.loader import DEFAULT_SPECS_DIR, load_specs
from slos.models import duration_seconds
from slos.records import BUDGET_REMAINING_RECORD, OBJECTIVE_RECORD, burn_rate_record
from slos.report import DEFAULT_POINTS, PAGE_NAME, main
from slos.report_data import BurnWindow, SloReport
from slos.report_html import page as html_page
from slos.report_prometheus import Series, TimeRange
from slos.windows import window_pairs

Answer = Callable[[str], tuple[int, bytes]]
BUDGETED = [slo.name for slo in load_specs(DEFAULT_SPECS_DIR).slos if slo.budgeted]
HOSTILE = '<script>alert("x")</script> & $\\alpha$'


def matrix(*series: tuple[dict[str, str], list[float]]) -> bytes:
    """A query_range answer: each series' labels and values, one point a minute up to now."""
    now = time.time()
    result = [
        {"metric": labels, "values": [[now - 60 * (len(values) - i), str(v)] for i, v in enumerate(values)]}
        for labels, values in series
    ]
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}}).encode()


def empty(query: str) -> tuple[int, bytes]:
    return 200, matrix()


class _Handler(BaseHTTPRequestHandler):
    answer: Answer
    queries: list[str]
    params: list[dict[str, str]]

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        params = {name: values[0] for name, values in urllib.parse.parse_qs(url.query).items()}
        query = params.get("query", "")
        self.queries.append(query)
        self.params.append(params)
        status, body = self.answer(query) if url.path == "/api/v1/query_range" else (404, b"not found")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass(frozen=True)
class Fake:
    """A running fake API: its URL, and the query and the whole query string of each request it answered."""

    url: str
    queries: list[str]
    params: list[dict[str, str]]


Start = Callable[[Answer], Fake]


@pytest.fixture
def fake_prometheus() -> Iterator[Start]:
    """Start a fake API on loopback answering with `answer(query)`."""
    servers: list[ThreadingHTTPServer] = []

    def start(answer: Answer) -> Fake:
        fake = Fake("", [], [])
        attributes = {"answer": staticmethod(answer), "queries": fake.queries, "params": fake.params}
        server = ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_Handler,), attributes))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return Fake(f"http://127.0.0.1:{server.server_address[1]}", fake.queries, fake.params)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def report(url: str, out: Path, *extra: str) -> int:
    return main(["--prometheus", url, "--out", str(out), "--range", "1h", "--step", "1m", *extra])


def test_an_unreachable_prometheus_is_one_line_and_exit_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert report(f"http://127.0.0.1:{port}", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot reach Prometheus at http://127.0.0.1:{port}" in err
    assert not (tmp_path / "out" / PAGE_NAME).exists()


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:9090", "127.0.0.1:9090", "http://", "http://host:port"])
def test_a_bad_url_is_refused_in_one_line(url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report(url, tmp_path) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("slos report: bad Prometheus URL")


def test_an_out_dir_that_cannot_be_written_is_refused_before_any_query(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_prometheus: Start
) -> None:
    fake = fake_prometheus(empty)
    url, queries = fake.url, fake.queries
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert report(url, blocker / "out") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot write to --out {blocker / 'out'}" in err
    assert queries == []


def test_an_api_error_is_one_line_naming_the_query(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_prometheus: Start
) -> None:
    error = {"status": "error", "errorType": "bad_data", "error": "exceeded maximum resolution of 11,000 points"}
    url = fake_prometheus(lambda query: (400, json.dumps(error).encode())).url
    assert report(url, tmp_path) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad_data: exceeded maximum resolution" in err
    assert not (tmp_path / PAGE_NAME).exists()


def test_a_server_that_is_not_prometheus_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_prometheus: Start
) -> None:
    url = fake_prometheus(lambda query: (200, b"<html>a login page</html>")).url
    assert report(url, tmp_path) == 2
    assert "did not answer with the Prometheus API's JSON" in capsys.readouterr().err


def test_slos_without_data_get_a_chart_that_says_no_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_prometheus: Start
) -> None:
    fake = fake_prometheus(empty)
    url, queries = fake.url, fake.queries
    assert report(url, tmp_path) == 0
    out = capsys.readouterr().out
    for index, name in enumerate(BUDGETED, 1):
        assert f"[{index}/{len(BUDGETED)}] {name}: no data" in out
    page = (tmp_path / PAGE_NAME).read_text()
    assert page.count("<svg") == len(BUDGETED)
    assert page.count("no data: no error budget remaining recorded") == len(BUDGETED)
    assert f'{BUDGET_REMAINING_RECORD}{{slo="{BUDGETED[0]}"}}' in queries


def _hostile(query: str) -> tuple[int, bytes]:
    """Two jobs per record, one with a label value that is markup, an entity and matplotlib math."""
    jobs = [({"job": "featurestore"}, [1.0, 0.9, 0.8]), ({"job": HOSTILE}, [0.5, 0.4, 0.3])]
    if query.startswith(OBJECTIVE_RECORD):
        return 200, matrix(({"slo": "x"}, [0.999]))
    return 200, matrix(*jobs)


def test_label_values_are_escaped_in_the_page_and_its_charts(tmp_path: Path, fake_prometheus: Start) -> None:
    url = fake_prometheus(_hostile).url
    assert report(url, tmp_path) == 0
    page = (tmp_path / PAGE_NAME).read_text()
    assert "<script" not in page
    # in the charts' legends, as SVG text; the `$` stayed text, not matplotlib's math
    legend = re.escape('remaining (job=&lt;script&gt;alert("x")&lt;/script&gt; &amp; $\\alpha$)')
    assert re.search(rf"<text [^>]*>{legend}</text>", page)


def test_names_in_the_page_itself_are_html_escaped() -> None:
    hostile = SloReport(HOSTILE, 0.999, "30d", None, (), ())
    text = html_page([hostile], ["<svg></svg>"], TimeRange(0, 3600, 60), f"http://p/?q={HOSTILE}")
    assert "<script" not in text
    assert text.count("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; $\\alpha$") == 5


def test_the_page_loads_nothing_from_the_network(tmp_path: Path, fake_prometheus: Start) -> None:
    url = fake_prometheus(_hostile).url
    assert report(url, tmp_path) == 0
    page = (tmp_path / PAGE_NAME).read_text()
    assert re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|url\((?!#)|<link|@import""", page) == []


def _burn(factor: float, long: float, short: float) -> BurnWindow:
    pair = next(pair for pair in window_pairs("30d") if pair.factor == factor)
    return BurnWindow(pair, (Series((), ((0.0, long),)),), (Series((), ((0.0, short),)),))


def _slo(budget: float, *burns: BurnWindow) -> SloReport:
    return SloReport("availability", 0.999, "30d", 0.999, (Series((), ((0.0, budget),)),), burns)


@pytest.mark.parametrize(
    ("slo", "status"),
    [
        (_slo(0.5, _burn(14.4, 20, 3)), "healthy"),
        (_slo(0.5, _burn(14.4, 20, 15), _burn(6, 7, 7)), "burning (page_fast, page_slow)"),
        (_slo(0.0, _burn(14.4, 20, 15)), "budget exhausted"),
        (SloReport("availability", 0.999, "30d", None, (), ()), "no data"),
    ],
    ids=[
        "a pair over its factor on one window only is healthy",
        "pairs over on both windows burn",
        "a spent budget is exhausted",
        "no series is no data",
    ],
)
def test_the_status_says_what_the_numbers_mean(slo: SloReport, status: str) -> None:
    assert slo.status == status


def test_python_m_slos_names_its_commands_and_report_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert slos_main(["--help"]) == 0
    assert "report" in capsys.readouterr().out
    assert slos_main(["nonsense"]) == 2
    with pytest.raises(SystemExit):
        slos_main(["report", "--help"])
    text = capsys.readouterr().out
    assert "--prometheus URL" in text and "exit codes" in text


def test_the_report_queries_the_burn_rate_of_each_alert_pair(tmp_path: Path, fake_prometheus: Start) -> None:
    fake = fake_prometheus(empty)
    url, queries = fake.url, fake.queries
    assert report(url, tmp_path) == 0
    for pair in window_pairs("30d"):
        assert f'{burn_rate_record(pair.long)}{{slo="{BUDGETED[0]}"}}' in queries


def test_the_default_range_is_the_longest_period_of_the_slos(tmp_path: Path, fake_prometheus: Start) -> None:
    fake = fake_prometheus(empty)
    assert main(["--prometheus", fake.url, "--out", str(tmp_path)]) == 0
    periods = [slo.objective.period for slo in load_specs(DEFAULT_SPECS_DIR).slos if slo.budgeted]
    longest = max(duration_seconds(period) for period in periods)
    first = fake.params[0]
    assert float(first["end"]) - float(first["start"]) == pytest.approx(longest, abs=0.01)
    assert float(first["step"]) == longest // DEFAULT_POINTS


def test_without_matplotlib_the_report_names_the_extra_to_install(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.delitem(sys.modules, "slos.report_charts", raising=False)
    assert report("http://127.0.0.1:9", tmp_path) == 2
    assert capsys.readouterr().err == "slos report: needs matplotlib: pip install 'featurestore-monitoring[report]'\n"


def test_a_step_too_fine_for_prometheus_is_refused_before_any_query(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_prometheus: Start
) -> None:
    fake = fake_prometheus(empty)
    assert main(["--prometheus", fake.url, "--out", str(tmp_path), "--range", "30d", "--step", "1m"]) == 2
    assert capsys.readouterr().err == (
        "slos report: --range / --step asks for 43,200 points per series, Prometheus answers at most 11,000: "
        "give a --step of 236s or more\n"
    )
    assert fake.queries == []


def test_end_fixes_the_range_so_a_weekly_report_can_be_made_again(tmp_path: Path, fake_prometheus: Start) -> None:
    fake = fake_prometheus(empty)
    end = "2026-11-30T00:00:00+01:00"
    assert report(fake.url, tmp_path, "--end", end, "--range", "7d") == 0
    assert {(p["start"], p["end"]) for p in fake.params} == {("1795388400.000", "1795993200.000")}
    text = (tmp_path / PAGE_NAME).read_text()
    assert "From 2026-11-22 23:00" in text and "to 2026-11-29 23:00" in text


@pytest.mark.parametrize("end", ["2026-11-30T00:00:00", "yesterday"])
def test_an_end_without_offset_or_not_a_time_is_refused(end: str, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        report("http://127.0.0.1:9", tmp_path, "--end", end)
    assert exit_info.value.code == 2
