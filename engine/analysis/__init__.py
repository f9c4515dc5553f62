"""Pure-numpy analysis of predictions: uncertainty scores, kNN relations, 2-D maps, AL strategies, reports."""
