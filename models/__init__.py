"""The shipped ONNX model and its model card."""
