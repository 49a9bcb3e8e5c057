# registry-gate in a container. BASE is any Debian-like image with Node ≥ 20 and a "node" user
# (uid 1000); the tests build it on a base made from Debian packages, as none can be pulled there.
ARG BASE=node:24-bookworm-slim

# Build stage: compile TypeScript with the dev dependencies, then keep only production ones.
FROM ${BASE} AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --no-audit --no-fund
COPY src ./src
RUN npx tsc -p tsconfig.json && npm prune --omit=dev --no-audit --no-fund

FROM ${BASE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json proxy.config.json ./
# `registry-gate …` on PATH, so that `docker exec <container> registry-gate passwd add …` works
# (npx would need a writable HOME). State (token key, certificates) and htpasswd live on volumes
# owned by the node user, which is who the proxy runs as.
RUN chmod 755 dist/cli/main.js && ln -s /app/dist/cli/main.js /usr/local/bin/registry-gate \
  && mkdir -p /app/data /app/auth && chown node:node /app/data /app/auth
USER node
VOLUME ["/app/data", "/app/auth"]
EXPOSE 5443
# Reads the same config and REGGATE_* variables as serve, so it probes where the proxy listens.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s CMD ["registry-gate", "health", "--config", "/app/proxy.config.json"]
ENTRYPOINT ["registry-gate"]
CMD ["serve", "--config", "/app/proxy.config.json"]
