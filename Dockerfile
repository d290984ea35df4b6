# The livesim image: the `livesim` CLI for the operator (`livesim operator`), the leader pod
# (`livesim leader`) and the host pods (`livesim host`), and for `livesim run` on one machine.
#
#   docker build -t livesim:dev .
#   docker run --rm livesim:dev run examples/quickstart.yaml   # (with examples/ mounted)
#
# Two stages: the build stage installs every dependency, compiles TypeScript to dist/, the
# libfaketime shim of live components, vexec (their supervisor for Go and static programs) and the
# image launcher (which starts a program in a live component's own image on Kubernetes); the
# runtime stage gets the compiled code, the production dependencies, libfaketime, the shim, vexec
# and the launcher only, and runs as a non-root user (uid/gid 65532, the uid the Helm chart's pod
# security context names).
#
# `npm run image` builds the same image without a container engine (hack/image/build.ts; a test
# compares the two; docs/kubernetes.md, "The image", says what differs).
#
# Live components run programs from this image: add yours in an image built FROM this one
# (docs/kubernetes.md). Pods of live hosts with the chart's live.podSecurity=privileged run as root
# (runAsUser 0 in the pod spec); everything else runs as 65532.
ARG NODE_IMAGE=node:24-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
# A C compiler for the libfaketime shim (sim-runtime/live/shim.ts), vexec (vexec.ts) and the static
# image launcher (launcher.ts), so that the runtime image needs none.
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# --ignore-scripts: the one install script in the tree is the `node` dev dependency's, which fetches
# a second Node binary for developer machines; this image already has Node 24.
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY sim-runtime ./sim-runtime
COPY operator ./operator
# The shim, vexec and the launcher are built from their C sources in sim-runtime/live/ (Node 24 runs
# the .ts as it is).
RUN npm run build \
 && node sim-runtime/live/shim.ts /app/lib/faketime-shim.so \
 && node sim-runtime/live/vexec.ts /app/lib/vexec \
 && node sim-runtime/live/launcher.ts /app/lib/livesim-launcher \
 && npm prune --omit=dev --ignore-scripts \
 && chmod 0755 bin/livesim.js

FROM ${NODE_IMAGE}
# A fixed non-root user; numeric USER below lets the kubelet verify runAsNonRoot. npm and corepack
# are not needed at run time: removing them shrinks the image and what scanners have to report.
# libfaketime is the virtual clock of live programs (LD_PRELOAD); its multiarch directory differs
# per architecture, so a fixed link names it for LIVESIM_LIBFAKETIME.
RUN groupadd --system --gid 65532 livesim \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin livesim \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack \
 && apt-get update \
 && apt-get install -y --no-install-recommends libfaketime \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /usr/local/lib/livesim \
 && ln -s "$(dpkg -L libfaketime | grep '/libfaketimeMT[.]so[.]1$')" /usr/local/lib/livesim/libfaketimeMT.so.1 \
 && test -f /usr/local/lib/livesim/libfaketimeMT.so.1
COPY --from=build /app/lib/faketime-shim.so /usr/local/lib/livesim/faketime-shim.so
COPY --from=build /app/lib/vexec /usr/local/lib/livesim/vexec
COPY --from=build /app/lib/livesim-launcher /usr/local/lib/livesim/livesim-launcher
# The runtime reads these (sim-runtime/live/clock.ts, shim.ts, vexec.ts, launcher.ts) instead of
# searching and compiling.
ENV LIVESIM_LIBFAKETIME=/usr/local/lib/livesim/libfaketimeMT.so.1 \
    LIVESIM_FAKETIME_SHIM=/usr/local/lib/livesim/faketime-shim.so \
    LIVESIM_VEXEC=/usr/local/lib/livesim/vexec \
    LIVESIM_LAUNCHER=/usr/local/lib/livesim/livesim-launcher
# Both load, in the order the runtime preloads them (shim first), and the clock is virtual.
RUN test "$(LD_PRELOAD="$LIVESIM_FAKETIME_SHIM $LIVESIM_LIBFAKETIME" FAKETIME='@2024-01-01 00:00:00' date -u +%Y)" = 2024
WORKDIR /app
ENV NODE_ENV=production
# Owned by root and read-only for the runtime user (the chart also mounts the root file system read-only).
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
# bin/livesim.js runs dist/sim-runtime/cli/main.js; Node resolves the symlink, so paths stay under /app.
RUN ln -s /app/bin/livesim.js /usr/local/bin/livesim \
 && livesim --version
LABEL org.opencontainers.image.title="livesim" \
      org.opencontainers.image.description="Cluster-scale full-stack simulation under one virtual time: CLI, operator, leader and host runtime" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="0.1.0"
USER 65532:65532
ENTRYPOINT ["livesim"]
CMD ["--help"]
