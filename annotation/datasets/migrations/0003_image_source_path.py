"""Image.source_path: the path an image was uploaded under; original_name keeps the base name.

Rows stored before kept the zip's member path (``images/0001.jpg``) as their name: it moves to
``source_path`` and the name becomes its base name."""

from django.db import migrations, models

_BATCH = 2000


def split_names(apps, schema_editor):
    Image = apps.get_model("datasets", "Image")
    rows = Image.objects.filter(source_path="").only("id", "original_name").order_by("id")
    batch = []
    for image in rows.iterator(chunk_size=_BATCH):
        image.source_path = image.original_name
        image.original_name = image.original_name.replace("\\", "/").rsplit("/", 1)[-1]
        batch.append(image)
        if len(batch) >= _BATCH:
            Image.objects.bulk_update(batch, ["source_path", "original_name"])
            batch = []
    Image.objects.bulk_update(batch, ["source_path", "original_name"])


def join_names(apps, schema_editor):
    Image = apps.get_model("datasets", "Image")
    Image.objects.exclude(source_path="").update(original_name=models.F("source_path"))


class Migration(migrations.Migration):
    dependencies = [("datasets", "0002_initial")]

    operations = [
        migrations.AddField(
            model_name="image",
            name="source_path",
            field=models.CharField(blank=True, default="", max_length=500),
        ),
        migrations.RunPython(split_names, join_names),
        migrations.AddIndex(
            model_name="image",
            index=models.Index(
                fields=["dataset", "source_path"], name="datasets_image_source_path"
            ),
        ),
    ]
