"""`python -m generators`: drift check, atomic writes, refusal to touch what it did not write, the test profile."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from generators.__main__ import DEFAULT_OUT, main
from generators.output import MARKER, read_tree

INVALID = Path(__file__).resolve().parents[1] / "slos" / "invalid"


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        path.relative_to(folder).as_posix(): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_the_committed_rendered_folder_is_what_the_specs_generate(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--check"]) == 0, capsys.readouterr().err


def test_check_fails_naming_each_file_that_drifted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "rendered"
    shutil.copytree(DEFAULT_OUT, out)
    rules = out / "prometheus" / "rules" / "featurestore.yml"
    rules.write_text(rules.read_text().replace(">= 5 and on (", ">= 6 and on ("))
    (out / "stray.txt").write_text("hand-made\n")
    (out / "kubernetes" / "service.yaml").unlink()
    assert main(["--check", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "prometheus/rules/featurestore.yml: differs" in err and "-        expr: " in err
    assert "stray.txt: in " in err
    assert "kubernetes/service.yaml: missing" in err


def test_a_failing_render_leaves_the_output_folder_byte_for_byte_untouched(tmp_path: Path) -> None:
    specs, out = tmp_path / "specs", tmp_path / "rendered"
    specs.mkdir()
    shutil.copy(INVALID / "threshold_not_a_bucket.yaml", specs / "featurestore.yaml")
    shutil.copytree(DEFAULT_OUT, out)
    before = snapshot(out)
    assert main(["--specs", str(specs), "--out", str(out)]) == 2
    assert snapshot(out) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["rendered", "specs"]  # no staging folder left


def test_it_refuses_to_replace_a_folder_it_did_not_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("mine\n")
    before = snapshot(tmp_path)
    assert main(["--out", str(tmp_path)]) == 1
    assert "was not written by the generators" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def test_a_second_render_replaces_the_first_and_gives_the_same_bytes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["--out", str(out)]) == 0
    first = read_tree(out)
    (out / "leftover.txt").write_text("from an older render\n")
    assert main(["--out", str(out)]) == 0
    assert read_tree(out) == first
    assert first["README.md"].startswith(MARKER)


def test_the_test_profile_renders_elsewhere_but_never_into_rendered(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--profile", "test"])
    assert caught.value.code == 2
    assert main(["--profile", "test", "--out", str(tmp_path / "fast")]) == 0
    rules = (tmp_path / "fast" / "prometheus" / "rules" / "featurestore.yml").read_text()
    assert "rate(manifest_insert_latency_ms_bucket[20s])" in rules and "for: 10s" in rules
    assert "record: slo:sli_error:ratio_rate5m" in rules  # names keep the production windows
    assert "never commit" in rules.splitlines()[1]


def test_the_help_documents_the_test_profile_scaling(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "5m -> 20s" in text and "10m -> 10s" in text and "every 1s" in text


def test_every_rendered_yaml_file_names_its_spec_and_the_command_that_regenerates_it() -> None:
    for relative, text in read_tree(DEFAULT_OUT).items():
        if relative.endswith((".yml", ".yaml")):
            assert text.startswith("# Generated from "), relative
            assert "slos/specs/featurestore.yaml" in text.splitlines()[0], relative
            assert "make render" in text.splitlines()[0] or "python -m generators" in text.splitlines()[0], relative


def test_a_render_names_the_files_it_changed_or_says_none_did(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rendered"
    shutil.copytree(DEFAULT_OUT, out)
    before = snapshot(out)
    assert main(["--out", str(out)]) == 0
    assert "is unchanged, all " in capsys.readouterr().out
    assert snapshot(out) == before  # nothing rewritten either
    rules = out / "prometheus" / "rules" / "featurestore.yml"
    rules.write_text(rules.read_text().replace(">= 5 and on (", ">= 6 and on ("))
    (out / "stray.txt").write_text("hand-made\n")
    assert main(["--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("generators: 2 of ") and "files changed in" in lines[0]
    assert lines[1:] == ["  prometheus/rules/featurestore.yml", "  stray.txt (removed)"]
    assert read_tree(out) == read_tree(DEFAULT_OUT)
