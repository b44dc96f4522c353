"""The embedded default corpus: deterministic synthetic emotional speech in the IEMOCAP layout.

`generate_corpus(out_dir)` writes `out_dir/IEMOCAP_full_release/` so that the IEMOCAP reader
(`load_corpus("iemocap", out_dir)`) and the leave-one-session-out protocol run on it unchanged.
See `CORPUS_CARD` for the design; the signal generation lives in `speech.py`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from ..corpora import CORPORA
from .speech import Style, Voice, blend_styles, perturb_style, synthesize_utterance

# The class shares follow IEMOCAP's 4-class counts in the corpus registry; 1041 of its happy utterances are `exc`.
IEMOCAP_COUNTS = CORPORA["iemocap"].class_counts
EXCITED_SHARE_OF_HAPPY = 1041 / IEMOCAP_COUNTS["happy"]


def _class_shares(counts) -> str:
    """'neutral/happy/sad/angry in IEMOCAP's 4-class shares (1708/... of 5531, i.e. 31/... %)' for the card."""
    total = sum(counts.values())
    percents = "/".join(f"{100 * count / total:.0f}" for count in counts.values())
    return (
        f"{'/'.join(counts)} in IEMOCAP's 4-class shares ({'/'.join(map(str, counts.values()))} of {total}, "
        f"i.e. {percents} %)"
    )


CORPUS_CARD = f"""\
Synthetic gender-confounded emotional speech (GEmo-CLAP embedded default corpus)

Layout: IEMOCAP_full_release/Session{{1..5}}/sentences/wav/<dialog>/<utt>.wav (16 kHz mono PCM_16) with
labels in Session{{n}}/dialog/EmoEvaluation/<dialog>.txt in IEMOCAP's line format (evaluator lines
included). 5 sessions x (1 female + 1 male speaker); both speakers appear in every dialog; the
speaker's gender is the letter starting the utterance id's last part (..._F003 / ..._M003).

Speakers: base pitch 185-235 Hz (female) and 98-132 Hz (male), spread over the sessions; formant
scale about 1.0 (male) and 1.15 (female), +-5 % per speaker.
Labels: per speaker, {_class_shares(IEMOCAP_COUNTS)};
about {100 * EXCITED_SHARE_OF_HAPPY:.0f} % of happy is coded `exc` and merged back by the reader, as in IEMOCAP.
One extra utterance per 40 (rounded up) per speaker is coded `fru` (neutral-angry blend) or `xxx`
(neutral-happy blend); the 4-class reader drops these.
Durations: log-normal, median 3 s, sigma 0.5 (about 83 % within 1.5-6 s), clipped to 0.8-12 s;
independent of the emotion.
Sound: Rosenberg glottal pulses at a gliding pitch (declination, per-syllable accents, jitter),
syllable envelopes at 3-6 syllables/s in phrases with pauses, a 4-formant cascade with per-syllable
vowel targets, aspiration and consonant-like noise bursts, background noise at a per-session level.
Emotion acts relative to the speaker (pitch level x1.0 / x1.25 / x0.9 / x1.38 for neutral / happy /
sad / angry), plus pitch range, syllable rate, speech level over a fixed noise floor (SNR), glottal
open quotient and spectral tilt (angry pressed and bright, sad breathy and dark), roughness (angry
jitter, shimmer, subharmonics) and formant shifts (smiled happy speech, open-mouthed angry speech).
Every utterance's style is randomly perturbed so the classes overlap. Female neutral pitch lies
above male angry pitch: absolute pitch confounds gender and emotion, as in real speech.
Deterministic: each speaker's plan and each utterance's audio come from RNGs seeded by (seed, ids).
Options (the defaults give the corpus above): setting "confounded" (above) or "control" (the same ten
base pitches dealt to the speakers independently of gender: female ranks 1, 4, 5, 8, 9 of the ten, male
ranks 2, 3, 6, 7, 10; formant scale still follows gender), so gender says nothing about a speaker's
pitch baseline; cue_scale moves every emotion cue except the pitch level towards neutral (1 = as above,
smaller = emotion carried more by pitch relative to the speaker); spread scales the per-utterance
perturbation (1 = as above, larger = more overlap between the emotions).
"""

RELEASE_DIR = "IEMOCAP_full_release"
MANIFEST_NAME = "synthetic_corpus.json"
SESSIONS = (1, 2, 3, 4, 5)
GENDERS = ("F", "M")
DROPPED_PER_KEPT = 40  # one fru/xxx utterance per this many kept ones, per speaker (rounded up)
DURATION_MEDIAN, DURATION_SIGMA, DURATION_BOUNDS = 3.0, 0.5, (0.8, 12.0)

EMOTION_STYLES = {
    "neutral": Style(1.00, 2.0, 4.0, -26.0, 0.60, 0.00, 0.006, 0.03, 0.00, 0.05),
    "happy": Style(1.25, 4.5, 4.8, -23.0, 0.55, -0.25, 0.008, 0.04, 0.00, 0.06, f1_scale=1.05, f2_scale=1.10),
    "sad": Style(0.90, 1.0, 3.0, -30.0, 0.80, 0.50, 0.006, 0.04, 0.00, 0.25, f1_scale=0.92, f2_scale=0.95),
    "angry": Style(1.38, 3.0, 5.2, -21.0, 0.40, -0.60, 0.020, 0.12, 0.15, 0.02, f1_scale=1.15),
}
CODE_STYLES = {
    "neu": EMOTION_STYLES["neutral"],
    "hap": EMOTION_STYLES["happy"],
    "exc": EMOTION_STYLES["happy"],
    "sad": EMOTION_STYLES["sad"],
    "ang": EMOTION_STYLES["angry"],
    "fru": blend_styles(EMOTION_STYLES["neutral"], EMOTION_STYLES["angry"], 0.5),
    "xxx": blend_styles(EMOTION_STYLES["neutral"], EMOTION_STYLES["happy"], 0.5),
}
CODE_EMOTIONS = {"neu": "neutral", "hap": "happy", "exc": "happy", "sad": "sad", "ang": "angry"}
# Evaluator vocabulary and typical [valence, activation, dominance] per code, for the label files.
CODE_NAMES = {
    "neu": "Neutral",
    "hap": "Happiness",
    "exc": "Excited",
    "sad": "Sadness",
    "ang": "Anger",
    "fru": "Frustration",
    "xxx": "Other",
}
CODE_VAD = {
    "neu": (2.5, 2.5, 2.5),
    "hap": (4.0, 3.0, 3.0),
    "exc": (4.0, 3.5, 3.5),
    "sad": (1.5, 2.0, 2.0),
    "ang": (1.5, 4.0, 4.0),
    "fru": (2.0, 3.5, 3.5),
    "xxx": (2.5, 3.0, 3.0),
}
SESSION_NOISE_DB = -50.0  # background noise floor, dBFS, +-2 dB per session
SETTINGS = ("confounded", "control")
# In the control setting the ten base pitches, sorted, are dealt by rank: these to the female speakers, the
# others to the male ones (rank sums 27 and 28 of 55), so each gender gets low and high voices alike.
CONTROL_FEMALE_RANKS = (0, 3, 4, 7, 8)


@dataclasses.dataclass(frozen=True)
class CorpusOptions:
    """How the corpus departs from the default: gender-pitch setting and difficulty (see `CORPUS_CARD`)."""

    setting: str = "confounded"  # "confounded": pitch ranges by gender; "control": independent of gender
    cue_scale: float = 1.0  # emotion cues other than pitch level, as a fraction of their default size
    spread: float = 1.0  # per-utterance perturbation, as a multiple of its default size

    def __post_init__(self):
        if self.setting not in SETTINGS:
            raise ValueError(f"setting={self.setting!r} is not a corpus setting; use one of {SETTINGS}")
        if not 0.0 <= self.cue_scale <= 1.0:
            raise ValueError(f"cue_scale={self.cue_scale} must lie in [0, 1] (1 = the default cue sizes)")
        if self.spread <= 0.0:
            raise ValueError(f"spread={self.spread} must be positive (1 = the default perturbation)")

    def as_settings(self) -> dict:
        """The non-default fields, for the manifest (a default corpus keeps its old manifest settings)."""
        default = CorpusOptions()
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }

    def style(self, code: str) -> Style:
        """The code's emotion style with its non-pitch-level cues scaled towards neutral by `cue_scale`."""
        style = CODE_STYLES[code]
        if self.cue_scale == 1.0:
            return style
        scaled = blend_styles(EMOTION_STYLES["neutral"], style, self.cue_scale)
        return dataclasses.replace(scaled, pitch_level=style.pitch_level)


@dataclasses.dataclass(frozen=True)
class Utterance:
    """One planned utterance: who says it, with which label, where it goes and how long it lasts."""

    session: int
    gender: str  # "F" or "M"
    index: int  # position in its speaker's plan; seeds the audio RNG
    code: str  # IEMOCAP emotion code
    duration: float
    dialog: str = ""
    utt_id: str = ""
    start: float = 0.0

    @property
    def end(self) -> float:
        return self.start + self.duration

    @property
    def wav_relpath(self) -> str:
        return f"Session{self.session}/sentences/wav/{self.dialog}/{self.utt_id}.wav"


def allocate_counts(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Split `total` over the keys in proportion to `weights` (largest remainder, exact sum)."""
    scale = total / sum(weights.values())
    counts = {key: int(w * scale) for key, w in weights.items()}
    by_remainder = sorted(weights, key=lambda key: counts[key] - weights[key] * scale)
    for key in by_remainder[: total - sum(counts.values())]:
        counts[key] += 1
    return counts


def speaker_codes(rng: np.random.Generator, utterances_per_speaker: int) -> list[str]:
    """One speaker's shuffled emotion codes: IEMOCAP 4-class shares, hap/exc split, a few fru/xxx."""
    counts = allocate_counts(utterances_per_speaker, IEMOCAP_COUNTS)
    excited = int(round(counts["happy"] * EXCITED_SHARE_OF_HAPPY))
    codes = ["neu"] * counts["neutral"] + ["sad"] * counts["sad"] + ["ang"] * counts["angry"]
    codes += ["exc"] * excited + ["hap"] * (counts["happy"] - excited)
    dropped = math.ceil(utterances_per_speaker / DROPPED_PER_KEPT)
    codes += [("fru", "xxx")[i % 2] for i in range(dropped)]
    return [codes[i] for i in rng.permutation(len(codes))]


def sample_durations(rng: np.random.Generator, count: int) -> np.ndarray:
    """Log-normal durations (median 3 s) clipped to the bounds, rounded to milliseconds."""
    durations = DURATION_MEDIAN * np.exp(DURATION_SIGMA * rng.standard_normal(count))
    return np.round(np.clip(durations, *DURATION_BOUNDS), 3)


def control_pitches(seed: int, female_f0: np.ndarray, male_f0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same ten base pitches dealt by rank (`CONTROL_FEMALE_RANKS`), each gender's shuffled over the sessions."""
    pooled = np.sort(np.concatenate([female_f0, male_f0]))
    female = np.isin(np.arange(len(pooled)), CONTROL_FEMALE_RANKS)
    rng = np.random.default_rng([seed, 6])
    return rng.permutation(pooled[female]), rng.permutation(pooled[~female])


def speaker_voices(seed: int, setting: str = "confounded") -> dict[tuple[int, str], Voice]:
    """Each session's female and male voice; base pitches spread evenly over their ranges (`control`: over both
    genders alike)."""
    rng = np.random.default_rng([seed, 1])
    female_f0 = rng.permutation(np.linspace(185, 235, len(SESSIONS))) + rng.uniform(-3, 3, len(SESSIONS))
    male_f0 = rng.permutation(np.linspace(98, 132, len(SESSIONS))) + rng.uniform(-2, 2, len(SESSIONS))
    if setting == "control":
        female_f0, male_f0 = control_pitches(seed, female_f0, male_f0)
    voices = {}
    for i, session in enumerate(SESSIONS):
        voices[session, "F"] = Voice(float(female_f0[i]), float(1.15 * rng.uniform(0.95, 1.05)))
        voices[session, "M"] = Voice(float(male_f0[i]), float(rng.uniform(0.95, 1.05)))
    return voices


def session_noise_db(seed: int, session: int) -> float:
    """The recording-room noise floor of one session."""
    return SESSION_NOISE_DB + float(np.random.default_rng([seed, 3, session]).uniform(-2, 2))


def plan_speaker(seed: int, session: int, gender: str, utterances_per_speaker: int) -> list[Utterance]:
    """One speaker's utterances (codes and durations), before they are placed in dialogs."""
    rng = np.random.default_rng([seed, 2, session, GENDERS.index(gender)])
    codes = speaker_codes(rng, utterances_per_speaker)
    durations = sample_durations(rng, len(codes))
    return [Utterance(session, gender, i, code, float(d)) for i, (code, d) in enumerate(zip(codes, durations))]


def dialog_name(session: int, number: int) -> str:
    """IEMOCAP-like dialog names: Ses01F_impro01, Ses01M_impro01, Ses01F_script01_1, ..."""
    letter = GENDERS[number % 2]
    pair = number // 2
    if pair % 2 == 0:
        return f"Ses{session:02d}{letter}_impro{pair // 2 + 1:02d}"
    return f"Ses{session:02d}{letter}_script{pair // 4 + 1:02d}_{pair // 2 % 2 + 1}"


def place_in_dialogs(seed: int, session: int, speakers: list[list[Utterance]]) -> list[Utterance]:
    """Split both speakers' utterances over the session's dialogs as alternating turns with times."""
    rng = np.random.default_rng([seed, 4, session])
    n_dialogs = max(1, round(sum(map(len, speakers)) / 30))
    chunks = [np.array_split(np.arange(len(utts)), n_dialogs) for utts in speakers]
    placed = []
    for number in range(n_dialogs):
        dialog = dialog_name(session, number)
        turns = np.concatenate([np.full(len(chunks[g][number]), g) for g in range(len(speakers))])
        clock, taken = rng.uniform(2.0, 8.0), [0] * len(speakers)
        for g in rng.permutation(turns):
            utt = speakers[g][chunks[g][number][taken[g]]]
            utt_id = f"{dialog}_{utt.gender}{taken[g]:03d}"
            placed.append(dataclasses.replace(utt, dialog=dialog, utt_id=utt_id, start=round(clock, 4)))
            clock += utt.duration + rng.uniform(0.2, 1.5)
            taken[g] += 1
    return placed


def plan_corpus(seed: int, utterances_per_speaker: int) -> list[Utterance]:
    """Every utterance of the corpus, placed in its session's dialogs."""
    corpus = []
    for session in SESSIONS:
        speakers = [plan_speaker(seed, session, g, utterances_per_speaker) for g in GENDERS]
        corpus += place_in_dialogs(seed, session, speakers)
    return corpus


def label_block(utt: Utterance) -> str:
    """An utterance's lines in an EmoEvaluation file: the summary line and evaluator lines."""
    vad = CODE_VAD[utt.code]
    scores = [int(v + 0.5) for v in vad]  # evaluators give whole-number ratings
    name = CODE_NAMES[utt.code]
    second = "Neutral" if utt.code == "xxx" else name
    lines = [
        f"[{utt.start:.4f} - {utt.end:.4f}]\t{utt.utt_id}\t{utt.code}\t[{vad[0]:.4f}, {vad[1]:.4f}, {vad[2]:.4f}]",
        f"C-E1:\t{name};\t()",
        f"C-E2:\t{second};\t()",
        f"A-E1:\tval {scores[0]}; act {scores[1]}; dom  {scores[2]};\t()",
    ]
    return "\n".join(lines) + "\n\n"


def write_label_files(release: Path, corpus: list[Utterance]) -> None:
    """One EmoEvaluation file per dialog, with IEMOCAP's header line."""
    dialogs: dict[tuple[int, str], list[Utterance]] = {}
    for utt in corpus:
        dialogs.setdefault((utt.session, utt.dialog), []).append(utt)
    for (session, dialog), utts in dialogs.items():
        folder = release / f"Session{session}" / "dialog" / "EmoEvaluation"
        folder.mkdir(parents=True, exist_ok=True)
        header = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"
        (folder / f"{dialog}.txt").write_text(header + "".join(map(label_block, utts)), encoding="utf-8")


def render_utterance(
    seed: int, utt: Utterance, voices: dict, sampling_rate: int, options: CorpusOptions = CorpusOptions()
) -> np.ndarray:
    """The audio of one utterance; depends only on the seed, the options and the utterance's identity."""
    rng = np.random.default_rng([seed, 5, utt.session, GENDERS.index(utt.gender), utt.index])
    style = perturb_style(options.style(utt.code), rng, options.spread)
    noise_db = session_noise_db(seed, utt.session)
    return synthesize_utterance(rng, voices[utt.session, utt.gender], style, utt.duration, sampling_rate, noise_db)


def summarize(corpus: list[Utterance]) -> dict:
    """Counts per session, gender and emotion (4-class, as the reader sees them) plus dropped codes."""
    kept = [u for u in corpus if u.code in CODE_EMOTIONS]
    gender_names = {"F": "female", "M": "male"}
    per_session = Counter((u.session, gender_names[u.gender], CODE_EMOTIONS[u.code]) for u in kept)
    return {
        "utterances": len(kept),
        "dropped_by_4class_reader": dict(Counter(u.code for u in corpus if u.code not in CODE_EMOTIONS)),
        "hours": round(sum(u.duration for u in corpus) / 3600, 3),
        "per_emotion": dict(Counter(CODE_EMOTIONS[u.code] for u in kept)),
        "per_gender": dict(Counter(gender_names[u.gender] for u in kept)),
        "per_session": {
            str(s): {g: {e: per_session[s, g, e] for e in EMOTION_STYLES} for g in gender_names.values()}
            for s in SESSIONS
        },
    }


def prepare_release_dir(release: Path, settings: dict, overwrite: bool) -> bool:
    """True when an identical corpus is already there; clears or refuses an existing different one."""
    manifest = release / MANIFEST_NAME
    if manifest.is_file() and json.loads(manifest.read_text())["settings"] == settings:
        return True
    if release.exists() and any(release.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{release} already holds a different corpus; pass overwrite=True to replace it")
        shutil.rmtree(release)
    return False


def generate_corpus(
    out_dir: str | Path,
    seed: int = 0,
    utterances_per_speaker: int = 120,
    sampling_rate: int = 16000,
    progress: bool = True,
    overwrite: bool = False,
    setting: str = "confounded",
    cue_scale: float = 1.0,
    spread: float = 1.0,
) -> Path:
    """Write the synthetic corpus under `out_dir/IEMOCAP_full_release` and return `out_dir`.

    `setting`, `cue_scale` and `spread` are `CorpusOptions` (the defaults give the demo's corpus): "control" deals
    speaker pitch ranges independently of gender; `cue_scale` < 1 and `spread` > 1 make the emotions harder to tell
    apart. Calling again with the same settings returns at once; a different corpus already there raises
    `FileExistsError` unless `overwrite=True`. The counts are in `describe_corpus(out_dir)`.
    """
    options = CorpusOptions(setting, cue_scale, spread)
    out_dir = Path(out_dir)
    release = out_dir / RELEASE_DIR
    settings = {"seed": seed, "utterances_per_speaker": utterances_per_speaker, "sampling_rate": sampling_rate}
    settings.update(options.as_settings())
    if prepare_release_dir(release, settings, overwrite):
        return out_dir
    corpus = plan_corpus(seed, utterances_per_speaker)
    voices = speaker_voices(seed, options.setting)
    for utt in tqdm(corpus, desc="Synthesising corpus", unit="utt", disable=not progress):
        path = release / utt.wav_relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        audio = render_utterance(seed, utt, voices, sampling_rate, options)
        sf.write(path, audio, sampling_rate, subtype="PCM_16")
    write_label_files(release, corpus)
    manifest = {"settings": settings, "summary": summarize(corpus), "card": CORPUS_CARD}
    (release / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return out_dir


def describe_corpus(out_dir: str | Path) -> dict:
    """The settings and counts (per session/gender/emotion) of a corpus written by `generate_corpus`."""
    manifest = json.loads((Path(out_dir) / RELEASE_DIR / MANIFEST_NAME).read_text())
    return {**manifest["settings"], **manifest["summary"]}
