"""What the media store does only on S3: reasons for its failures, and its cheap writes.

Kept apart from :mod:`.media` (the store-neutral API) because none of it applies to local disk;
boto3 and django-storages are imported lazily, so local-only installs never need them.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, BinaryIO

# what a person fixes when the platform's own store fails, by failure
SETTINGS = {
    "credentials": "MASKWRIGHT_S3_ACCESS_KEY_ID / _SECRET_ACCESS_KEY",
    "endpoint": "MASKWRIGHT_S3_ENDPOINT_URL",
    "bucket": "MASKWRIGHT_S3_BUCKET",
}


def diagnose(exc: BaseException, names: dict[str, str]) -> tuple[str, str | None] | None:
    """(reason, the part to fix: "credentials", "endpoint", "bucket" or None) of a failure of
    the store, or None if it is not one."""
    try:
        from botocore import exceptions as bce
    except ImportError:  # local-only installs do not have boto
        return None
    if isinstance(exc, bce.NoCredentialsError | bce.PartialCredentialsError):
        return f"no S3 credentials are configured ({names['credentials']})", "credentials"
    if isinstance(exc, bce.EndpointConnectionError | bce.ConnectTimeoutError | bce.ConnectionError):
        return f"the S3 endpoint cannot be reached ({names['endpoint']})", "endpoint"
    if isinstance(exc, bce.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in {"NoSuchBucket"}:
            return f"the bucket does not exist ({names['bucket']})", "bucket"
        if code in {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken"}:
            return f"the S3 credentials were refused ({names['credentials']})", "credentials"
        if code in {"AccessDenied", "403"} or status == 403:
            return "access to the bucket was denied for these credentials", "credentials"
        return f"the S3 store answered {code or status}", None
    if isinstance(exc, bce.BotoCoreError):
        return f"the S3 client failed ({type(exc).__name__})", None
    return None


def put_direct(store: Any, body: bytes | BinaryIO, relative: str, nbytes: int) -> bool:
    """Write ``body`` with one ``put_object`` of the S3 store's own client, with the key and
    the parameters (content type, ACL, encryption, ``AWS_S3_OBJECT_PARAMETERS``) that
    django-storages' ``_save`` would use; False (nothing written) where its path must stay:
    not an S3 store, an overwrite-refusing one, a gzipped content type, a name it would clean
    to another, or a body past the multipart threshold.

    Why: ``_save`` goes through s3transfer's ``upload_fileobj``, which starts threads and
    builds a resource per call (~10 ms); a bare ``put_object`` costs ~4 ms against a local
    server, and ingest stores two objects per image."""
    from django.core.files.utils import validate_file_name

    needed = ("bucket_name", "connection", "_get_write_parameters", "_normalize_name")
    if not all(hasattr(store, attr) for attr in needed):
        return False
    if not getattr(store, "file_overwrite", False):
        return False
    from storages.utils import clean_name

    if clean_name(relative) != relative:
        return False
    threshold = getattr(getattr(store, "transfer_config", None), "multipart_threshold", 8 << 20)
    if nbytes >= threshold:  # s3transfer would split it into parts
        return False
    validate_file_name(relative, allow_relative_path=True)  # as Storage.save does
    key = store._normalize_name(clean_name(relative))  # the store's location prefix included
    params = store._get_write_parameters(key, None)
    if (
        getattr(store, "gzip", False)
        and params.get("ContentType") in getattr(store, "gzip_content_types", ())
        and "ContentEncoding" not in params
    ):
        return False
    if not isinstance(body, bytes):
        body.seek(0)
    shared_client(store).put_object(Bucket=store.bucket_name, Key=key, Body=body, **params)
    return True


# the storage object (what default_storage wraps) → its boto3 client, shared by all threads
_CLIENTS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_CLIENTS_LOCK = threading.Lock()


def shared_client(store: Any) -> Any:
    """The S3 client of ``store``, one for every thread. Why: ``store.connection`` is per
    thread, and a fresh one builds a boto3 session and resource (~0.1 s of CPU), which each
    thread of ingest's writing pool would pay; a boto3 client is thread-safe."""
    target = getattr(store, "_wrapped", store)  # a new backend (settings changed) gets its own
    client = _CLIENTS.get(target)
    if client is None:
        # one thread builds it: the writing pool's threads start together, and each would
        # otherwise build (and throw away) a resource of its own
        with _CLIENTS_LOCK:
            client = _CLIENTS.get(target)
            if client is None:
                client = _CLIENTS.setdefault(target, store.connection.meta.client)
    return client
