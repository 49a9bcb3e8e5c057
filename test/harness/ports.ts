import net from 'node:net';

/**
 * Ports this process has handed out. The kernel may offer a port again as soon as it is released:
 * a test that took one for the proxy's metrics listener once saw the registry it started next get
 * the same port, and the proxy then failed with EADDRINUSE (CI, 12-06).
 */
const handedOut = new Set<number>();

/**
 * An unused TCP port on `host`, never one this process has handed out before. The port is
 * released before returning, so another process can grab it in the meantime: servers started on
 * it should treat EADDRINUSE as "pick another port and retry".
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await kernelPort(host);
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error('freePort: the kernel offered only ports this process had already handed out');
}

function kernelPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen({ host, port: 0, exclusive: true }, () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('freePort: listener has no TCP address'));
        return;
      }
      const { port } = addr;
      srv.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}
