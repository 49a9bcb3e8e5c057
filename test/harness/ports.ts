import net from 'node:net';

/**
 * Asks the kernel for an unused TCP port on 127.0.0.1. The port is released before returning,
 * so another process can grab it in the meantime: servers started on it should treat
 * EADDRINUSE as "pick another port and retry".
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
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
