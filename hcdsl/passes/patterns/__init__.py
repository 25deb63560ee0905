"""The optimiser's rewrite patterns, one per file."""
