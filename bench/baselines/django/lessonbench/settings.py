"""Settings of the baseline: production-like (DEBUG off, persistent database connections,
JSON only), nothing a lesson GET does not need.

The database comes from BASELINE_DATABASE: `sqlite:///path/to/db.sqlite3` or
`postgres://user@host:port/name`.
"""
import os
from urllib.parse import urlparse

SECRET_KEY = "benchmark only: this server never leaves loopback"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "lessonbench.urls"
WSGI_APPLICATION = "lessonbench.wsgi.application"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "rest_framework",
    "rest_framework.authtoken",
    "lessons",
]
# No sessions, CSRF or messages: the API authenticates each request by its token.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]


def _database(url):
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": parsed.path,
            # As classcast opens SQLite: write-ahead log, synced commits.
            "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL"},
            "CONN_MAX_AGE": None,
        }
    if parsed.scheme in ("postgres", "postgresql"):
        return {
            "ENGINE": "django.db.backends.postgresql",  # psycopg 3
            "NAME": parsed.path.lstrip("/"),
            "USER": parsed.username or "postgres",
            "PASSWORD": parsed.password or "",
            "HOST": parsed.hostname or "127.0.0.1",
            "PORT": str(parsed.port or 5432),
            # One connection per worker for its whole life, as a pool would give.
            "CONN_MAX_AGE": None,
        }
    raise ValueError(f"BASELINE_DATABASE must be sqlite:///… or postgres://…, not {url!r}")


DATABASES = {"default": _database(os.environ.get("BASELINE_DATABASE", "sqlite:///baseline.sqlite3"))}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["lessons.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
