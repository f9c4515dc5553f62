"""Eval-mode forward passes and the metrics on their outputs: shared by validation (training) and inference."""
