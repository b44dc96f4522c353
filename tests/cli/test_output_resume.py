"""Resuming `predict -o out.csv` (and `--segments`) when file names hold what CSV must quote: a newline, a comma and
a double quote (`we"ird,\\nname.wav`). The CSV output is read back with the csv module, so such a name is one field
of one row, and the rerun skips the file instead of refusing the output.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

from gemo_clap_hf.cli.results import split_records
from tests.helpers.tiny_models import random_clip
from tests.inference.test_predict_bulk import read_csv, run_cli

RATE = 16000
ODD_NAME = 'we"ird,\nname.wav'


@pytest.fixture(scope="module")
def odd_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("odd_names")
    sf.write(folder / ODD_NAME, random_clip(1.2, seed=5), RATE)
    sf.write(folder / "plain.wav", random_clip(4.5, seed=6), RATE)
    return folder


def test_split_records_keeps_quoted_newlines_in_one_record():
    data = b'file,emotion\n"we""ird,\nname.wav",happy\nplain.wav,sad\n"torn,\nna'
    records, tail = split_records(data, "csv")
    assert records == [b"file,emotion", b'"we""ird,\nname.wav",happy', b"plain.wav,sad"]
    assert tail == b'"torn,\nna'  # an unfinished quoted field is the torn tail, not a record
    assert split_records(b'{"file": "a\\nb"}\n{"fi', "jsonl") == ([b'{"file": "a\\nb"}'], b'{"fi')


@pytest.mark.parametrize("segments", [False, True], ids=["files", "segments"])
def test_csv_rerun_resumes_a_file_name_with_a_newline_quote_and_comma(
    capsys, tiny_checkpoint, odd_folder, tmp_path, segments
):
    output = tmp_path / "out.csv"
    extra = ["--segments", "--window", "2", "--hop", "1"] if segments else []
    code, _, err = run_cli(capsys, "predict", "--model", tiny_checkpoint, odd_folder, "-o", output, "-q", *extra)
    assert code == 0 and "classified 2 of 2 file(s)" in err
    rows = read_csv(output)
    assert {row["file"] for row in rows} == {str(odd_folder / ODD_NAME), str(odd_folder / "plain.wav")}
    before = output.read_bytes()
    code, _, err = run_cli(capsys, "predict", "--model", tiny_checkpoint, odd_folder, "-o", output, "-q", *extra)
    assert code == 0, err
    assert "classified 0 of 2 file(s) (2 already in" in err and output.read_bytes() == before

    # Killed inside the odd name's quoted field (of its last row): the rerun cuts the torn row (with --segments,
    # that file's rows) and scores the file again, once.
    odd_rows = [i for i, row in enumerate(rows) if row["file"].endswith(ODD_NAME)]
    if odd_rows[-1] != len(rows) - 1:  # put the odd file last: write the plain file first, then the odd one
        output.unlink()
        run_cli(capsys, "predict", "--model", tiny_checkpoint, odd_folder / "plain.wav", "-o", output, "-q", *extra)
        run_cli(capsys, "predict", "--model", tiny_checkpoint, odd_folder, "-o", output, "-q", *extra)
        before, rows = output.read_bytes(), read_csv(output)
    cut = before.rindex(b"name.wav")
    output.write_bytes(before[:cut])
    code, _, err = run_cli(capsys, "predict", "--model", tiny_checkpoint, odd_folder, "-o", output, "-q", *extra)
    assert code == 0 and "classified 1 of 2 file(s) (1 already in" in err, err
    assert read_csv(output) == rows


def test_a_foreign_line_names_the_line_and_does_not_blame_the_columns(capsys, tiny_checkpoint, odd_folder, tmp_path):
    output = tmp_path / "out.csv"
    run_cli(capsys, "predict", "--model", tiny_checkpoint, odd_folder / "plain.wav", "-o", output, "-q")
    header, row = output.read_text().splitlines()
    output.write_text(f"{header}\nsomething else\n{row}\n")
    code, _, err = run_cli(capsys, "predict", "--model", tiny_checkpoint, odd_folder, "-o", output, "-q")
    assert code == 2 and "cannot be resumed: line 2 is not a row" in err and "'something else'" in err
    output.write_text("path,label\n")
    code, _, err = run_cli(capsys, "predict", "--model", tiny_checkpoint, odd_folder, "-o", output, "-q")
    assert code == 2 and "written for the columns ['path', 'label']" in err
