"""Maskwright's Django apps. Only ``annotation.segmentation`` may import ``inference``."""
