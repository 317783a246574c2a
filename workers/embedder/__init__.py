"""Embeds chunks in batches, through a Redis embedding cache."""
