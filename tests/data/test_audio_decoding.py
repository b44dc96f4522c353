"""load_audio / audio_info against expectations computed independently of the code under test."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from gemo_clap_hf.data import audio_duration, audio_info, load_audio
from gemo_clap_hf.feature_extraction_gemo_clap import GEmoClapAudioError


def _int16_noise(frames: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    shape = (frames,) if channels == 1 else (frames, channels)
    return np.random.default_rng(seed).integers(-32768, 32767, size=shape, dtype=np.int16)


def test_int16_file_is_scaled_by_32768(tmp_path):
    data = _int16_noise(4000)
    sf.write(tmp_path / "a.wav", data, 16000, subtype="PCM_16")
    waveform = load_audio(tmp_path / "a.wav")
    assert waveform.dtype == np.float32 and waveform.shape == (4000,)
    np.testing.assert_array_equal(waveform, (data / 32768.0).astype(np.float32))


def test_bytes_and_datasets_dict_decode_like_the_path(tmp_path):
    data = _int16_noise(2000)
    path = tmp_path / "a.wav"
    sf.write(path, data, 16000, subtype="PCM_16")
    expected = load_audio(str(path))
    np.testing.assert_array_equal(load_audio(path.read_bytes()), expected)
    np.testing.assert_array_equal(load_audio({"path": str(path), "bytes": None}), expected)


def test_stereo_file_is_the_mean_of_its_channels(tmp_path):
    data = _int16_noise(3000, channels=2, seed=1)
    sf.write(tmp_path / "s.wav", data, 16000, subtype="PCM_16")
    expected = data.astype(np.float64).mean(axis=1) / 32768.0
    np.testing.assert_allclose(load_audio(tmp_path / "s.wav"), expected, atol=1e-7)


def test_float_file_keeps_its_values(tmp_path):
    data = np.linspace(-0.5, 0.5, 1600, dtype=np.float32)
    sf.write(tmp_path / "f.wav", data, 16000, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(tmp_path / "f.wav"), data)


def test_48k_file_is_resampled_to_16k(tmp_path):
    seconds = 0.5
    time = np.arange(int(48000 * seconds)) / 48000
    sf.write(tmp_path / "hi.wav", 0.5 * np.sin(2 * np.pi * 440 * time), 48000, subtype="PCM_16")
    waveform = load_audio(tmp_path / "hi.wav", sampling_rate=16000)
    assert abs(len(waveform) - 16000 * seconds) <= 1
    # Still a 440 Hz tone after resampling: the spectrum peaks at 440 Hz (bin width 2 Hz).
    spectrum = np.abs(np.fft.rfft(waveform))
    assert abs(np.argmax(spectrum) * 16000 / len(waveform) - 440) < 4


def test_audio_info_reads_the_header(tmp_path):
    sf.write(tmp_path / "x.wav", np.zeros((7200, 2), dtype=np.float32), 48000)
    info = audio_info(tmp_path / "x.wav")
    assert (info.frames, info.sampling_rate, info.channels) == (7200, 48000, 2)
    assert info.num_samples(16000) == 2400
    assert audio_duration(tmp_path / "x.wav") == pytest.approx(0.15)


def test_missing_file_error_names_the_path(tmp_path):
    path = tmp_path / "nowhere.wav"
    for call in (load_audio, audio_info):
        with pytest.raises(GEmoClapAudioError, match="nowhere.wav.*does not exist"):
            call(path)


def test_corrupt_file_error_names_the_path_and_the_fix(tmp_path):
    path = tmp_path / "broken.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 4)
    for call in (load_audio, audio_info):
        with pytest.raises(GEmoClapAudioError, match=r"broken\.wav.*cannot be read.*skip_bad_files") as error:
            call(path)
        assert isinstance(error.value, ValueError)


@pytest.mark.parametrize("kind", ["zero_bytes", "header_only"])
def test_empty_file_is_rejected_with_its_path(tmp_path, kind):
    path = tmp_path / "empty.wav"
    if kind == "zero_bytes":
        path.write_bytes(b"")
    else:
        sf.write(path, np.zeros(0, dtype=np.int16), 16000, subtype="PCM_16")
    with pytest.raises(GEmoClapAudioError, match="empty.wav"):
        load_audio(path)
    with pytest.raises(GEmoClapAudioError, match="empty.wav"):
        audio_info(path)


def test_nan_file_is_rejected(tmp_path):
    data = np.zeros(800, dtype=np.float32)
    data[10] = np.nan
    sf.write(tmp_path / "nan.wav", data, 16000, subtype="FLOAT")
    with pytest.raises(GEmoClapAudioError, match="nan.wav.*NaN"):
        load_audio(tmp_path / "nan.wav")


def test_format_soundfile_cannot_read_falls_back_to_librosa_and_fails_clearly(tmp_path):
    path = tmp_path / "clip.m4a"  # not a libsndfile format: librosa (audioread) is tried, and cannot read junk either
    path.write_bytes(b"\x00\x00\x00\x18ftypM4A junk" * 8)
    with pytest.raises(GEmoClapAudioError, match=r"clip\.m4a.*cannot be read"):
        load_audio(path)
