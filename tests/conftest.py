"""Test-wide settings (everything offline) and the shared fixtures. `tests` is a package (its helpers in
`tests/helpers/`); pytest puts the checkout root on `sys.path`, so `benchmarks/` imports too."""

import logging
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _package_log_level():
    """Each test starts with the package logger's default level: a training run sets it for its whole process (as
    the scripts do), and tests that read the log at INFO would otherwise depend on which tests ran before them."""
    package_logger = logging.getLogger("gemo_clap_hf")
    level = package_logger.level
    yield
    package_logger.setLevel(level)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """One saved SL-GEmo-CLAP folder (weights, config, processor) shared by the read-only tests."""
    from tests.helpers.tiny_models import save_tiny_checkpoint

    return save_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "sl-gemo-clap")


@pytest.fixture(scope="session")
def ml_checkpoint(tmp_path_factory):
    """One saved ML-GEmo-CLAP folder (emotion and gender scores) on a wavlm-base-plus-shaped tower (a group-norm
    feature encoder, the default encoder's structure), shared by the read-only tests of the inference surfaces."""
    import json

    from tests.helpers.tiny_models import save_tiny_checkpoint

    folder = save_tiny_checkpoint(
        tmp_path_factory.mktemp("ml_ckpt") / "ml-gemo-clap", audio_type="wavlm-base-plus", loss_type="ml"
    )
    assert json.loads((folder / "config.json").read_text())["audio_config"]["feat_extract_norm"] == "group"
    return folder


from tests.helpers.onnx_fixtures import exported, group_export, learned_export  # noqa: E402, F401 - one ONNX export per tower per session
