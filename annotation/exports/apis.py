"""Download the zip of a finished export job."""

from __future__ import annotations

from pathlib import PurePosixPath

from django.http import FileResponse
from drf_spectacular.utils import extend_schema
from rest_framework.views import APIView

from annotation.common import media
from annotation.common.exceptions import ApplicationError, NotFound
from annotation.jobs.models import Job
from annotation.projects.access import role_for_object
from annotation.projects.models import ADMIN_ROLES


class ExportDownloadApi(APIView):
    @extend_schema(responses={(200, "application/zip"): bytes})
    def get(self, request, job_id: int):
        job = Job.objects.filter(pk=job_id, kind=Job.Kind.EXPORT).first()
        if job is None:
            raise NotFound(f"export {job_id} not found")
        role_for_object(
            request.user,
            job.project_id,
            f"export {job_id} not found",
            ADMIN_ROLES,
            "download exports",
        )
        if job.state != Job.State.SUCCEEDED or not job.result_file:
            raise ApplicationError(
                f"export {job_id} is {job.state}, there is nothing to download yet"
            )
        # Streamed from the media store (local file or bucket object), never a bucket link.
        try:
            handle = media.open_stream(job.result_file)
        except (FileNotFoundError, ValueError):
            raise NotFound(f"the file of export {job_id} is gone") from None
        return FileResponse(
            handle,
            as_attachment=True,
            filename=PurePosixPath(job.result_file).name,
            content_type="application/zip",
        )
