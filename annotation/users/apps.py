from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "annotation.users"
    label = "users"
