from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "annotation.common"
    label = "common"
