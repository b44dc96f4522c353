"""Host-device syncs of one training step per loss type, recorded with `sync_audit.SyncRecorder`."""

from __future__ import annotations

from .settings import TARGETS, Settings
from .sync_audit import SyncRecorder
from .workload import audio_only, describe_batch, forward_backward, loss_type, training_step


def measure_host_syncs(settings: Settings, models: dict, optimizers: dict, batch: dict) -> dict:
    """Host-device syncs of one training step (forward, loss, backward, temperature clamp) per loss type: those
    issued by the package's own lines (target 0) and those of the towers (transformers) and autograd, by line.

    The optimizer step is left out of the recording (torch's, the same on both sides). The WavLM classifier's step
    is recorded too, for comparison.
    """
    gemo_clap = models["sl_gemo_clap"]
    per_loss, towers = {}, {}
    for name in ("emo", "sl", "ml"):
        with loss_type(gemo_clap, name):
            training_step(gemo_clap, optimizers["sl_gemo_clap"], {**batch, "return_loss": True}, settings)  # warm
            with SyncRecorder() as recorder:
                forward_backward(gemo_clap, {**batch, "return_loss": True}, settings)
                gemo_clap.clamp_logit_scales_()
            optimizers["sl_gemo_clap"].zero_grad(set_to_none=True)
        per_loss[name] = len(recorder.package_syncs)
        towers[name] = {"total": len(recorder.tower_syncs), "by_line": SyncRecorder.summarize(recorder.tower_syncs)}
        if recorder.package_syncs:
            towers[name]["package_lines"] = SyncRecorder.summarize(recorder.package_syncs)
    baseline = models["wavlm_classifier"]
    with SyncRecorder() as recorder:
        forward_backward(baseline, audio_only(batch), settings)
    baseline.zero_grad(set_to_none=True)
    worst = max(per_loss.values())
    return {
        "package": per_loss,
        "target_max": TARGETS["package_syncs"],
        "met": worst <= TARGETS["package_syncs"],
        "towers_and_autograd": towers,
        "wavlm_classifier_step": {"total": len(recorder.syncs), "by_line": SyncRecorder.summarize(recorder.syncs)},
        "batch": describe_batch(batch),
        "repeats": 1,
    }
