"""EXITS (Lee et al., CVPR 2024): pseudo masks from four extreme points per object.

Stage 1 only (spec B1–B5): a similarity extractor propagates the extreme points to pseudo
foreground/background points, which with MIL, point and CRF losses train a pseudo-label
generator; the generator then labels every object (:func:`run_exits`, COCO json out). The
``exits`` interactive method turns four extreme clicks into a mask.
"""
from .batch import records_from_coco, run_exits
from .generator import PseudoLabelGenerator, build_generator, load_generator, save_generator
from .points import extreme_points_from_mask
from .predictor import ExitsPredictor, build_exits
from .train import ExitsConfig

__all__ = ["ExitsConfig", "ExitsPredictor", "PseudoLabelGenerator", "build_exits", "build_generator",
           "extreme_points_from_mask", "load_generator", "records_from_coco", "run_exits",
           "save_generator"]
