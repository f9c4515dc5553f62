"""Trained checkpoint -> predictions, uncertainty inputs, embeddings, masks, TorchScript exports."""
