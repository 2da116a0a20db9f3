from django.urls import path

from annotation.labeling.consumers import AnnotateConsumer

from .consumers import ProjectEventsConsumer

websocket_urlpatterns = [
    path("ws/projects/<int:project_id>/events/", ProjectEventsConsumer.as_asgi()),
    path("ws/annotate/", AnnotateConsumer.as_asgi()),
]
