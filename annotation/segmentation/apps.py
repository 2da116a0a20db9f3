from django.apps import AppConfig


class SegmentationConfig(AppConfig):
    """No models: an app so that its job kinds register in every process (web, workers)."""

    name = "annotation.segmentation"
    label = "segmentation"

    def ready(self) -> None:
        # The batch job kinds (`mis`, `exits`, `train`): torch-free to import, the work loads
        # ``inference`` inside the runners, on a batch worker.
        from . import exits_job, jobs, train_job  # noqa: F401
