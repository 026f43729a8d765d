# Multi-stage build of the single pixstream binary. Needs BuildKit (cache mounts):
#   DOCKER_BUILDKIT=1 docker build --network host -t pixstream .
#   docker run --network host -v pixstream-data:/data pixstream
# No registry needed: docker/base-images builds both base images locally
# (docs/deploying.md). The first build compiles RocksDB (~15-50 min on 2 cores); later
# builds reuse the cargo registry and target directory kept in BuildKit cache mounts.
FROM rust:1.95-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends libclang-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,id=pixstream-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=pixstream-target,target=/cache/target \
    CARGO_TARGET_DIR=/cache/target cargo build --release --locked --bin pixstream \
    && cp /cache/target/release/pixstream /usr/local/bin/pixstream

FROM debian:bookworm-slim
# curl for the health check; tini is not needed: pixstream handles SIGTERM itself.
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data pixstream \
    && mkdir -p /data /keys /etc/pixstream \
    && chown pixstream /data /keys
COPY --from=build /usr/local/bin/pixstream /usr/local/bin/pixstream
COPY docker/healthcheck /usr/local/bin/pixstream-healthcheck
USER pixstream
WORKDIR /data
# 8080 public (PSP pulls), 8081 internal (producer, admin), 8082 peer (Raft)
EXPOSE 8080 8081 8082
# /keys: a token key folder several nodes can share (compose.yaml: tokens.key_dir).
VOLUME ["/data"]
# /readyz of the internal listener: storage open and every shard of the node has a
# leader. Set PIXSTREAM_HEALTH_URL when the internal listener is elsewhere (a cluster
# node's port, https). The start period covers a first start's shard elections.
ENV PIXSTREAM_HEALTH_URL=http://127.0.0.1:8081/readyz
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["pixstream-healthcheck"]
# Exec form: pixstream is PID 1 and gets docker stop's SIGTERM directly (clean shutdown).
ENTRYPOINT ["pixstream"]
# The embedded single node, reachable from outside the container. For a cluster:
#   serve --config /etc/pixstream/cluster.toml --node-id N
CMD ["serve", "--data-dir", "/data", "--public-addr", "0.0.0.0:8080", "--internal-addr", "0.0.0.0:8081"]
