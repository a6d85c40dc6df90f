# One image for every EduSphere process. The default command runs the gateway; a service overrides it:
#   nameko run services.users.service --config services/config.yml
#   python -m common.migrations users
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    MEDIA_ROOT=/var/lib/edusphere/media

WORKDIR /app

# Dependencies first, so a code change does not reinstall them. With only pyproject.toml present the
# project itself is empty: pip installs just the pinned dependencies. The code runs from /app
# (PYTHONPATH), where migrations and services/config.yml sit beside the modules that use them.
COPY pyproject.toml constraints.txt ./
RUN pip install -c constraints.txt . \
    && pip uninstall -y edusphere \
    && rm -rf build ./*.egg-info

COPY . .

RUN groupadd --system --gid 10001 edusphere \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin edusphere \
    && mkdir -p "$MEDIA_ROOT" \
    && chown edusphere:edusphere "$MEDIA_ROOT"

# Numeric, so Kubernetes' runAsNonRoot can check it.
USER 10001:10001

EXPOSE 8000
CMD ["uvicorn", "gateway.app:app", "--host", "0.0.0.0", "--port", "8000", "--no-access-log", "--timeout-graceful-shutdown", "20", "--ws-max-size", "16384", "--ws-per-message-deflate", "false"]
