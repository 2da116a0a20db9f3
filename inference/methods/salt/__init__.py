"""SALT: scribbles of several classes → a label map, by label spreading over patch features."""
from .predictor import LabelMapResult, SALTPredictor, build_salt
from .spreading import build_graph, spread

__all__ = ["LabelMapResult", "SALTPredictor", "build_graph", "build_salt", "spread"]
