"""Naming the Cogs: the onnxruntime classifier."""
