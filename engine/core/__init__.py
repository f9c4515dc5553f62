"""Foundations every stage imports: run configuration, devices/seeds, checkpoint files, name registries."""
