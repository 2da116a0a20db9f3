from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0009_prompt_candidate_kind"),
    ]

    operations = [
        migrations.AddField(
            model_name="instance",
            name="candidates",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
