"""ToonVision Live offline toolkit: render, dataset tools, train, tune, evaluate, export (needs the [train] extra for most of it)."""
