"""Batch work on a dataset that needs ``inference``: the pseudo-label and training job kinds
(registered when Django loads, see ``..apps``), their training data, and model file imports."""
