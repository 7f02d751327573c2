"""The learned Cog detector: rendered scenes, training, ONNX export (issue 13)."""
