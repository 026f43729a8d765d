# The build stage's base image, made offline by docker/base-images: Debian 12 minbase,
# the packages the official rust:bookworm image's build needs (C/C++ compiler, pkg-config,
# git, CA certificates) and a copy of a local Rust toolchain, laid out like the official
# image. The context holds toolchain/ (a rustup toolchain directory) and rustup.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
ARG RUST_VERSION=1.95.0
# The machine's own extra CAs (/usr/local/share/ca-certificates: a TLS-inspecting proxy
# in front of crates.io, say), so that cargo trusts what the host trusts.
COPY local-ca/ /usr/local/share/ca-certificates/
# docker/base-images passes a shorter list for scripts/fresh-machine-check's image.
ARG PACKAGES="build-essential ca-certificates pkg-config git"
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${PACKAGES} \
    && rm -rf /var/lib/apt/lists/* \
    && if command -v update-ca-certificates >/dev/null; then update-ca-certificates; fi
ENV RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    RUST_VERSION=${RUST_VERSION}
COPY toolchain /usr/local/rustup/toolchains/${RUST_VERSION}-x86_64-unknown-linux-gnu
COPY rustup /usr/local/cargo/bin/rustup
RUN set -eu; cd /usr/local/cargo/bin; \
    for p in cargo cargo-clippy cargo-fmt clippy-driver rustc rustdoc rustfmt rust-gdb rust-lldb; do \
        ln -s rustup "$p"; done; \
    printf 'version = "12"\ndefault_toolchain = "%s-x86_64-unknown-linux-gnu"\nprofile = "minimal"\nauto_self_update = "disable"\n\n[overrides]\n' \
        "$RUST_VERSION" > /usr/local/rustup/settings.toml; \
    ln -s ${RUST_VERSION}-x86_64-unknown-linux-gnu /usr/local/rustup/toolchains/stable-x86_64-unknown-linux-gnu; \
    chmod a+w /usr/local/rustup /usr/local/cargo /usr/local/cargo/bin; \
    rustup --version; cargo --version; rustc --version
