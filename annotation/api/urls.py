"""Every API URL, mounted under /api/."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from annotation.datasets import apis as datasets
from annotation.datasets import bucket_apis as buckets
from annotation.datasets import job_apis as jobs
from annotation.exports import apis as exports
from annotation.labeling import annotator_apis as annotator
from annotation.labeling import apis as labeling
from annotation.labeling import review_apis as review
from annotation.modelstore import apis as models
from annotation.projects import apis as projects
from annotation.users import apis as users
from annotation.users.throttle import login_throttled

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    path("auth/token/", login_throttled(users.TokenApi.as_view())),
    path("me/", users.MeApi.as_view()),
    path("projects/", projects.ProjectListApi.as_view()),
    path("projects/<int:project_id>/", projects.ProjectDetailApi.as_view()),
    path("projects/<int:project_id>/members/", projects.MemberListApi.as_view()),
    path(
        "projects/<int:project_id>/members/<int:membership_id>/", projects.MemberDetailApi.as_view()
    ),
    path("projects/<int:project_id>/accounts/", projects.AccountCreateApi.as_view()),
    path("projects/<int:project_id>/labels/", projects.LabelListApi.as_view()),
    path("projects/<int:project_id>/labels/order/", projects.LabelOrderApi.as_view()),
    path("projects/<int:project_id>/labels/<int:label_id>/", projects.LabelDetailApi.as_view()),
    path("projects/<int:project_id>/datasets/", datasets.DatasetListApi.as_view()),
    path("projects/<int:project_id>/tasks/", labeling.TaskListApi.as_view()),
    path("projects/<int:project_id>/tasks/bulk/", labeling.TaskBulkApi.as_view()),
    path("projects/<int:project_id>/jobs/", jobs.JobListApi.as_view()),
    path("datasets/<int:dataset_id>/", datasets.DatasetDetailApi.as_view()),
    path("datasets/<int:dataset_id>/upload/", datasets.DatasetUploadApi.as_view()),
    path("datasets/<int:dataset_id>/upload/preview/", datasets.DatasetUploadPreviewApi.as_view()),
    path("datasets/<int:dataset_id>/images/", datasets.ImageListApi.as_view()),
    path("images/<int:image_id>/", datasets.ImageDetailApi.as_view()),
    path("images/<int:image_id>/file", datasets.ImageFileApi.as_view()),
    path("images/<int:image_id>/thumbnail", datasets.ImageThumbnailApi.as_view()),
    path("images/<int:image_id>/instances/", labeling.ImageInstancesApi.as_view()),
    path("instances/<int:instance_id>/", labeling.InstanceDetailApi.as_view()),
    path("instances/<int:instance_id>/prompts/", labeling.PromptListApi.as_view()),
    path("instances/<int:instance_id>/prompts/undo/", labeling.PromptUndoApi.as_view()),
    path("instances/<int:instance_id>/prompts/redo/", labeling.PromptRedoApi.as_view()),
    path("tasks/<int:task_id>/", labeling.TaskDetailApi.as_view()),
    path("jobs/kinds/", jobs.JobKindsApi.as_view()),
    path("jobs/<int:job_id>/", jobs.JobDetailApi.as_view()),
    path("jobs/<int:job_id>/cancel/", jobs.JobCancelApi.as_view()),
    path("jobs/<int:job_id>/download", exports.ExportDownloadApi.as_view()),
]

# Buckets of a project attached to its datasets (images read in place, never copied).
urlpatterns += [
    path("projects/<int:project_id>/bucket-sources/", buckets.BucketSourceListApi.as_view()),
    path("bucket-sources/<int:source_id>/", buckets.BucketSourceDetailApi.as_view()),
    path("bucket-sources/<int:source_id>/check/", buckets.BucketSourceCheckApi.as_view()),
    path("datasets/<int:dataset_id>/attach/", buckets.DatasetAttachApi.as_view()),
]

# The review queue of pseudo labels.
urlpatterns += [
    path("projects/<int:project_id>/review/", review.ReviewListApi.as_view()),
    path("projects/<int:project_id>/review/counts/", review.ReviewCountsApi.as_view()),
    path("projects/<int:project_id>/review/bulk/", review.ReviewBulkApi.as_view()),
    path("instances/<int:instance_id>/review/", review.InstanceReviewApi.as_view()),
    path("projects/<int:project_id>/fixes/", review.FixListApi.as_view()),
]

# The annotator's side: what of a task is done, the "done" mark, adopting a proposal.
urlpatterns += [
    path("tasks/<int:task_id>/progress/", annotator.TaskProgressApi.as_view()),
    path("tasks/<int:task_id>/images/<int:image_id>/done/", annotator.TaskImageDoneApi.as_view()),
    path("instances/<int:instance_id>/adopt/", annotator.ProposalAdoptApi.as_view()),
]

# Trained models (DynaMITe checkpoints, EXITS generators).
urlpatterns += [
    path("methods/", models.MethodsApi.as_view()),
    path("checkpoints/", models.CheckpointsApi.as_view()),
    path("projects/<int:project_id>/models/", models.ModelListApi.as_view()),
    path("models/<int:model_id>/", models.ModelDetailApi.as_view()),
    path("models/<int:model_id>/default/", models.ModelDefaultApi.as_view()),
]
