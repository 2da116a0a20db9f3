from django.db import migrations, models


def launched_queues(apps, schema_editor):
    """Jobs launched before this field: the queue their kind had then (model work on the batch
    workers, the rest on the default queue)."""
    Job = apps.get_model("jobs", "Job")
    Job.objects.filter(kind__in=["mis", "exits", "train", "model_import"]).update(queue="batch")


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0005_kind_from_registry"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="queue",
            field=models.CharField(default="default", max_length=200),
        ),
        migrations.RunPython(launched_queues, migrations.RunPython.noop),
    ]
