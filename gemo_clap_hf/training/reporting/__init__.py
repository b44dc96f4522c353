"""What a training run writes besides the weights: the model card (README.md of the saved model) and the
confusion-matrix picture. Training outputs, so they live beside `training/` (and the library never imports
`cli/`)."""

from .model_card import load_template, render_model_card, summarize_config, write_model_card
from .plots import save_confusion_matrix_png

__all__ = ["load_template", "render_model_card", "save_confusion_matrix_png", "summarize_config", "write_model_card"]
