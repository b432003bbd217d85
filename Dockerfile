# syntax=docker/dockerfile:1
# kenar-hook: multi-stage build, non-root runtime, health check through the binary itself.
# Base images are pinned by version; pin them by digest too when you publish an image.

FROM rust:1.95.0-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY config ./config
# Declared targets must exist for the manifest to load, even though only the binary is built.
COPY tests ./tests
COPY examples ./examples
RUN cargo build --release --locked --bin kenar-hook \
 && strip target/release/kenar-hook

FROM debian:12.12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/kenar-hook --create-home kenar
COPY --from=build /src/target/release/kenar-hook /usr/local/bin/kenar-hook
COPY --chown=10001:10001 config/default.toml /var/lib/kenar-hook/config/default.toml
WORKDIR /var/lib/kenar-hook
# Relative paths of the defaults resolve here: data/kenar-hook.db and data/identification_key.
RUN mkdir -p data && chown 10001:10001 data
VOLUME ["/var/lib/kenar-hook/data"]
ENV KENAR_HOOK__SERVER__LISTEN=0.0.0.0:8080 \
    KENAR_HOOK__METRICS__LISTEN=0.0.0.0:9090 \
    KENAR_HOOK__LOG__FORMAT=json
USER 10001:10001
EXPOSE 8080 9090
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["kenar-hook", "healthcheck"]
ENTRYPOINT ["kenar-hook"]
CMD ["serve"]
