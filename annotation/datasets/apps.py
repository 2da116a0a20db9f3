from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "annotation.datasets"
    label = "datasets"

    def ready(self) -> None:
        # Every process (web, workers) then opens stored images under the configured pixel
        # limit, not Pillow's own 89.5 M: an image ingest accepted must open everywhere.
        from .ingest import use_configured_pixel_limit

        use_configured_pixel_limit()
        # The `verify` job kind, and dataset/image ids in job parameters, in every process.
        from . import runners  # noqa: F401
