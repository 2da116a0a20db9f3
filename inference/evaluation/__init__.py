"""Evaluation harness: datasets, click simulation, metrics and loops (RITM's decomposition).

::

    from inference import build_predictor
    from inference.evaluation import load_dataset, evaluate_dataset, single_summary

    results = evaluate_dataset(build_predictor("opencv-grabcut"), load_dataset("data/grabcut"))
    single_summary([r.ious for r in results])["NoC@90"]

The ``opencv-grabcut`` baseline is a method like the others (:mod:`inference.methods.grabcut`).
The command line is :func:`inference.evaluation.cli.main`.
"""

from .clicker import DEFAULT_EXCLUSION_RADIUS, Clicker, ClickSimulator
from .datasets import CocoDataset, FolderDataset, Sample, load_dataset
from .loop import (
    EmptyObjectError,
    MultiSampleResult,
    SampleResult,
    evaluate_dataset,
    evaluate_multi_dataset,
    evaluate_multi_sample,
    evaluate_sample,
)
from .metrics import iou, mist_summary, noc, single_summary
from .multi_instance import MultiInstancePredictor, PerObjectAdapter, as_multi_instance
from .strategies import STRATEGIES

__all__ = [
    "DEFAULT_EXCLUSION_RADIUS",
    "STRATEGIES",
    "ClickSimulator",
    "Clicker",
    "CocoDataset",
    "EmptyObjectError",
    "FolderDataset",
    "MultiInstancePredictor",
    "MultiSampleResult",
    "PerObjectAdapter",
    "Sample",
    "SampleResult",
    "as_multi_instance",
    "evaluate_dataset",
    "evaluate_multi_dataset",
    "evaluate_multi_sample",
    "evaluate_sample",
    "iou",
    "load_dataset",
    "mist_summary",
    "noc",
    "single_summary",
]
