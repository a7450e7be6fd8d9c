"""Evaluating runs: retrieval metrics for embeddings, plots, and comparing a sweep's runs."""
