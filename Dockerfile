# ext-authz's container image, for those with Docker (or Podman, Buildah):
#
#   docker build -t REGISTRY/ext-authz:0.1.0 .
#
# The same image as `make image`, which needs no Docker (docs/image.md): a
# static musl release build (LTO, paths remapped as the Makefile does) on
# scratch, /etc/passwd and /etc/group naming user 65532 `nonroot`, run as
# that user. No CA bundle: ext-authz trusts the Mozilla roots compiled in,
# plus the PEM file EXT_AUTHZ_IDP_CA_FILE names. Its digest differs from
# `make image`'s (Docker writes its own layer metadata); its files do not.

FROM docker.io/library/rust:1.95.0-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/*
RUN rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
# The sources are at /src already, the path `make image` remaps to.
RUN CC_x86_64_unknown_linux_musl=musl-gcc \
    CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="--remap-path-prefix=${CARGO_HOME}=/cargo" \
    cargo build --locked --release -p ext-authz --target x86_64-unknown-linux-musl
RUN mkdir -p /rootfs/etc \
    && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' > /rootfs/etc/passwd \
    && printf 'root:x:0:\nnonroot:x:65532:\n' > /rootfs/etc/group \
    && install -m 0755 target/x86_64-unknown-linux-musl/release/ext-authz /rootfs/ext-authz

FROM scratch
COPY --from=build /rootfs/ /
USER 65532:65532
ENV EXT_AUTHZ_LOG_FORMAT=json
EXPOSE 8080/tcp 9000/tcp
ENTRYPOINT ["/ext-authz"]
LABEL org.opencontainers.image.title="ext-authz" \
      org.opencontainers.image.description="faas-mesh-auth ext-authz: token exchange, JWKS and the Envoy ext_authz service" \
      org.opencontainers.image.source="https://github.com/faas-mesh-auth/faas-mesh-auth" \
      org.opencontainers.image.licenses="Apache-2.0"
