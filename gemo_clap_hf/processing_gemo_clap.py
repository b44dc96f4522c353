"""GEmoClapProcessor: the feature extractor for audio and the text tower's tokenizer for label prompts, as one object.

Travels with saved models (`trust_remote_code`): imports only transformers and its sibling files.
"""

from __future__ import annotations

from transformers import BatchFeature, ProcessorMixin


class GEmoClapProcessor(ProcessorMixin):
    """`processor(audio=..., text=..., sampling_rate=16000, return_tensors="pt")`.

    Audio becomes `input_values` + `audio_attention_mask`, text becomes `input_ids` + `attention_mask`; the names
    never clash, so both can go to `GEmoClapModel` in one call. Both are padded to the longest item (a ready batch),
    unlike the bare feature extractor, which pads only when asked. `audio` takes whatever the feature extractor
    takes: arrays, `{"array", "sampling_rate"}` dicts, torchcodec `AudioDecoder` objects, or a sequence of them.
    """

    def __init__(self, feature_extractor, tokenizer):
        super().__init__(feature_extractor, tokenizer)

    def __call__(
        self,
        text: str | list[str] | None = None,
        audio=None,
        sampling_rate: int | None = None,
        return_tensors: str | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Route audio to the feature extractor and text to the tokenizer, then merge their outputs."""
        if text is None and audio is None:
            raise ValueError("pass `audio=`, `text=` or both to GEmoClapProcessor.")
        outputs = {}
        if audio is not None:
            names = kwargs.pop("names", None)
            outputs.update(
                self.feature_extractor(
                    audio, sampling_rate=sampling_rate, padding=True, return_tensors=return_tensors, names=names
                )
            )
        if text is not None:
            outputs.update(
                self.tokenizer(text, padding=kwargs.pop("padding", True), return_tensors=return_tensors, **kwargs)
            )
        return BatchFeature(outputs, tensor_type=return_tensors)

    @property
    def model_input_names(self) -> list[str]:
        return list(dict.fromkeys(self.tokenizer.model_input_names + self.feature_extractor.model_input_names))


__all__ = ["GEmoClapProcessor"]
