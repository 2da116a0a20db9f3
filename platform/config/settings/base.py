"""Settings shared by every environment; each value can be overridden from the environment."""

from __future__ import annotations

import dj_database_url

from config.env import REPO_ROOT, data_home, env_bool, env_float, env_int, env_list, env_str

HOME = data_home()
DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_str("DJANGO_SECRET_KEY")  # the environment modules decide what happens if unset
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI as static files (the docs page's CSP)
    "channels",
    "annotation.common",
    "annotation.users",
    "annotation.projects",
    "annotation.datasets",
    "annotation.labeling",
    "annotation.jobs",
    "annotation.exports",
    "annotation.modelstore",
    "annotation.segmentation",
    "annotation.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "annotation.web.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "users.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Postgres only: JSON fields, row locks and the concurrency rules assume it. Without URLs, the
# embedded servers of `maskwright run` on the ports it starts them on (the same variables), so
# that `maskwright check` and `manage.py` find the platform where `run` put it.
PG_PORT = env_int("MASKWRIGHT_PG_PORT", 55432)
REDIS_PORT = env_int("MASKWRIGHT_REDIS_PORT", 56379)
DATABASE_URL = env_str("DATABASE_URL", f"postgresql://postgres@127.0.0.1:{PG_PORT}/maskwright")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
# A connection pool, not CONN_MAX_AGE: under ASGI Django opened a new connection for every
# request (measured: 50 requests, 50 new sessions, ~5 ms each). Needs CONN_MAX_AGE = 0.
DATABASES["default"]["OPTIONS"] = {
    "pool": {"min_size": 1, "max_size": env_int("MASKWRIGHT_DB_POOL_MAX", 10), "timeout": 10}
}

REDIS_URL = env_str("REDIS_URL", f"redis://127.0.0.1:{REDIS_PORT}/0")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # redis-py 8 reads with a 5 s socket timeout by default, the same 5 s for which
        # channels_redis blocks in BZPOPMIN: a socket with nothing to receive for 5 s then
        # died with "Timeout reading from redis". Reads may take longer than the block.
        "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}]},
    }
}

# Shared by every web process (sign-in throttling counts failures here).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "mw-cache",
        "OPTIONS": {"socket_timeout": 5},
    }
}

# HTML pages: scripts, styles and images from this origin only; the annotation socket is the
# one other connection (ws/wss to the same host, added per request). SecurityMiddleware and
# XFrameOptionsMiddleware add nosniff, Referrer-Policy same-origin and X-Frame-Options DENY.
# The API docs page is held to it too (but for inline styles, below): Swagger UI comes from the
# drf-spectacular-sidecar wheel (our origin, not a CDN) and its start-up script is a file of its
# own (the "split" view).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
CONTENT_SECURITY_POLICY_EXEMPT: list[str] = []  # path prefixes served without a policy
# Path prefixes whose pages get another policy. Swagger UI inserts a <style> element as it
# starts; styles only (scripts stay 'self'), on the docs page only.
CONTENT_SECURITY_POLICY_FOR = {
    "/api/docs/": CONTENT_SECURITY_POLICY.replace(
        "style-src 'self'", "style-src 'self' 'unsafe-inline'"
    ),
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# The browser app is plain ES modules in frontend/ (no build step), served as static files.
STATICFILES_DIRS = [REPO_ROOT / "frontend"]
WHITENOISE_USE_FINDERS = True  # serve straight from frontend/ without collectstatic
STATIC_ROOT = None  # production.py sets it for collectstatic; here files come from finders
MEDIA_URL = "media/"
MEDIA_ROOT = HOME / "media"

# Media (images, thumbnails, exports, model files) go through Django's storage API
# (annotation/common/media.py). MASKWRIGHT_STORAGE=local keeps them under MEDIA_ROOT (the quick
# start); =s3 puts them in a bucket of any S3-compatible store (AWS S3, MinIO, Ceph, R2, GCS in
# S3 mode) through django-storages, and processes that need a real file share a bounded
# read-through cache on their host (MASKWRIGHT["MEDIA_CACHE_*"]). The credentials are read here
# only and never logged; the browser still gets files through the authenticated API, never the
# bucket.
MASKWRIGHT_STORAGE = (env_str("MASKWRIGHT_STORAGE", "local") or "local").lower()
if MASKWRIGHT_STORAGE not in {"local", "s3"}:
    raise ValueError(f"MASKWRIGHT_STORAGE must be local or s3, got {MASKWRIGHT_STORAGE!r}")


def s3_client_config(addressing_style: str, connect_timeout_s: int, attempts: int) -> object:
    """botocore's client Config: a dead endpoint fails in seconds with a clear error (the
    default retries a refused connection for about a minute)."""
    from botocore.config import Config

    return Config(
        s3={"addressing_style": addressing_style},
        signature_version="s3v4",
        connect_timeout=connect_timeout_s,
        read_timeout=60,
        retries={"max_attempts": attempts, "mode": "standard"},
    )


def s3_storage_options() -> dict[str, object]:
    """django-storages' S3Storage options from the MASKWRIGHT_S3_* environment."""
    style = env_str("MASKWRIGHT_S3_ADDRESSING_STYLE", "path") or "path"  # path: MinIO, Ceph
    return {
        "endpoint_url": env_str("MASKWRIGHT_S3_ENDPOINT_URL"),  # unset: AWS itself
        "bucket_name": env_str("MASKWRIGHT_S3_BUCKET", "maskwright"),
        "access_key": env_str("MASKWRIGHT_S3_ACCESS_KEY_ID"),
        "secret_key": env_str("MASKWRIGHT_S3_SECRET_ACCESS_KEY"),
        "region_name": env_str("MASKWRIGHT_S3_REGION", "us-east-1"),
        "location": (env_str("MASKWRIGHT_S3_PREFIX", "") or "").strip("/"),
        "file_overwrite": True,  # names are content addressed: same name, same bytes
        "default_acl": None,  # private: the bucket's own policy, never public-read
        "querystring_auth": True,
        "client_config": s3_client_config(
            style,
            env_int("MASKWRIGHT_S3_CONNECT_TIMEOUT_S", 5),
            env_int("MASKWRIGHT_S3_ATTEMPTS", 3),
        ),
    }


# The key that encrypts the credentials of buckets attached to datasets
# (annotation/datasets/buckets.py); unset, a key derived from SECRET_KEY. Changing it makes the
# stored credentials unreadable (each source then asks for them again), nothing else.
MASKWRIGHT_CREDENTIALS_KEY = env_str("MASKWRIGHT_CREDENTIALS_KEY")
# The S3 endpoints a project's admins may attach buckets from (URL prefixes, comma-separated;
# "aws" for AWS S3 itself). Empty: any endpoint except those on this host's own network
# (loopback, private, link-local addresses): an endpoint is a URL the workers will fetch, and
# it must not be an internal service. A MinIO beside the platform is named here.
MASKWRIGHT_BUCKET_ENDPOINTS = env_list("MASKWRIGHT_BUCKET_ENDPOINTS", [])

STORAGES = {
    "default": (
        {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": s3_storage_options()}
        if MASKWRIGHT_STORAGE == "s3"
        else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    ),
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"

# Uploads: anything above 2.5 MB spills to a temporary file, so the web process never holds an
# archive in memory; FILE_UPLOAD_TEMP_DIR keeps those files on the data disk.
FILE_UPLOAD_TEMP_DIR = env_str("MASKWRIGHT_UPLOAD_TMP")
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("MASKWRIGHT_MAX_FILES_PER_REQUEST", 1000)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "annotation.common.pagination.DefaultPagination",
    "EXCEPTION_HANDLER": "annotation.common.exceptions.api_exception_handler",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Maskwright API",
    "DESCRIPTION": "Projects, datasets, images, masks (COCO RLE), prompts, tasks and jobs.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's files from the sidecar wheel: nothing on the docs page runs from a CDN
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "JobKindEnum": "annotation.jobs.models.Job.Kind",
        "JobStateEnum": "annotation.jobs.models.Job.State",
        "TaskStateEnum": "annotation.labeling.models.Task.State",
        "PromptKindEnum": "annotation.labeling.models.Prompt.Kind",
    },
}

# Celery: three queues. Interactive clicks must never wait behind a batch job.
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "annotation.segmentation.*": {"queue": "interactive"},
}
CELERY_TASK_ACKS_LATE = True  # a job whose worker dies is redelivered, and resumes
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Every worker also consumes its own queue ("<hostname>.dq2"): an annotation session sticks
# to the worker that holds its image's features (annotation/segmentation/dispatch.py).
CELERY_WORKER_DIRECT = True

# Ingest limits (a refused file is reported, the rest of the batch goes on).
MASKWRIGHT = {
    # Pillow refuses above twice its own limit; ours applies before any pixel is decoded.
    "MAX_IMAGE_PIXELS": env_int("MASKWRIGHT_MAX_IMAGE_PIXELS", 100_000_000),
    "MAX_ZIP_MEMBERS": env_int("MASKWRIGHT_MAX_ZIP_MEMBERS", 100_000),
    "MAX_ZIP_UNCOMPRESSED_BYTES": env_int("MASKWRIGHT_MAX_ZIP_UNCOMPRESSED_BYTES", 50 * 2**30),
    "MAX_ZIP_RATIO": env_int("MASKWRIGHT_MAX_ZIP_RATIO", 200),
    "MAX_IMAGE_BYTES": env_int("MASKWRIGHT_MAX_IMAGE_BYTES", 512 * 2**20),
    "MAX_COCO_JSON_BYTES": env_int("MASKWRIGHT_MAX_COCO_JSON_BYTES", 1 * 2**30),
    "THUMBNAIL_SIZE": env_int("MASKWRIGHT_THUMBNAIL_SIZE", 256),
    # An uploaded checkpoint (Swin-L DynaMITe is ~0.9 GB with its optimiser state).
    "MAX_MODEL_BYTES": env_int("MASKWRIGHT_MAX_MODEL_MB", 4096) * 2**20,
    # Remote media store only: the read-through cache of the files processes open
    # (images for Pillow, model files for torch), least recently used first out. The bound is
    # the folder's, however many processes on the host share it, and a file one of them is
    # using is never evicted (advisory locks: a local disk, not NFS). Unset: MEDIA_ROOT/cache.
    "MEDIA_CACHE_BYTES": env_int("MASKWRIGHT_MEDIA_CACHE_MB", 2048) * 2**20,
    "MEDIA_CACHE_DIR": env_str("MASKWRIGHT_MEDIA_CACHE_DIR", ""),
    # Interactive workers: per-image state cache, the working size of the methods (masks are
    # scaled back to the image), the device, and what the annotation page offers.
    "INTERACTIVE_CACHE_BYTES": env_int("MASKWRIGHT_INTERACTIVE_CACHE_MB", 2048) * 2**20,
    "INTERACTIVE_MAX_SIDE": env_int("MASKWRIGHT_INTERACTIVE_MAX_SIDE", 1024),
    "INTERACTIVE_DEVICE": env_str("MASKWRIGHT_INTERACTIVE_DEVICE", "cpu"),
    "INTERACTIVE_WARMUP": env_bool("MASKWRIGHT_INTERACTIVE_WARMUP", True),
    # The methods the annotation page offers come from their registered metadata
    # (``inference.method_infos()``: label, prompt kinds, multi-object, backbones, trained
    # weights). A deployment may narrow the menu to some names, in menu order (empty: every
    # interactive method that needs no trained model, then the project's trained models), and
    # names the backbones its interactive workers have weights for. The SAM variants ignore
    # that list: each is offered exactly where an alive worker found its checkpoint on disk
    # (``annotation.segmentation.interactive.checkpoints``), and its clicks go only there.
    "INTERACTIVE_METHODS": env_list("MASKWRIGHT_INTERACTIVE_METHODS", []),
    "INTERACTIVE_BACKBONES": env_list("MASKWRIGHT_INTERACTIVE_BACKBONES", ["effnet-lite0"]),
    # Modules that register more methods (``inference.register_method``), imported by the web
    # process and every worker: adding a method is one registration plus its module's name here.
    "METHOD_PLUGINS": env_list("MASKWRIGHT_METHOD_PLUGINS", []),
    # Networks the batch workers have weights for here: a batch job's setting that names one
    # (``inference.Param(weights=True)``, e.g. the proposals' backbone) offers only these, and
    # a launch naming another is refused. Names only: the web process never imports torch to
    # list them. (MASKWRIGHT_MIS_BACKBONES is its former name.)
    "BATCH_BACKBONES": env_list(
        "MASKWRIGHT_BATCH_BACKBONES", env_list("MASKWRIGHT_MIS_BACKBONES", ["effnet-lite0"])
    ),
    # Seconds without an answer before a click is sent again to any live worker.
    "INTERACTIVE_RETRY_S": env_int("MASKWRIGHT_INTERACTIVE_RETRY_S", 3),
    # "Find all" on the canvas (every instance of a label, found from its name): an instance
    # is kept when its score is above FIND_ALL_THRESHOLD, and one find stores at most
    # FIND_ALL_MAX of them, the best scores.
    "FIND_ALL_THRESHOLD": env_float("MASKWRIGHT_FIND_ALL_THRESHOLD", 0.5),
    "FIND_ALL_MAX": env_int("MASKWRIGHT_FIND_ALL_MAX", 50),
    # One client must not stall everyone: each socket may send SOCKET_RATE messages a second
    # (bursts of SOCKET_BURST), and an object keeps at most MAX_PROMPTS_PER_OBJECT active
    # prompts a method reads (a worker replays them all on every click: 200 clicks made one
    # 146 s model run that held the interactive queue).
    "SOCKET_RATE": env_int("MASKWRIGHT_SOCKET_RATE", 20),
    "SOCKET_BURST": env_int("MASKWRIGHT_SOCKET_BURST", 40),
    # A socket refused more than this many times in a burst (refusals refill at 5 a second)
    # ignores retry_after: it is closed (1008) instead of answered.
    "SOCKET_REFUSALS_BURST": env_int("MASKWRIGHT_SOCKET_REFUSALS_BURST", 200),
    "SOCKET_REFUSALS_RATE": 5,
    "MAX_PROMPTS_PER_OBJECT": env_int("MASKWRIGHT_MAX_PROMPTS_PER_OBJECT", 50),
    # Request bodies, refused by Content-Length or while streaming, before Django spools them:
    # a dataset upload (images or zips, many per request), else MAX_REQUEST_BYTES. A model
    # upload may carry MAX_MODEL_BYTES plus its form fields.
    "MAX_UPLOAD_BYTES": env_int("MASKWRIGHT_MAX_UPLOAD_MB", 20 * 1024) * 2**20,
    "MAX_REQUEST_BYTES": env_int("MASKWRIGHT_MAX_REQUEST_MB", 10) * 2**20,
    # Failed sign-ins (token API, login page, admin) within LOGIN_WINDOW_S: past the limit of a
    # client address, or the higher one of a username (guesses spread over many addresses),
    # sign-in answers 429 until the window ends.
    "LOGIN_FAILURES_PER_ADDRESS": env_int("MASKWRIGHT_LOGIN_FAILURES_PER_ADDRESS", 10),
    "LOGIN_FAILURES_PER_USERNAME": env_int("MASKWRIGHT_LOGIN_FAILURES_PER_USERNAME", 30),
    "LOGIN_WINDOW_S": env_int("MASKWRIGHT_LOGIN_WINDOW_S", 15 * 60),
    # A running job's worker renews its lease this often / for this long; a job whose lease ran
    # out is resumed on another run, at most JOB_MAX_ATTEMPTS runs in all, then failed.
    "JOB_LEASE_S": env_int("MASKWRIGHT_JOB_LEASE_S", 30),
    "JOB_MAX_ATTEMPTS": env_int("MASKWRIGHT_JOB_MAX_ATTEMPTS", 3),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("MASKWRIGHT_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # boto logs request headers at DEBUG, access key ids among them: credentials (ours
        # and those of attached buckets) are never logged, whatever MASKWRIGHT_LOG_LEVEL says
        "botocore": {"level": "WARNING"},
        "boto3": {"level": "WARNING"},
    },
}
