/**
 * The source address of the i-th of many bench clients: `perAddress` clients per address from
 * 127.0.0.2 on, as many hosts would connect. One address may hold only
 * limits.maxConnectionsPerClient (512) connections to the proxy.
 */
export function loopbackClient(i: number, perAddress: number): string {
  const n = Math.floor(i / perAddress);
  return `127.0.${1 + Math.floor(n / 250)}.${2 + (n % 250)}`;
}
