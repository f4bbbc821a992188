# Multi-stage build with the same scripts as the README.
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
ENV RELAY_CACHE=/cache
RUN bash scripts/setup.sh && bash scripts/build.sh --release

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 relay \
 && mkdir /data && chown relay /data
COPY --from=build /cache/target/release/dashboard /usr/local/bin/dashboard
COPY --from=build /src/target/site /app/site
ENV DASHBOARD_ADDR=0.0.0.0:3000 \
    DASHBOARD_DATA_DIR=/data \
    DASHBOARD_SITE_ROOT=/app/site \
    DASHBOARD_LOG_FORMAT=json
VOLUME /data
USER relay
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=3s CMD curl -fsS http://127.0.0.1:3000/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/dashboard"]
CMD ["serve"]
