import importlib
import pkgutil

from django.apps import AppConfig


class SegmentationConfig(AppConfig):
    """No models: an app so that its job kinds register in every process (web, workers)."""

    name = "annotation.segmentation"
    label = "segmentation"

    def ready(self) -> None:
        # Every module of ``batch`` registers its job kinds: torch-free to import, the work
        # loads ``inference`` inside the runners, on a batch worker.
        from . import batch

        for module in pkgutil.iter_modules(batch.__path__):
            importlib.import_module(f"{batch.__name__}.{module.name}")
