"""Crop stage: where the Cogs are in a frame (nametag search and verification, proposers)."""
