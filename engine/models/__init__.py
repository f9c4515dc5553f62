"""Classifier backbones; importing this package registers every model in MODELS."""
from engine.models import small_cnn, torchvision_backbones  # noqa: F401  (registration)
from engine.models.factory import MODELS, Classifier, create_model

__all__ = ["MODELS", "Classifier", "create_model"]
