"""The three GEmo-CLAP losses against an independent, loop-based computation written from DESIGN.md's formulas."""

import math

import pytest
import torch

from gemo_clap_hf.loss_gemo_clap import gemo_clap_loss

BATCHES = {
    "all_same_emotion": ([2, 2, 2, 2], [0, 1, 0, 1]),
    "all_different": ([0, 1, 2, 3], [0, 0, 1, 1]),
    "mixed_genders": ([0, 1, 1, 3, 0, 2], [1, 0, 1, 1, 0, 0]),
    "one_gender": ([0, 1, 1, 2], [1, 1, 1, 1]),
    "batch_of_one": ([3], [0]),
}


def loop_target(matrix, normalization):
    rows = []
    for row in matrix:
        if normalization == "sum":
            total = sum(row)
            rows.append([value / total for value in row])
        else:
            exps = [math.exp(value) for value in row]
            rows.append([value / sum(exps) for value in exps])
    return rows


def loop_kl(target, logits):
    """mean_i sum_j t_ij (log t_ij - log softmax(logits_i)_j), skipping t_ij = 0."""
    total = 0.0
    for t_row, l_row in zip(target, logits):
        log_norm = math.log(sum(math.exp(value) for value in l_row))
        total += sum(t * (math.log(t) - (logit - log_norm)) for t, logit in zip(t_row, l_row) if t > 0)
    return total / len(target)


def loop_similarities(scale, left, right):
    return [[scale * sum(a * b for a, b in zip(row, col)) for col in right] for row in left]


def loop_same(labels):
    return [[1.0 if a == b else 0.0 for b in labels] for a in labels]


def reference_loss(audio, text, gender_text, emotions, genders, scale_a, scale_t, loss_type, alpha, normalization):
    audio, text, gender_text = audio.tolist(), text.tolist(), gender_text.tolist()
    c_a, c_t = loop_similarities(scale_a, audio, text), loop_similarities(scale_t, text, audio)
    m_e, m_g = loop_same(emotions), loop_same(genders)
    if loss_type == "sl":
        m_s = [[alpha * e + (1 - alpha) * g for e, g in zip(re, rg)] for re, rg in zip(m_e, m_g)]
        target = loop_target(m_s, normalization)
        return 0.5 * (loop_kl(target, c_a) + loop_kl(target, c_t))
    target_e = loop_target(m_e, normalization)
    emotion = 0.5 * (loop_kl(target_e, c_a) + loop_kl(target_e, c_t))
    if loss_type == "emo":
        return emotion
    target_g = loop_target(m_g, normalization)
    g_a, g_t = loop_similarities(scale_a, audio, gender_text), loop_similarities(scale_t, gender_text, audio)
    gender = 0.5 * (loop_kl(target_g, g_a) + loop_kl(target_g, g_t))
    return alpha * emotion + (1 - alpha) * gender


def normalised(rows, dim, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(rows, dim, generator=generator, dtype=torch.float64), dim=-1)


@pytest.mark.parametrize("batch", BATCHES.values(), ids=BATCHES.keys())
@pytest.mark.parametrize("loss_type", ["emo", "sl", "ml"])
@pytest.mark.parametrize("normalization", ["sum", "softmax"])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.9, 1.0])
def test_loss_matches_loop_reference(batch, loss_type, normalization, alpha):
    emotions, genders = batch
    n = len(emotions)
    audio, text, gender_text = normalised(n, 8, 1), normalised(n, 8, 2), normalised(n, 8, 3)
    scale_a, scale_t = torch.tensor(14.0, dtype=torch.float64), torch.tensor(9.5, dtype=torch.float64)
    result = gemo_clap_loss(
        audio,
        text,
        torch.tensor(emotions),
        scale_a,
        scale_t,
        loss_type=loss_type,
        alpha_e=alpha,
        gender_labels=torch.tensor(genders),
        gender_text_embeds=gender_text,
        target_normalization=normalization,
    )
    expected = reference_loss(audio, text, gender_text, emotions, genders, 14.0, 9.5, loss_type, alpha, normalization)
    # The loss computes in float32 (kl on .float()), hence a float32 tolerance.
    assert result.loss.item() == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_sl_with_alpha_one_is_emo_clap_and_gender_changes_it():
    emotions, genders = torch.tensor([0, 1, 1, 3]), torch.tensor([0, 1, 0, 1])
    audio, text = normalised(4, 8, 4), normalised(4, 8, 5)
    scale = torch.tensor(10.0)
    emo = gemo_clap_loss(audio, text, emotions, scale, scale, loss_type="emo").loss
    sl_one = gemo_clap_loss(
        audio, text, emotions, scale, scale, loss_type="sl", alpha_e=1.0, gender_labels=genders
    ).loss
    sl = gemo_clap_loss(audio, text, emotions, scale, scale, loss_type="sl", alpha_e=0.5, gender_labels=genders).loss
    assert sl_one.item() == pytest.approx(emo.item(), abs=1e-7)
    assert abs(sl.item() - emo.item()) > 1e-3


def test_perfect_alignment_gives_zero_loss_only_when_all_positives_are_matched():
    # Same-emotion clips share one embedding: with a large scale the softmax rows approach the target rows.
    emotions = torch.tensor([0, 0, 1, 1])
    basis = torch.eye(4, dtype=torch.float64)
    audio = basis[emotions]
    loss = gemo_clap_loss(audio, audio.clone(), emotions, torch.tensor(100.0), torch.tensor(100.0), loss_type="emo")
    assert loss.loss.item() < 1e-6
    shuffled = gemo_clap_loss(
        audio, audio[[2, 3, 0, 1]], emotions, torch.tensor(100.0), torch.tensor(100.0), loss_type="emo"
    )
    assert shuffled.loss.item() > 10


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"loss_type": "focal"}, "loss_type"),
        ({"alpha_e": 1.5}, "alpha_e"),
        ({"loss_type": "sl", "gender_labels": None}, "gender_labels"),
        ({"loss_type": "ml", "gender_text_embeds": None}, "gender"),
    ],
)
def test_loss_rejects_bad_arguments(kwargs, message):
    base = dict(
        loss_type="emo", alpha_e=0.9, gender_labels=torch.tensor([0, 1]), gender_text_embeds=normalised(2, 8, 0)
    )
    base.update(kwargs)
    with pytest.raises(ValueError, match=message):
        gemo_clap_loss(
            normalised(2, 8, 1), normalised(2, 8, 2), torch.tensor([0, 1]), torch.tensor(1.0), torch.tensor(1.0), **base
        )


def test_loss_rejects_mismatched_batch_sizes():
    with pytest.raises(ValueError, match="3 audio clips but 2 texts"):
        gemo_clap_loss(
            normalised(3, 8, 1),
            normalised(2, 8, 2),
            torch.tensor([0, 1, 1]),
            torch.tensor(1.0),
            torch.tensor(1.0),
            loss_type="emo",
        )
    with pytest.raises(ValueError, match="emotion_labels"):
        gemo_clap_loss(
            normalised(2, 8, 1),
            normalised(2, 8, 2),
            torch.tensor([0, 1, 1]),
            torch.tensor(1.0),
            torch.tensor(1.0),
            loss_type="emo",
        )


def test_target_distribution_defaults_to_row_sums_and_names_a_bad_normalization():
    """The helper on its own: by default each row divided by its sum (the loop reference's "sum"); an unknown
    normalization is refused by name."""
    from gemo_clap_hf.loss_gemo_clap import target_distribution

    positives = torch.tensor([[1.0, 0.0, 1.0], [0.9, 0.1, 0.1], [0.0, 0.0, 1.0]], dtype=torch.float64)
    expected = torch.tensor(loop_target(positives.tolist(), "sum"), dtype=torch.float64)
    torch.testing.assert_close(target_distribution(positives), expected, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match=r"^`target_normalization` must be 'sum' or 'softmax', got 'mean'\.$"):
        target_distribution(positives, "mean")
