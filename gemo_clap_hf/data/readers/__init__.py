"""One reader per public corpus layout; each returns `Utterance` records for `build_dataset`."""

from .crema_d import read_crema_d
from .emobox import read_emobox
from .emobox_schema import EmoBoxError, EmoBoxFileNotFoundError
from .iemocap import read_iemocap
from .manifest import read_manifest
from .msp_podcast import read_msp_podcast
from .ravdess import read_ravdess

__all__ = [
    "EmoBoxError",
    "EmoBoxFileNotFoundError",
    "read_crema_d",
    "read_emobox",
    "read_iemocap",
    "read_manifest",
    "read_msp_podcast",
    "read_ravdess",
]
