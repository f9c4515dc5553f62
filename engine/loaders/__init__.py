"""Tensor-side data: ArrayData, the two-stream sampler and batched augmentation."""
