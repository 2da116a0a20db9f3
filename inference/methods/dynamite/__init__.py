"""DynaMITe: multi-instance interactive segmentation, clicks as transformer queries (spec A)."""
from .checkpoint import convert_to_safetensors, load_model, save_model
from .model import (ClickSet, DecodeOutput, DynaMITe, DynamiteConfig, ImageFeatures, Resize, normalise_batch,
                    object_logits, preprocess)
from .predictor import DynamitePredictor, build_dynamite, label_map

__all__ = ["ClickSet", "DecodeOutput", "DynaMITe", "DynamiteConfig", "DynamitePredictor", "ImageFeatures",
           "Resize", "build_dynamite", "convert_to_safetensors", "label_map", "load_model", "normalise_batch",
           "object_logits", "preprocess", "save_model"]
