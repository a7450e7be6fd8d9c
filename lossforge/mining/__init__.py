"""Metric-learning tuples: distances between embeddings, index-tuple helpers, and the miners."""
