"""Jobs of a project's datasets: launch on a dataset, list, follow, cancel.

The HTTP side of ``annotation.jobs``, here with the access rules (``projects.access``) and the
datasets a job runs on: the jobs app itself knows no other app."""

from __future__ import annotations

from typing import Any, ClassVar

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation.common.apis import validated
from annotation.common.exceptions import NotFound
from annotation.jobs.engine import FORMS, INTERNAL, RUNNERS
from annotation.jobs.lease import lease_info
from annotation.jobs.models import Job
from annotation.jobs.services import job_cancel, job_launch, jobs_sweep
from annotation.projects.access import require_admin, require_role, role_for_object
from annotation.projects.models import SEE_ALL_ROLES

from .selectors import dataset_for


class JobOut(serializers.ModelSerializer):
    progress = serializers.FloatField(read_only=True)
    stage = serializers.SerializerMethodField(
        help_text="what a long job is doing (its stage, e.g. training)"
    )
    lease = serializers.SerializerMethodField(
        help_text="the worker of an active job: status alive / lost / resuming, worker, attempts, "
        "max_attempts, last_beat_s (seconds since its last heartbeat), lease_until"
    )

    def get_stage(self, job: Job) -> str | None:
        return job.cursor.get("stage") if isinstance(job.cursor, dict) else None

    def get_lease(self, job: Job) -> dict | None:
        return lease_info(job)

    class Meta:
        model = Job
        fields: ClassVar[list[str]] = [
            "id",
            "project",
            "dataset",
            "kind",
            "params",
            "state",
            "done",
            "total",
            "progress",
            "stage",
            "error",
            "result",
            "result_file",
            "cancel_requested",
            "launched_by",
            "created_at",
            "started_at",
            "finished_at",
            "worker",
            "attempts",
            "heartbeat_at",
            "lease_until",
            "lease",
        ]


def launchable() -> list[tuple[str, str]]:
    """The kinds a launcher may start: all but those their own app starts (a model import is
    started by the model upload, never by a launcher: it rewrites a model row, which a job of
    a dataset has no business naming)."""
    return [(kind, kind) for kind in sorted(RUNNERS) if kind not in INTERNAL]


class JobIn(serializers.Serializer):
    dataset_id = serializers.IntegerField(min_value=1, max_value=2**63 - 1)
    kind = serializers.ChoiceField(choices=[])
    params = serializers.DictField(required=False, default=dict)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # read when used, not when this module is imported: the kinds register in ready()
        self.fields["kind"].choices = launchable()


class JobListApi(APIView):
    @extend_schema(responses=JobOut(many=True))
    def get(self, request, project_id: int):
        require_role(request.user, project_id, SEE_ALL_ROLES, "see jobs")
        # a job whose worker died is resumed or failed, not shown as running
        jobs_sweep(project_id=project_id)
        return Response(JobOut(Job.objects.filter(project_id=project_id)[:200], many=True).data)

    @extend_schema(request=JobIn, responses={201: JobOut, 409: None})
    def post(self, request, project_id: int):
        require_admin(request.user, project_id, "launch jobs")
        data = validated(JobIn, request.data)
        dataset, _ = dataset_for(request.user, data["dataset_id"])
        if dataset.project_id != project_id:
            raise NotFound(f"dataset {data['dataset_id']} not found")
        job = job_launch(
            dataset=dataset, kind=data["kind"], params=data["params"], user=request.user
        )
        return Response(JobOut(job).data, status=201)


def _job_for(request, job_id: int) -> Job:
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        raise NotFound(f"job {job_id} not found")
    role_for_object(
        request.user, job.project_id, f"job {job_id} not found", SEE_ALL_ROLES, "see jobs"
    )
    return job


class JobDetailApi(APIView):
    @extend_schema(responses=JobOut)
    def get(self, request, job_id: int):
        return Response(JobOut(_job_for(request, job_id)).data)


class JobCancelApi(APIView):
    @extend_schema(request=None, responses=JobOut)
    def post(self, request, job_id: int):
        job = _job_for(request, job_id)
        require_admin(request.user, job.project_id, "cancel jobs")
        return Response(JobOut(job_cancel(job=job)).data)


class JobKindsApi(APIView):
    """The kinds the Jobs page launches, in menu order, each with its form: label, progress
    unit, stage names and parameters (``inference.Param`` as JSON); any signed-in user."""

    @extend_schema(responses={200: None})
    def get(self, request):
        forms = [{"kind": kind, **FORMS[kind]()} for kind, _ in launchable() if kind in FORMS]
        # each form's "order" places it (the pipeline's order: proposals, pseudo masks,
        # training, then the platform's own kinds); kinds of one order by name
        forms.sort(key=lambda form: (form.get("order", 0), form["kind"]))
        return Response(forms)
