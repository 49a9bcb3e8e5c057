import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { clientTimeouts, configureTimeouts } from '../../src/proxy/timeouts.js';

// A 300 s wait is too long for the suite; what cuts long uploads is Node's default requestTimeout.
test('listeners never cut a long request, but still bound header reading and idle sockets', () => {
  const server = http.createServer();
  assert.equal(server.requestTimeout, 300_000, 'Node default changed: re-check this test');
  configureTimeouts(server, clientTimeouts({ upstreamTimeoutSeconds: 900, limits: { headerTimeoutSeconds: 60, bodyIdleSeconds: 60, maxConnections: 1, maxConnectionsPerClient: 1 } }));
  assert.equal(server.requestTimeout, 0);
  assert.equal(server.headersTimeout, 60_000);
  assert.ok(server.timeout > 900_000, 'client idle timeout must outlast the upstream timeout so the 504 gets out');
});
