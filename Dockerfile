# Build stage: compile TypeScript with the dev dependencies, then keep only production ones.
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --no-audit --no-fund
COPY src ./src
RUN npx tsc -p tsconfig.json && npm prune --omit=dev

FROM node:22-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json proxy.config.json ./
# State (token key, certificates) and the htpasswd file live on volumes owned by the node user.
RUN mkdir -p /app/data /app/auth && chown node:node /app/data /app/auth
USER node
VOLUME ["/app/data", "/app/auth"]
EXPOSE 5443
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD node -e "require('https').get({host:'127.0.0.1',port:process.env.HEALTH_PORT||5443,path:'/healthz',rejectUnauthorized:false},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve", "--config", "/app/proxy.config.json"]
