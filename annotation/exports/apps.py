from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "annotation.exports"
    label = "exports"

    def ready(self) -> None:
        # Registers the `export` job runner with the jobs engine in every process (web, workers),
        # so jobs.services accepts the kind and jobs.tasks finds the runner.
        from . import runners  # noqa: F401
