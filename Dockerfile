# The rtrec image: `docker compose up --build` builds it (or `docker build -t rtrec .`).
# Every dependency comes from uv.lock; the PostgreSQL driver is included so RTREC_DB may be
# either SQLite or postgresql+psycopg://.
FROM python:3.12-slim

COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/rtrec \
    PYTHONUNBUFFERED=1

WORKDIR /src
# Dependencies first, from the lock file alone, so a code change does not reinstall them.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-dev --no-install-project
COPY . .
RUN uv sync --locked --no-dev --no-editable

RUN useradd --create-home --uid 10001 rtrec && mkdir /data && chown rtrec:rtrec /data
USER rtrec
# The default sqlite:///rtrec.db lands on the /data volume.
WORKDIR /data
VOLUME ["/data"]
ENV PATH=/opt/rtrec/bin:$PATH
EXPOSE 8080 9464 8501

ENTRYPOINT ["rtrec"]
CMD ["proxy", "--listen-host", "0.0.0.0", "--metrics-host", "0.0.0.0"]
