"""The variant comparison's report (`training_scripts/variant_report.py`): a rewrite (`--report-only`, or the end of
a resumed run) keeps the discussion written by hand below its marker, once, and regenerates everything above it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "training_scripts" / "variant_report.py"


def _report_module(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # it imports its sibling compare_variants, as when run as a script
    spec = importlib.util.spec_from_file_location("variant_report", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_rewritten_report_keeps_the_discussion_below_the_marker_once(tmp_path, monkeypatch):
    report = _report_module(monkeypatch)
    out = tmp_path / "variants.md"
    discussion = f"{report.DISCUSSION_MARKER}\n\n## What the data suggest\n\nWritten by hand.\n"
    out.write_text("# an older report\n\nold figures\n\n" + discussion, encoding="utf-8")
    for _ in range(2):
        report.write_report(tmp_path / "runs", str(out), "the command", "the machine", None)
        text = out.read_text(encoding="utf-8")
        assert "old figures" not in text and "0 of 430 runs finished" in text
        assert text.count(report.DISCUSSION_MARKER) == 1 and text.endswith(discussion)
    out.write_text("# a report without a discussion\n", encoding="utf-8")
    report.write_report(tmp_path / "runs", str(out), "the command", "the machine", None)
    assert report.DISCUSSION_MARKER not in out.read_text(encoding="utf-8")
