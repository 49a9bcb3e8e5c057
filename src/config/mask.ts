/**
 * A URL with its password replaced, so it can be printed: the host is what an operator needs
 * when checking a config or reading an error. Anything that is not a URL is masked whole.
 */
export function maskUrlPassword(value: string): string {
  // `new URL()` also takes "secret:part" (a scheme and a path): only scheme://… is a URL here.
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return '********';
  try {
    const url = new URL(value);
    if (url.password) url.password = '********';
    return url.toString();
  } catch {
    return '********';
  }
}
