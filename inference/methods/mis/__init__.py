"""MIS: unsupervised multi-granularity region proposals from a Ward merge tree of patch features."""
from .predictor import MISPredictor, build_mis, build_tree
from .tree import MergeTree
from .ward import grid_edges, ward_tree

__all__ = ["MISPredictor", "MergeTree", "build_mis", "build_tree", "grid_edges", "ward_tree"]
