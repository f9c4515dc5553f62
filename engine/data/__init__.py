"""Torch-free data layer: image formats, source walking, import pipeline, training cache."""
