from django.apps import AppConfig


class ModelStoreConfig(AppConfig):
    name = "annotation.modelstore"
    label = "modelstore"
