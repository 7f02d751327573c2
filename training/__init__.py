"""ToonVision Live offline toolkit: render, dataset tools, train, tune, evaluate, export.

Most of it needs the [train] extra (TensorFlow, tf2onnx, keras-tuner, matplotlib, panda3d).
"""
