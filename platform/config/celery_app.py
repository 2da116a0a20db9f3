"""The Celery application: queues `interactive`, `batch` and `default`, tasks found per app."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("maskwright")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = (Queue("interactive"), Queue("batch"), Queue("default"))
app.autodiscover_tasks()
