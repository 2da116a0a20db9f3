from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "annotation.jobs"
    label = "jobs"

    def ready(self) -> None:
        # A worker that runs jobs sweeps the jobs of dead workers (Celery's worker signals;
        # they never fire in the web process). The job kinds themselves register from the
        # apps that own their work, in their own ready().
        from . import sweeper  # noqa: F401
