from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "annotation.datasets"
    label = "datasets"

    def ready(self) -> None:
        # Every process (web, workers) then opens stored images under the configured pixel
        # limit, not Pillow's own 89.5 M: an image ingest accepted must open everywhere.
        from annotation.common import media

        from .ingest import use_configured_pixel_limit

        use_configured_pixel_limit()
        # The `verify` and `attach` job kinds, and dataset/image/bucket ids in job parameters,
        # in every process; names of attached buckets' objects (bucket/<source id>/<key>) read
        # through their source.
        from . import attach, buckets, runners  # noqa: F401

        media.register_external(buckets.PREFIX, buckets.resolve)
