"""Test-wide settings (everything offline) and the shared fixtures. `tests` is a package (its helpers in
`tests/helpers/`); pytest puts the checkout root on `sys.path`, so `benchmarks/` imports too."""

import logging
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if "PYTEST_XDIST_WORKER" in os.environ:
    # `make test` runs two workers on two cores: one intra-op thread each (set before torch loads), or each worker's
    # torch would spin on every core and the two would slow each other down. Scripts the tests start inherit it.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

# Recorded before any fixture runs: a session fixture that trains (as `learned_export` does) sets the package
# logger's level before the first function-scoped fixture could record it.
_PACKAGE_LOG_LEVEL = logging.getLogger("gemo_clap_hf").level
_TORCH_THREADS = torch.get_num_threads()


@pytest.fixture(autouse=True)
def _process_wide_defaults():
    """Each test starts from the process-wide defaults that the code under test may change for its process: the
    package logger's level (a training run sets it, as the scripts do; tests that read the log at INFO would
    otherwise depend on which tests ran before them) and torch's intra-op threads (`--threads` sets them; a
    different count changes float reductions, which tests comparing runs to 1e-6 see)."""
    _restore_process_defaults()  # after the session fixtures this test uses
    yield
    _restore_process_defaults()


def _restore_process_defaults() -> None:
    logging.getLogger("gemo_clap_hf").setLevel(_PACKAGE_LOG_LEVEL)
    torch.set_num_threads(_TORCH_THREADS)


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
