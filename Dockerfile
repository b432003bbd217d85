# syntax=docker/dockerfile:1.7
# kenar-hook: multi-stage build with cached dependencies, a stripped binary, a non-root
# runtime whose settings file is root-owned and read-only, and a health check through the
# binary itself (no curl in the image). Base images are pinned by version; pin them by
# digest too when you publish an image.

FROM rust:1.95.0-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY migrations ./migrations
COPY config ./config
# Declared targets must exist for the manifest to load, even though only the binary is built.
COPY tests ./tests
COPY examples ./examples
# The registry and the target folder live in BuildKit caches: a rebuild after a source change
# compiles kenar-hook alone, not its few hundred dependencies. The cached target folder is not
# part of the image, so the binary is copied out of it.
ENV CARGO_PROFILE_RELEASE_STRIP=symbols
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin kenar-hook \
 && cp target/release/kenar-hook /usr/local/bin/kenar-hook

FROM debian:12.12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/kenar-hook --create-home kenar
COPY --from=build /usr/local/bin/kenar-hook /usr/local/bin/kenar-hook
# Root-owned and read-only: the service's own user cannot change its settings.
COPY --chown=root:root --chmod=0444 config/default.toml /etc/kenar-hook/kenar-hook.toml
WORKDIR /var/lib/kenar-hook
# The only place the service writes: the SQLite file (when no PostgreSQL is configured) and
# the generated identification key (when none is configured).
RUN mkdir -p data && chown 10001:10001 data
VOLUME ["/var/lib/kenar-hook/data"]
ENV KENAR_HOOK_CONFIG=/etc/kenar-hook/kenar-hook.toml \
    KENAR_HOOK__SERVER__LISTEN=0.0.0.0:8080 \
    KENAR_HOOK__SERVER__DATA_DIR=/var/lib/kenar-hook/data \
    KENAR_HOOK__METRICS__LISTEN=0.0.0.0:9090 \
    KENAR_HOOK__LOG__FORMAT=json
USER 10001:10001
EXPOSE 8080 9090
STOPSIGNAL SIGTERM
# Liveness: the process answers. A database outage must not get the container restarted;
# for readiness (the database answers too) use `kenar-hook healthcheck --ready`, as
# docker-compose.yml does.
HEALTHCHECK --interval=15s --timeout=5s --start-period=40s --retries=3 \
    CMD ["kenar-hook", "healthcheck"]
ENTRYPOINT ["kenar-hook"]
CMD ["serve"]
