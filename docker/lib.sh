# Sourced by scripts/docker-check and scripts/fresh-machine-check: makes sure a docker
# engine is installed and running. Needs root (apt-get, dockerd).
#   DOCKER   the client (default: Debian's /usr/bin/docker, which matches its engine)

ensure_docker() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v docker-compose >/dev/null || missing+=(docker-compose)
    command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    DOCKER=${DOCKER:-$(command -v /usr/bin/docker || command -v docker)}
    export DOCKER
    if ! "$DOCKER" info >/dev/null 2>&1; then
        echo "starting dockerd (log: /tmp/dockerd.log)" >&2
        nohup dockerd >/tmp/dockerd.log 2>&1 &
        local i
        for i in $(seq 60); do "$DOCKER" info >/dev/null 2>&1 && break; sleep 1; done
        "$DOCKER" info >/dev/null 2>&1 || { echo "dockerd did not start (see /tmp/dockerd.log)" >&2; return 1; }
    fi
    # The Dockerfile's cache mounts need BuildKit (built into the engine since 18.09).
    export DOCKER_BUILDKIT=1
}
