"""Paper configurations and loaders for the papers' official data layouts (ISIC 2018, ChestX-ray14)."""
