"""GEmoClapPromptTable: the label-prompt table of a GEmo-CLAP model (token ids per label, embeddings cached in eval).

The text of an utterance is its label's prompt (`config.prompt_template` around the label name), so the text tower
only ever encodes one fixed table per label kind, indexed by label id. The token ids of that table are saved with
the model (`config.label_prompt_tokens`), so a folder written by `save_pretrained` alone classifies without a
tokenizer beside it; a tokenizer is needed only to tokenise prompts that were never saved (re-labelling).

Travels with saved models (`trust_remote_code`): imports only torch and transformers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

LABEL_KINDS = ("emotion", "gender")
# What `config.label_prompt_tokens[kind]` holds: the prompt texts, and the tokenizer's padded output for them.
TOKEN_FIELDS = ("texts", "input_ids", "attention_mask")


def _is_tracing() -> bool:
    """Whether torch.compile / torch.export is tracing: their tensors must not be cached across calls."""
    is_exporting = getattr(torch.compiler, "is_exporting", lambda: False)  # older torch has no is_exporting
    return torch.compiler.is_compiling() or is_exporting()


class GEmoClapPromptTable(nn.Module):
    """Every emotion and gender label's prompt, tokenised, and (in evaluation mode) its cached embedding.

    Where the token ids come from, first match wins: the buffers already made for the current prompts; the ids saved
    in `config.label_prompt_tokens` (written by `set_prompts`, saved in config.json); the kept tokenizer (given to
    `set_prompts`, or found beside the weights by `from_pretrained`). The ids are non-persistent buffers: they
    follow `.to(device)` and never enter the state dict, so the weight names stay those of every GEmo-CLAP folder.

    The embedding cache is never stale, whatever changed the weights (fused optimizers do not bump version
    counters): it is dropped at every `train()`/`eval()` call and on `load_state_dict`, keyed by dtype, device and
    autocast, filled at most once per evaluation, and never filled while torch.compile/torch.export trace.
    """

    def __init__(self, config):
        super().__init__()
        self.config = config  # the model's config: the labels and template are read at every use, never copied
        for kind in LABEL_KINDS:
            self.register_buffer(f"{kind}_prompt_ids", None, persistent=False)
            self.register_buffer(f"{kind}_prompt_mask", None, persistent=False)
        self._texts: dict[str, list[str]] = {}  # the prompts the buffers of each kind were made from
        self._tokenizer = None
        self._cache: dict[str, tuple[tuple, torch.Tensor]] = {}
        self.register_load_state_dict_post_hook(lambda module, incompatible_keys: module._cache.clear())

    # ----- token ids --------------------------------------------------------------------------------------------

    def set_prompts(self, tokenizer, device: torch.device | None = None) -> None:
        """Tokenise every label's prompt with `tokenizer` (ids on `device`), save the ids in the config, and keep
        the tokenizer (a model re-labelled later re-derives its prompts with it)."""
        self._tokenizer = tokenizer
        for kind in LABEL_KINDS:
            self._tokenize(kind, self.texts(kind), device)

    def keep_tokenizer(self, tokenizer) -> None:
        """Keep `tokenizer` for prompts the config has no saved ids for, without re-tokenising the saved ones."""
        self._tokenizer = tokenizer

    @property
    def has_prompts(self) -> bool:
        """Whether every kind's current prompts have token ids (made, saved in the config, or a tokenizer kept)."""
        return all(self._can_make(kind) for kind in LABEL_KINDS)

    def missing_message(self) -> str | None:
        """Why some prompts have no token ids and what to pass; None when `has_prompts`."""
        for kind in LABEL_KINDS:
            if not self._can_make(kind):
                return self._missing_message(kind, self.texts(kind))
        return None

    def _can_make(self, kind: str) -> bool:
        texts = self.texts(kind)
        return self._tokenizer is not None or self._texts.get(kind) == texts or self._saved(kind) is not None

    def texts(self, kind: str) -> list[str]:
        """The prompts of `kind` ("emotion"/"gender") as the config renders them now, in label-id order."""
        if kind not in LABEL_KINDS:
            raise ValueError(f"`kind` must be one of {LABEL_KINDS}, got {kind!r}.")
        return self.config.prompts(self.config.emotion_labels if kind == "emotion" else self.config.gender_labels)

    def inputs(self, kind: str, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`(input_ids, attention_mask)` of `kind`'s prompts, made first (on `device`) if the config's labels or
        template changed since they were last made."""
        texts = self.texts(kind)
        if self._texts.get(kind) != texts:
            saved = self._saved(kind)
            if saved is not None:
                ids, mask = torch.tensor(saved["input_ids"]), torch.tensor(saved["attention_mask"])
                self._set_buffers(kind, texts, ids, mask, device)
            elif self._tokenizer is not None:
                self._tokenize(kind, texts, device)
            else:
                raise RuntimeError(self._missing_message(kind, texts))
        return getattr(self, f"{kind}_prompt_ids"), getattr(self, f"{kind}_prompt_mask")

    def refresh(self, device: torch.device | None = None) -> None:
        """Make every kind's ids that can be made now (after loading, and before saving so that config.json holds
        the current prompts); kinds that need a tokenizer nobody gave are left for `inputs` to report."""
        for kind in LABEL_KINDS:
            if self._saved(kind) is not None or self._tokenizer is not None:
                self.inputs(kind, device)

    def saved_inputs(self, texts: list[str]) -> dict[str, torch.Tensor] | None:
        """The saved `input_ids`/`attention_mask` rows of `texts` when all are prompts of one kind (what the
        zero-shot pipeline scores without a tokenizer), else None."""
        for kind in LABEL_KINDS:
            saved = self._saved_entry(kind)
            if saved is not None and all(text in saved["texts"] for text in texts):
                rows = [saved["texts"].index(text) for text in texts]
                return {name: torch.tensor([saved[name][row] for row in rows]) for name in TOKEN_FIELDS[1:]}
        return None

    def _tokenize(self, kind: str, texts: list[str], device: torch.device | None) -> None:
        encoded = self._tokenizer(texts, padding=True, return_tensors="pt")
        self._set_buffers(kind, texts, encoded["input_ids"], encoded["attention_mask"], device)

    def _set_buffers(self, kind, texts, input_ids: torch.Tensor, attention_mask: torch.Tensor, device) -> None:
        """Install `kind`'s ids on `device` and record them in `config.label_prompt_tokens`, which
        `save_pretrained` writes into config.json."""
        setattr(self, f"{kind}_prompt_ids", input_ids if device is None else input_ids.to(device))
        setattr(self, f"{kind}_prompt_mask", attention_mask if device is None else attention_mask.to(device))
        self._texts[kind] = list(texts)
        saved = dict(self.config.label_prompt_tokens or {})
        saved[kind] = {"texts": list(texts), "input_ids": input_ids.tolist(), "attention_mask": attention_mask.tolist()}
        self.config.label_prompt_tokens = saved
        self._cache.pop(kind, None)

    def _saved_entry(self, kind: str) -> dict | None:
        """`config.label_prompt_tokens[kind]`, checked (it comes from a file that may have been edited)."""
        entry = (self.config.label_prompt_tokens or {}).get(kind)
        if entry is None:
            return None
        rows = {name: entry.get(name) for name in TOKEN_FIELDS} if isinstance(entry, dict) else {}
        if not rows or any(not isinstance(value, list) for value in rows.values()):
            problem = f"needs the lists {TOKEN_FIELDS}"
        elif not len(rows["texts"]) == len(rows["input_ids"]) == len(rows["attention_mask"]):
            problem = "needs one row of `input_ids` and `attention_mask` per text"
        elif len({len(row) for row in rows["input_ids"] + rows["attention_mask"]}) > 1:
            problem = "needs rows of one length (the tokenizer's padded output)"
        else:
            return entry
        raise ValueError(
            f"config.json's `label_prompt_tokens[{kind!r}]` {problem}; delete `label_prompt_tokens` from config.json "
            "and call `model.set_prompts(tokenizer)` with the text tower's tokenizer, then save the model again."
        )

    def _saved(self, kind: str) -> dict | None:
        """The saved ids of `kind` when they were made for the prompts the config renders now."""
        entry = self._saved_entry(kind)
        return entry if entry is not None and entry["texts"] == self.texts(kind) else None

    def _missing_message(self, kind: str, texts: list[str]) -> str:
        entry = self._saved_entry(kind)
        if entry is None:
            return (
                "the label prompts are not tokenised: load the model with `from_pretrained` from a folder saved with "
                "its prompts or holding its tokenizer, or call `model.set_prompts(tokenizer)` once."
            )
        return (
            f"the {kind} prompts {texts} differ from the ones saved with the model ({entry['texts']}): the model was "
            "re-labelled (`id2label`, `emotion_labels`, `gender_labels` or `prompt_template`), and re-labelling needs "
            "the text tower's tokenizer, which was not found beside the weights. Call "
            "`model.set_prompts(tokenizer)` with it (e.g. `AutoTokenizer.from_pretrained(<the text encoder>)`), or "
            "save the tokenizer in the model folder before `from_pretrained`."
        )

    # ----- embeddings -------------------------------------------------------------------------------------------

    def train(self, mode: bool = True):
        """`nn.Module.train`; also drops the cached embeddings, so every evaluation starts from the weights as they
        are (fused optimizers and `p.data` updates change weights without any other trace)."""
        self._cache.clear()
        return super().train(mode)

    def embeddings(
        self,
        kind: str,
        encode: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        reference: torch.Tensor,
    ) -> torch.Tensor:
        """`(num_labels, projection_dim)` embeddings of `kind`'s prompts: `encode(input_ids, attention_mask)`.

        `reference` is a weight of the text side: its dtype and device (and the autocast state) key the cache.
        Training mode: recomputed at every call (with gradient when enabled). Evaluation mode: computed once and
        cached until the next `train()`/`eval()` call, `load_state_dict`, new prompts, or a dtype/device change.
        """
        input_ids, attention_mask = self.inputs(kind, reference.device)
        # Under autocast the embeddings come out in the autocast dtype, not the weights': part of the key.
        key = (reference.dtype, reference.device, torch.is_autocast_enabled(reference.device.type))
        cached = None if self.training else self._cache.get(kind)
        if cached is not None and cached[0] == key:
            embeds = cached[1]
            if embeds.is_inference() and not torch.is_inference_mode_enabled():
                embeds = embeds.clone()  # usable by autograd outside inference mode
                self._cache[kind] = (key, embeds)
            return embeds
        embeds = encode(input_ids, attention_mask)
        if not self.training and not _is_tracing():
            self._cache[kind] = (key, embeds.detach())
        return embeds


__all__ = ["GEmoClapPromptTable", "LABEL_KINDS"]
