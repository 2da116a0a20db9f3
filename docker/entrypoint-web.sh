#!/bin/sh
# Entrypoint of the web container: bring the schema and the static files up to date, then
# exec the server (the image's CMD, uvicorn), which becomes PID 1 and receives SIGTERM itself.
# Only the web service runs this; workers override the entrypoint so they never migrate.
set -eu

cd /app

# Migrations before the server accepts requests, so a deploy never serves an old schema.
# With several web replicas, run this once (e.g. `docker compose run --rm web true`) instead.
python -m django migrate --noinput

# Static files into $MASKWRIGHT_HOME/static (STATIC_ROOT in config.settings.production).
python -m django collectstatic --noinput --verbosity 0

exec "$@"
