"""Classifier backbones; importing this package registers every model in MODELS."""
from engine.models.classifier import MODELS, Classifier
from engine.models.factory import create_model

__all__ = ["MODELS", "Classifier", "create_model"]
