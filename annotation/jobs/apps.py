from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "annotation.jobs"
    label = "jobs"
