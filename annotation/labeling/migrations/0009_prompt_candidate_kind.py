from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('labeling', '0008_instance_pseudo'),
    ]

    operations = [
        migrations.AlterField(
            model_name='prompt',
            name='kind',
            field=models.CharField(choices=[('click', 'Click'), ('box', 'Box'), ('scribble', 'Scribble'), ('extreme_points', 'Extreme Points'), ('text', 'Text'), ('edit', 'Edit'), ('candidate', 'Candidate')], max_length=16),
        ),
    ]
