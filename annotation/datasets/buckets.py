"""Buckets attached to a project's datasets: encrypted credentials, their storage, their names.

A :class:`~.models.BucketSource` names a bucket of an S3-compatible store (endpoint, bucket,
region, prefix) and the credentials to read it. The access key id and the secret are stored
encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from the setting
``MASKWRIGHT_CREDENTIALS_KEY``, or from ``SECRET_KEY`` when it is unset; they are decrypted
only into a storage client (:func:`source_storage`) and never returned, logged or put in a
message.

An image of an attached bucket is not copied: its ``Image.file`` is the name
``bucket/<source id>/<key>`` (the object's full key in the bucket, the source's prefix
included), which :mod:`annotation.common.media` resolves here (:func:`resolve`, registered by
the app's ``ready()``) to the source's own storage. A source with no credentials reads the
bucket anonymously (a public bucket), never with the host's own credentials.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from annotation.common import media
from annotation.common.exceptions import ApplicationError

from .models import BucketSource

PREFIX = "bucket"  # first component of the names of attached objects
# what a person fixes when the source fails, by failure (annotation.common.media_s3.diagnose)
FIELDS = {
    "credentials": "the source's access_key_id / secret_access_key",
    "endpoint": "the source's endpoint_url",
    "bucket": "the source's bucket",
}
_PART_FIELDS = {"credentials": "access_key_id", "endpoint": "endpoint_url", "bucket": "bucket"}


class BucketError(ApplicationError):
    """A bucket source cannot be used as configured (the message names the field)."""

    code = "bucket_source"


# -- credentials ------------------------------------------------------------------------------


def _fernet() -> Any:
    from cryptography.fernet import Fernet

    secret = getattr(settings, "MASKWRIGHT_CREDENTIALS_KEY", None) or settings.SECRET_KEY
    if not secret:
        raise BucketError("no key to encrypt credentials with: set MASKWRIGHT_CREDENTIALS_KEY")
    # any string becomes a 32-byte key; the label keeps it apart from other uses of the secret
    raw = hashlib.sha256(b"maskwright bucket credentials\0" + str(secret).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(raw))


def encrypt(value: str) -> str:
    """The token stored for ``value`` ("" stays "": no credential)."""
    return _fernet().encrypt(value.encode()).decode() if value else ""


def decrypt(token: str) -> str:
    from cryptography.fernet import InvalidToken

    if not token:
        return ""
    try:
        return str(_fernet().decrypt(token.encode()).decode())
    except InvalidToken:
        raise BucketError(
            "the stored credentials cannot be decrypted (MASKWRIGHT_CREDENTIALS_KEY or "
            "SECRET_KEY changed since they were saved): enter access_key_id and "
            "secret_access_key again"
        ) from None


def set_credentials(source: BucketSource, access_key_id: str, secret_access_key: str) -> None:
    """Store both credentials on ``source`` (not saved); "" and "" for anonymous access."""
    source.access_key_id_encrypted = encrypt(access_key_id)
    source.secret_access_key_encrypted = encrypt(secret_access_key)
    source.access_key_id_last4 = access_key_id[-4:] if len(access_key_id) >= 8 else ""


# -- names of attached objects ----------------------------------------------------------------


def external_name(source_id: int, key: str) -> str:
    return f"{PREFIX}/{source_id}/{key}"


def split_name(name: str) -> tuple[int, str] | None:
    """(source id, object key) of an attached object's name; None for other names."""
    parts = name.split("/", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1].isdigit() or not parts[2]:
        return None
    return int(parts[1]), parts[2]


def names_prefix(source_id: int) -> str:
    return f"{PREFIX}/{source_id}/"


# -- storage ----------------------------------------------------------------------------------


def _origin(url: str) -> tuple[str, str, int | None]:
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
        return scheme, (parts.hostname or "").lower(), port
    except ValueError:  # a port that is not a number
        return "", "", None


def _internal(host: str) -> bool:
    """``host`` (a name or an address) is, or resolves to, a loopback, private, link-local or
    otherwise non-public address. A name that does not resolve now is not refused here: the
    store's own connection then fails with its clear error."""
    import ipaddress
    import socket

    if not host:
        return False
    try:
        addresses = {ipaddress.ip_address(host.strip("[]"))}
    except ValueError:
        if host == "localhost" or host.endswith(".localhost"):
            return True
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError):
            return False
        addresses = {ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos}
    return any(not a.is_global for a in addresses)


def allow_endpoint(endpoint_url: str) -> None:
    """Refuse an endpoint outside ``MASKWRIGHT_BUCKET_ENDPOINTS`` when that is set, and one on
    this host's own network when it is not: the workers fetch what it names, so a tenant must
    not point it at the host's own services."""
    allowed = [a.strip() for a in getattr(settings, "MASKWRIGHT_BUCKET_ENDPOINTS", []) if a]
    if not allowed:
        # no list: any endpoint on the internet, none of this host's own network (loopback,
        # private, link-local: a metadata service, a database); a MinIO beside the platform
        # is named in the list
        host = _origin(endpoint_url)[1]
        if endpoint_url and _internal(host):
            raise BucketError(
                f"endpoint_url {endpoint_url!r} is on this server's own network; an admin of "
                "the server allows it by naming it in MASKWRIGHT_BUCKET_ENDPOINTS",
                extra={"field": "endpoint_url"},
            )
        return
    if not endpoint_url and "aws" in allowed:
        return
    # the same scheme, host and port: a prefix match would let http://minio.example pass
    # for http://minio.example.attacker.net
    origin = _origin(endpoint_url)
    if endpoint_url and any(_origin(a) == origin for a in allowed if a != "aws"):
        return
    raise BucketError(
        f"endpoint_url {endpoint_url or '(AWS S3)'!r} is not one this server attaches buckets "
        "from (MASKWRIGHT_BUCKET_ENDPOINTS)",
        extra={"field": "endpoint_url"},
    )


def where(source: BucketSource) -> str:
    """The source for messages: never its credentials."""
    endpoint = source.endpoint_url or "AWS S3"
    return f"bucket source {source.name!r}: bucket {source.bucket!r} at {endpoint}"


def client_config(anonymous: bool) -> Any:
    """A dead endpoint fails in seconds (botocore retries a refused connection for a minute
    by default); path addressing works on MinIO, Ceph and AWS alike."""
    import botocore
    from botocore.config import Config

    return Config(
        s3={"addressing_style": "path"},
        signature_version=botocore.UNSIGNED if anonymous else "s3v4",
        connect_timeout=5,
        read_timeout=60,
        retries={"max_attempts": 2, "mode": "standard"},
    )


# (source id, updated_at) → its storage: a changed row builds a new one, with what it says now
_storages: dict[tuple[int, str], Any] = {}
_lock = threading.Lock()


def source_storage(source: BucketSource) -> Any:
    """django-storages' S3Storage on the source's bucket (keys are full keys: no location)."""
    from storages.backends.s3 import S3Storage

    allow_endpoint(source.endpoint_url)  # again at use: the setting may have changed since
    cache_key = (source.id, source.updated_at.isoformat() if source.updated_at else "")
    with _lock:
        found = _storages.get(cache_key)
    if found is not None:
        return found
    access_key = decrypt(source.access_key_id_encrypted)
    secret = decrypt(source.secret_access_key_encrypted)
    store = S3Storage(
        endpoint_url=source.endpoint_url or None,
        bucket_name=source.bucket,
        access_key=access_key or None,
        secret_key=secret or None,
        region_name=source.region or "us-east-1",
        location="",
        file_overwrite=False,
        default_acl=None,
        querystring_auth=True,
        client_config=client_config(anonymous=not (access_key and secret)),
    )
    with _lock:
        for stale in [k for k in _storages if k[0] == source.id]:
            del _storages[stale]
        _storages[cache_key] = store
    return store


def external(source: BucketSource, key: str) -> media.External:
    return media.External(source_storage(source), key, where(source), FIELDS)


def resolve(name: str) -> media.External:
    """What :mod:`annotation.common.media` reads for ``bucket/<source id>/<key>``."""
    parsed = split_name(name)
    if parsed is None:
        raise FileNotFoundError(f"{name} is not the name of an attached object")
    source = BucketSource.objects.filter(pk=parsed[0]).first()
    if source is None:
        raise FileNotFoundError(f"{name}: its bucket source {parsed[0]} no longer exists")
    return external(source, parsed[1])


def full_prefix(source: BucketSource, prefix: str) -> str:
    """The key prefix an attach lists: the source's prefix, then the attach's own."""
    parts = [p.strip("/") for p in (source.prefix, prefix) if p and p.strip("/")]
    return "/".join(parts) + "/" if parts else ""


def client(source: BucketSource) -> Any:
    return source_storage(source).connection.meta.client


def check(source: BucketSource, prefix: str = "") -> int:
    """List one page under the prefix: reachable endpoint, existing bucket, accepted
    credentials. Returns how many keys that page had (at most 1000); raises
    :class:`BucketError` naming the field to fix."""
    try:
        with media.translated("list the bucket", external(source, "")):
            reply = client(source).list_objects_v2(
                Bucket=source.bucket, Prefix=full_prefix(source, prefix), MaxKeys=1000
            )
    except media.StorageError as exc:
        # the form field a person fixes, as the other refusals of a source name theirs
        field = _PART_FIELDS.get(exc.extra.get("part", ""))
        raise BucketError(exc.message, extra={"field": field} if field else None) from None
    except ValueError as exc:  # botocore refuses a malformed endpoint URL or bucket name
        raise BucketError(f"the bucket source is malformed ({exc}) — {where(source)}") from None
    return int(reply.get("KeyCount", len(reply.get("Contents", []))))


def images_of(source_id: int) -> int:
    """How many images of any dataset are objects of this source."""
    from .models import Image

    return Image.objects.filter(file__startswith=names_prefix(source_id)).count()
