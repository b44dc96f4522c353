"""The corpus registry and the evaluation protocol: every corpus name resolves, the facts agree with each other and
with what the readers produce, folds are chosen per corpus, and unknown speakers never count as leakage."""

from __future__ import annotations

import inspect
import logging
from collections import Counter

import numpy as np
import pytest

from benchmarks import settings
from gemo_clap_hf.data import CORPORA, FOUR_CLASS_LABELS, available_corpora, corpus_spec, load_corpus
from gemo_clap_hf.data.protocol import (
    assign_speaker_folds,
    available_folds,
    check_speaker_leakage,
    fold_scheme,
    protocol_sentence,
    split_by_fold,
    uses_own_folds,
)
from gemo_clap_hf.data.synthetic import speaker_codes
from gemo_clap_hf.training import TrainingInputError, cross_validation_folds, prepare_data
from gemo_clap_hf.training.arguments import DataArguments
from tests.helpers.corpus_fixtures import make_iemocap_tree, make_manifest, make_msp_podcast_tree

NAMES = ("iemocap", "ravdess", "crema_d", "msp_podcast", "manifest", "emobox", "synthetic")

# ---------------------------------------------------------------- the registry


def test_every_documented_name_resolves_and_only_those():
    assert available_corpora() == sorted(NAMES)
    for name in NAMES:
        spec = corpus_spec(name)
        assert spec is CORPORA[name]
        assert list(inspect.signature(spec.reader).parameters)[0] == "data_dir"
    assert corpus_spec("CREMA-D") is CORPORA["crema_d"] and corpus_spec("MSP_Podcast") is CORPORA["msp_podcast"]
    with pytest.raises(ValueError, match=r"unknown corpus 'timit'; choose one of \['crema_d', 'emobox', 'iemocap'"):
        corpus_spec("timit")


def test_the_facts_are_consistent():
    for name, spec in CORPORA.items():
        assert spec.folds in ("session", "split", "speaker", "column"), name
        assert spec.language is None or (len(spec.language) == 2 and spec.language.islower()), name
        assert spec.title and len({other.title for other in CORPORA.values()}) == len(CORPORA)
        if spec.label_map is not None:
            # Every default label set is the paper's 4 classes, each kept under its own name.
            assert {target for target in spec.label_map.values() if target} == set(FOUR_CLASS_LABELS), name
            assert all(spec.label_map[label] == label for label in FOUR_CLASS_LABELS), name
        if spec.class_counts is not None:
            assert list(spec.class_counts) == [label for label in FOUR_CLASS_LABELS], name
            assert all(isinstance(count, int) and count > 0 for count in spec.class_counts.values()), name
    assert sum(CORPORA["iemocap"].class_counts.values()) == 5531  # the 4-class set of the full release
    assert CORPORA["iemocap"].label_map["excited"] == "happy" and CORPORA["ravdess"].label_map["calm"] == "neutral"
    # The synthetic corpus is read by the IEMOCAP reader with IEMOCAP's label set and protocol.
    synthetic, iemocap = CORPORA["synthetic"], CORPORA["iemocap"]
    assert (synthetic.reader, synthetic.label_map, synthetic.folds) == (iemocap.reader, iemocap.label_map, "session")
    with pytest.raises(TypeError):
        CORPORA["iemocap"].class_counts["happy"] = 1  # shared facts are read-only


def test_synthetic_class_shares_and_the_benchmark_use_the_registry_counts():
    counts = CORPORA["iemocap"].class_counts
    total = sum(counts.values())
    # At the release's size, a speaker's codes reproduce IEMOCAP's 4-class counts exactly (exc and hap are happy).
    codes = Counter(speaker_codes(np.random.default_rng(0), total))
    merged = {"neutral": codes["neu"], "happy": codes["hap"] + codes["exc"], "sad": codes["sad"], "angry": codes["ang"]}
    assert merged == dict(counts)
    # At any size each class is within one utterance of its share.
    codes = Counter(speaker_codes(np.random.default_rng(1), 120))
    assert abs(codes["hap"] + codes["exc"] - 120 * counts["happy"] / total) < 1
    assert abs(codes["ang"] - 120 * counts["angry"] / total) < 1
    assert settings.IEMOCAP_CLASS_COUNTS is counts and total == settings.NUM_CLIPS


def test_the_registry_label_set_is_what_load_corpus_applies(tmp_path):
    release = make_iemocap_tree(tmp_path, sessions=(1,), utterances_per_speaker=5)
    assert Counter(load_corpus("iemocap", release)["emotion"]) == {"neutral": 2, "happy": 4, "sad": 2, "angry": 2}
    # The synthetic name reads the same tree through the same entry.
    assert load_corpus("synthetic", release).to_dict() == load_corpus("iemocap", release).to_dict()


# ---------------------------------------------------------------- the protocol


def test_fold_choice_per_corpus():
    assert {name for name in NAMES if uses_own_folds(name)} == {"iemocap", "synthetic", "manifest"}
    assert fold_scheme("iemocap") == fold_scheme("synthetic") == "leave-one-session-out"
    assert fold_scheme("manifest") == "the manifest's folds"
    assert fold_scheme("ravdess", num_folds=4) == "speaker-grouped 4-fold"


def test_protocol_sentences():
    assert protocol_sentence("iemocap", 5) == (
        "leave-one-session-out with session 5 held out for test; the test fold also served as the evaluation set, "
        "without a separate validation fold; speaker-independent, no speaker is in both training and test"
    )
    assert protocol_sentence("crema_d", 1, eval_fold=2, num_folds=5).startswith(
        "speaker-grouped 5-fold split with fold 1 held out for test; fold 2 served as the validation set;"
    )
    assert protocol_sentence("msp_podcast", "Test1", "Development", unknown_speakers=3).endswith(
        "no known speaker is in both training and test (3 utterances have no speaker id and could not be checked)"
    )


def test_available_folds_in_natural_order(tmp_path):
    rows = [
        {"path": f"{n}.wav", "emotion": "sad", "gender": "f", "speaker": f"s{n}", "fold": fold}
        for n, fold in enumerate(["10", "2", "b", "1", "", "a"])
    ]
    assert available_folds(load_corpus("manifest", make_manifest(tmp_path / "m.csv", rows))) == [
        "1",
        "2",
        "10",
        "a",
        "b",
    ]


MSP_ROWS = [
    {"FileName": f"{n}.wav", "EmoClass": "ANSH"[n % 4], "SpkrID": speaker, "Gender": gender, "Split_Set": split}
    for n, (speaker, gender, split) in enumerate(
        [("1", "Female", "Train")] * 4
        + [("2", "Male", "Train")] * 4
        + [("Unknown", "Male", "Train")] * 4
        + [("3", "Female", "Development")] * 4
        + [("Unknown", "Female", "Development")] * 4
        + [("4", "Male", "Test1")] * 4
        + [("Unknown", "Female", "Test1")] * 4
    )
]


def test_unknown_speakers_are_left_out_of_the_leakage_check_and_named_in_the_card(tmp_path, caplog):
    data_dir = make_msp_podcast_tree(tmp_path, MSP_ROWS)
    corpus = load_corpus("msp_podcast", data_dir)
    train, test = split_by_fold(corpus, "Test1")
    with caplog.at_level(logging.WARNING, logger="gemo_clap_hf"):
        check_speaker_leakage(train, test)
    assert "12 utterances have no speaker" in caplog.text
    data = prepare_data(
        DataArguments(dataset="msp_podcast", data_dir=str(data_dir), test_fold="Test1", eval_fold="Development"), seed=0
    )
    assert (len(data.train), len(data.eval), len(data.test)) == (12, 8, 8)
    assert data.protocol == (
        "the corpus' fold 'Test1' held out for test; fold Development served as the validation set; "
        "speaker-independent, no known speaker is in both training and test (12 utterances have no speaker id and "
        "could not be checked)"
    )
    # Speaker folds cannot place utterances of unknown speakers: refused, with the fix.
    with pytest.raises(ValueError, match=r"12 utterances have no known speaker.*Split_Set"):
        assign_speaker_folds(corpus, k=2)
    with pytest.raises(TrainingInputError, match=r"--num_folds 2: 12 utterances have no known speaker"):
        prepare_data(DataArguments(dataset="msp_podcast", data_dir=str(data_dir), test_fold="1", num_folds=2), seed=0)


def test_cross_validation_uses_sessions_for_session_corpora(tmp_path):
    release = make_iemocap_tree(tmp_path, sessions=(1, 2, 3), utterances_per_speaker=4)
    for name in ("iemocap", "synthetic"):
        data_args, folds = cross_validation_folds(DataArguments(dataset=name, data_dir=str(release)))
        assert folds == ["1", "2", "3"] and not data_args.num_folds
