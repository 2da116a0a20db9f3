from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "annotation.web"
    label = "web"
