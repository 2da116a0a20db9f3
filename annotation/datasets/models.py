from typing import ClassVar

from django.db import models

from annotation.common.models import BaseModel
from annotation.projects.models import Project


class Dataset(BaseModel):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="datasets")
    name = models.CharField(max_length=200)

    def __str__(self) -> str:
        return self.name


class Image(BaseModel):
    """An image stored upright (EXIF rotation applied) under MEDIA_ROOT.

    ``sha256`` is the digest of the bytes as uploaded; a dataset holds each digest once.
    ``original_name`` is the file's base name (what the grid shows); ``source_path`` is the
    path it came under (the member path inside a zip, e.g. ``images/0001.jpg``), kept so
    that a COCO ``file_name`` naming either one finds the image.
    """

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="images")
    file = models.CharField(max_length=500)  # path relative to MEDIA_ROOT
    thumbnail = models.CharField(max_length=500)
    original_name = models.CharField(max_length=500)
    source_path = models.CharField(max_length=500, blank=True, default="")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    format = models.CharField(max_length=10)  # the format as uploaded: JPEG, PNG, ...
    size_bytes = models.BigIntegerField()

    class Meta:
        ordering: ClassVar[list[str]] = ["id"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["dataset", "sha256"], name="unique_image_per_dataset")
        ]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["dataset", "original_name"]),
            models.Index(fields=["dataset", "source_path"], name="datasets_image_source_path"),
        ]

    def __str__(self) -> str:
        return self.original_name
