from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "annotation.projects"
    label = "projects"

    def ready(self) -> None:
        # Job parameters may name labels (``label_id``) of the job's own project, in every process.
        from annotation.jobs.params import project_rows, register_id_param

        from .models import LabelClass

        register_id_param("label", project_rows(LabelClass))
