"""GEmo-CLAP for Hugging Face Transformers: gender-attribute-enhanced contrastive language-audio pretraining for SER.

Importing the package registers the model with the Auto classes and the audio pipelines, so that
`AutoModel`, `AutoModelForAudioClassification`, `AutoProcessor` and `pipeline("audio-classification")` work on
GEmo-CLAP checkpoints without `trust_remote_code`.
"""

from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForAudioClassification,
    AutoProcessor,
)

from .configuration_gemo_clap import GEmoClapConfig
from .feature_extraction_gemo_clap import GEmoClapAudioError, GEmoClapFeatureExtractor
from .loss_gemo_clap import gemo_clap_loss
from .modeling_gemo_clap import (
    GEmoClapClassifierOutput,
    GEmoClapForAudioClassification,
    GEmoClapModel,
    GEmoClapOutput,
)
from .pipelines import register_pipelines
from .processing_gemo_clap import GEmoClapProcessor

__version__ = "0.2.0"


def _register() -> None:
    AutoConfig.register(GEmoClapConfig.model_type, GEmoClapConfig, exist_ok=True)
    AutoModel.register(GEmoClapConfig, GEmoClapModel, exist_ok=True)
    AutoModelForAudioClassification.register(GEmoClapConfig, GEmoClapForAudioClassification, exist_ok=True)
    AutoFeatureExtractor.register(GEmoClapConfig, GEmoClapFeatureExtractor, exist_ok=True)
    AutoProcessor.register(GEmoClapConfig, GEmoClapProcessor, exist_ok=True)
    # Saved folders carry `auto_map` and these files, so `trust_remote_code=True` works without the package.
    GEmoClapConfig.register_for_auto_class()
    GEmoClapModel.register_for_auto_class("AutoModel")
    GEmoClapForAudioClassification.register_for_auto_class("AutoModelForAudioClassification")
    GEmoClapFeatureExtractor.register_for_auto_class("AutoFeatureExtractor")
    GEmoClapProcessor.register_for_auto_class("AutoProcessor")
    register_pipelines()


_register()


def __getattr__(name):
    # The trainer pulls in accelerate/datasets; import it only when asked for.
    if name in ("GEmoClapTrainer", "GEmoClapDataCollator"):
        from .training import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "GEmoClapConfig",
    "GEmoClapModel",
    "GEmoClapForAudioClassification",
    "GEmoClapOutput",
    "GEmoClapClassifierOutput",
    "GEmoClapFeatureExtractor",
    "GEmoClapProcessor",
    "GEmoClapAudioError",
    "GEmoClapTrainer",
    "GEmoClapDataCollator",
    "gemo_clap_loss",
    "__version__",
]
