from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """A person using the platform. Roles are per project (see ``projects.Membership``)."""
