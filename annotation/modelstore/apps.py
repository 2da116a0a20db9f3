from django.apps import AppConfig


class ModelStoreConfig(AppConfig):
    name = "annotation.modelstore"
    label = "modelstore"

    def ready(self) -> None:
        # The `model_import` job kind, and model ids in job parameters, in every process.
        from . import runners  # noqa: F401
