# oxidesk in a container (README, Operations). Not built in CI.
#   docker build -t oxidesk .
#   docker run -d -p 8080:8080 -v oxidesk-data:/var/lib/oxidesk oxidesk
# Configuration: mount a file at /etc/oxidesk/oxidesk.toml, or set
# OXIDESK__SECTION__KEY variables (-e OXIDESK__MAIL__ENABLED=true …).

FROM rust:1.95-bookworm AS build
WORKDIR /src
# SQLite is compiled in (rusqlite `bundled`): a C compiler is all it needs.
COPY . .
# `.git` stays out of the context: name the commit for `--version` with
# `--build-arg OXIDESK_BUILD_COMMIT=$(git rev-parse --short=12 HEAD)`.
ARG OXIDESK_BUILD_COMMIT=""
RUN OXIDESK_BUILD_COMMIT="$OXIDESK_BUILD_COMMIT" cargo build --release --locked --bin oxidesk \
 && install -m 0755 target/release/oxidesk /usr/local/bin/oxidesk

FROM debian:bookworm-slim
# CA certificates for SMTP over TLS and PostgreSQL with sslmode.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 oxidesk \
 && useradd --system --uid 10001 --gid oxidesk --home-dir /var/lib/oxidesk --shell /usr/sbin/nologin oxidesk \
 && install -d -o oxidesk -g oxidesk -m 0750 /var/lib/oxidesk /etc/oxidesk
COPY --from=build /usr/local/bin/oxidesk /usr/local/bin/oxidesk
USER oxidesk:oxidesk
WORKDIR /var/lib/oxidesk
VOLUME ["/var/lib/oxidesk"]
ENV OXIDESK__DATABASE=sqlite:///var/lib/oxidesk/oxidesk.db \
    OXIDESK__LISTEN=0.0.0.0:8080
EXPOSE 8080
# No HEALTHCHECK: the image has no HTTP client; probe `/healthz` from the
# orchestrator once the health endpoints exist (issue 15, point 1).
# SIGTERM drains open connections for [server] shutdown_grace_secs (10 s):
# give `docker stop` longer than that (`--stop-timeout 20`).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/oxidesk"]
CMD ["serve"]
