"""Measuring tools: bench (speed) and replay (accuracy on rendered streets)."""
