# caliente-edge image.
#
# Production build (needs npm and C and C++ compilers in BUILD_IMAGE, which the default node image
# has):
#   docker build -t caliente-edge .
#
# Build from files compiled outside Docker, for a base image without npm (the test suite uses
# this with a locally imported base): put dist/ and the production-only node_modules/ in the
# context (with the addon in native/build, from scripts/build-native.sh), then
#   docker build --build-arg BASE_IMAGE=... --build-arg APP_FILES=prebuilt -t caliente-edge .
# Both paths end in the same runtime stage. Both need BuildKit (DOCKER_BUILDKIT=1 on Docker
# 20.10, or docker buildx build): the classic builder runs every stage and fails in the unused one.
ARG BASE_IMAGE=node:20-bookworm-slim
# The full node image, unlike the slim one, has the C and C++ compilers for the addons in native/.
ARG BUILD_IMAGE=node:20-bookworm
# Stage whose /out tree the runtime copies: build (compile here) or prebuilt (from the context).
ARG APP_FILES=build

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY native/malloc-trim.c native/session-tickets.cc native/low-memory.cc ./native/
COPY scripts/build-native.sh ./scripts/
RUN npm run build \
  && bash scripts/build-native.sh \
  && npm prune --omit=dev --no-audit --no-fund --ignore-scripts \
  && mkdir -p /out/app /out/data/certs /out/data/state \
  && mv dist node_modules native /out/app/

FROM scratch AS prebuilt
COPY dist /out/app/dist
COPY node_modules /out/app/node_modules
COPY native /out/app/native
COPY data /out/data

# BuildKit builds only the stage named here, so the other one costs nothing.
FROM ${APP_FILES} AS app

FROM ${BASE_IMAGE} AS runtime
ENV NODE_ENV=production \
  EDGE_CONFIG=/etc/caliente-edge/edge.yml \
  EDGE_HEALTHCHECK_PORT=80
WORKDIR /app
# Application files stay owned by root: the edge process can read them but not change them.
COPY package.json ./
COPY bin ./bin
# The demo frontend, served when the edge starts without a configuration (EDGE_CONFIG empty).
COPY demo ./demo
COPY --from=app /out/app/node_modules ./node_modules
COPY --from=app /out/app/dist ./dist
# native/build: malloc-trim.node returns the memory glibc freed to the system after a load,
# low-memory.node has V8 free the garbage of the start at once, and session-tickets.node sets
# the TLS 1.3 session tickets per handshake.
COPY --from=app /out/app/native ./native
# Certificates and deploy state: the only paths the edge writes. Named volumes mounted here
# start with this owner.
COPY --from=app --chown=1000:1000 /out/data /var/lib/caliente-edge
# uid 1000 is the node user of the official image. The Docker socket is reached through the
# socket's group, added at run time (Compose group_add), so the edge never runs as root.
USER 1000:1000
EXPOSE 80 443
# Any HTTP answer on the plain-HTTP port counts: that listener answers every Host (challenge,
# redirect or error page) without depending on a certificate, so a site waiting for its first
# certificate is still healthy while a hung event loop or a dead listener is not.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "require('http').get({host:'127.0.0.1',port:process.env.EDGE_HEALTHCHECK_PORT,path:'/_edge/health',timeout:4000},(r)=>process.exit(r.statusCode<500?0:1)).on('timeout',function(){this.destroy()}).on('error',()=>process.exit(1))"]
# Exec form: node is PID 1 and receives SIGTERM itself; the edge drains and exits on it.
# --max-semi-space-size=2 caps V8's young generation at two 2 MB semi-spaces, where Node 20 lets
# it grow to two 16 MB ones under load. Measured with Node 20.20 on a 2-vCPU VM under
# `wrk -t2 -c64` over TLS, the peak RSS fell from about 130 to 95 MB for about 2% more CPU per
# request (see docs/production.md). The option is given here, not in
# NODE_OPTIONS, so an operator's NODE_OPTIONS adds to it instead of replacing it.
# bench/lib/edge-config.ts reads the node options from this line.
ENTRYPOINT ["node", "--max-semi-space-size=2", "/app/bin/caliente-edge.js"]
