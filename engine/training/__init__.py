"""The one training loop: budget planning, validation, checkpoints, DDP; imports nothing above it."""
