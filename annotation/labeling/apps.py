from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "annotation.labeling"
    label = "labeling"
