"""Writes for users: accounts made by a project's owners and managers from the browser.

Django's admin site (``/admin/``, staff only) stays the place for staff accounts; this is the
everyday way in for annotators and reviewers, so that nobody needs the admin site or a shell
to bring a person onto a project.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.cache import cache
from django.core.exceptions import ValidationError

from annotation.common.exceptions import ApplicationError

USERNAME_MAX = 150  # AbstractUser.username
PASSWORD_MAX = 128  # long enough for any passphrase, short enough to bound the hashing work

# Accounts one person may create per hour: enough to onboard a team, too few to fill the user
# table from one stolen session.
ACCOUNTS_PER_HOUR = 50

# Used when the settings name no validators of their own (Django's defaults then check
# nothing): the four Django ships, as `startproject` configures them.
DEFAULT_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]


class TooManyAccounts(ApplicationError):
    status_code = 429
    code = "throttled"


def _validators() -> list[Any]:
    config = getattr(settings, "AUTH_PASSWORD_VALIDATORS", None) or DEFAULT_PASSWORD_VALIDATORS
    return password_validation.get_password_validators(config)


def check_username(username: str) -> str:
    """The username, stripped, if it is well formed and free; else 400 naming the problem."""
    username = (username or "").strip()
    if not username or len(username) > USERNAME_MAX:
        raise ApplicationError(f"a username has 1 to {USERNAME_MAX} characters")
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError as exc:
        raise ApplicationError(f"username: {' '.join(exc.messages)}") from exc
    if get_user_model().objects.filter(username__iexact=username).exists():
        raise ApplicationError(
            f"the username {username!r} is taken; to add that person, use Add member"
        )
    return username


def check_password(password: str, user: Any) -> None:
    """400 with Django's own messages when ``password`` is too weak (or too long) for ``user``."""
    if not isinstance(password, str) or len(password) > PASSWORD_MAX:
        raise ApplicationError(f"a password has at most {PASSWORD_MAX} characters")
    try:
        password_validation.validate_password(password, user, _validators())
    except ValidationError as exc:
        raise ApplicationError(
            "password: " + " ".join(exc.messages), extra={"password": exc.messages}
        ) from exc


def account_quota_take(*, by: Any) -> None:
    """Count one account created by ``by`` this hour; 429 past :data:`ACCOUNTS_PER_HOUR`."""
    window = int(time.time()) // 3600
    key = f"accounts-created:{by.pk}:{window}"
    cache.add(key, 0, timeout=3600 + 60)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between the two calls
        cache.set(key, 1, timeout=3600 + 60)
        count = 1
    if count > ACCOUNTS_PER_HOUR:
        raise TooManyAccounts(
            f"at most {ACCOUNTS_PER_HOUR} accounts an hour; try again later",
            extra={"retry_after": 3600 - int(time.time()) % 3600},
        )


def user_create(*, username: str, password: str) -> Any:
    """A new, active, non-staff account with ``password`` (validated before anything is saved).

    Callers run it inside their own transaction when more must succeed with it (a membership).
    """
    username = check_username(username)
    user = get_user_model()(username=username)
    check_password(password, user)
    user.set_password(password)
    user.save()
    return user
