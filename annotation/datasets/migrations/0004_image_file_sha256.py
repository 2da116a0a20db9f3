"""Image.file_sha256: the digest of the stored bytes, checked by the workers' media caches.

Rows stored before keep "" (unknown): a cache then trusts the digest it recorded when it
fetched the file."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("datasets", "0003_image_source_path")]

    operations = [
        migrations.AddField(
            model_name="image",
            name="file_sha256",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
    ]
