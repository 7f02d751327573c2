"""ToonVision Live: a real-time overlay naming every Cog on a Toontown screen.

The runtime package imports without TensorFlow; the offline toolkit lives in
the separate ``training`` package (install the ``[train]`` extra).
"""

__version__ = "0.1.0"
