from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "annotation.users"
    label = "users"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_login_failed

        from .throttle import on_login_failed

        user_login_failed.connect(on_login_failed, dispatch_uid="maskwright-login-throttle")
