"""Render Cogs from the game's own 3D models: training crops, street scenes, demo atlas, contact sheet."""
