"""The README's short "Errors and limits" section links to the long one, whose quoted messages exist in the code."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LONG_DOC = REPO / "docs" / "errors_and_limits.md"
SOURCE = "\n".join(path.read_text() for path in sorted((REPO / "gemo_clap_hf").rglob("*.py")))
PLACEHOLDER = re.compile(r"\bN\b|…|\.\.\.|<[a-z_-]+>|\[\.\.\.\]")


def _section(text: str, heading: str) -> str:
    return text.split(heading, 1)[1].split("\n#", 1)[0]


def test_readme_has_a_short_errors_section_linking_to_the_long_one():
    section = _section((REPO / "README.md").read_text(), "## Errors and limits")
    assert "(docs/errors_and_limits.md)" in section and LONG_DOC.is_file()
    assert len(section.split()) < 350
    for topic in (
        "GEmoClapAudioError",
        "speaker leakage",
        "--overwrite_output_dir",
        "complete* checkpoint",
        "use_safetensors=False",
        "HF_TOKEN",
        "max_length_s",
    ):
        assert topic in section, topic


def _pieces(message: str) -> list[str]:
    """The literal parts of a quoted message (placeholders such as N or … stand for values)."""
    return [piece.strip(" ,") for piece in PLACEHOLDER.split(message) if len(piece.strip(" ,")) > 3]


def test_every_message_in_the_audio_error_table_is_raised_by_the_code():
    table = _section(LONG_DOC.read_text(), "### Audio errors")
    quoted = [
        message
        for row in table.splitlines()
        if row.startswith("| `")
        for message in re.findall(r"`([^`]+)`", row.split("|")[1])
    ]
    assert len(quoted) >= 10
    for message in quoted:
        for piece in _pieces(message):
            assert piece in SOURCE, f"the docs quote {message!r}, but the code never says {piece!r}"
