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
    """An image stored upright (EXIF rotation applied) in the media store.

    ``sha256`` is the digest of the bytes as uploaded; a dataset holds each digest once;
    ``file_sha256`` the digest of the bytes stored (different only for a rotated image).
    ``original_name`` is the file's base name (what the grid shows); ``source_path`` is the
    path it came under (the member path inside a zip, e.g. ``images/0001.jpg``), kept so
    that a COCO ``file_name`` naming either one finds the image.
    """

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="images")
    file = models.CharField(max_length=500)  # name in the media store (annotation.common.media)
    thumbnail = models.CharField(max_length=500)
    original_name = models.CharField(max_length=500)
    source_path = models.CharField(max_length=500, blank=True, default="")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    sha256 = models.CharField(max_length=64)
    # digest of the stored bytes: differs from ``sha256`` when EXIF rotation was applied; what
    # a worker's media cache checks its copy against ("" for rows stored before it existed)
    file_sha256 = models.CharField(max_length=64, blank=True, default="")
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
            # names of attached buckets' objects: read_rgb's checksum by name, a source's
            # images by prefix (pattern ops: a LIKE 'bucket/3/%' uses it)
            models.Index(
                fields=["file"], name="datasets_image_file", opclasses=["varchar_pattern_ops"]
            ),
        ]

    def __str__(self) -> str:
        return self.original_name


class BucketSource(BaseModel):
    """A bucket of an S3-compatible store whose objects a project's datasets may attach
    (``annotation.datasets.attach``): the images stay in the bucket, read with these
    credentials; the platform's own store keeps only their thumbnails.

    The access key id and secret are stored encrypted (``annotation.datasets.buckets``) and
    leave this row only decrypted into a storage client: never through the API, never in a log.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="bucket_sources")
    name = models.CharField(max_length=200)
    endpoint_url = models.CharField(max_length=500, blank=True, default="")  # "": AWS S3 itself
    bucket = models.CharField(max_length=255)
    region = models.CharField(max_length=64, default="us-east-1")
    prefix = models.CharField(max_length=500, blank=True, default="")  # every key is under it
    access_key_id_encrypted = models.TextField(blank=True, default="")
    secret_access_key_encrypted = models.TextField(blank=True, default="")
    # what the API shows of the key id, so that people can tell two sources apart
    access_key_id_last4 = models.CharField(max_length=4, blank=True, default="")

    class Meta:
        ordering: ClassVar[list[str]] = ["id"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["project", "name"], name="unique_bucket_source_name")
        ]

    def __str__(self) -> str:
        return self.name
