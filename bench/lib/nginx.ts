import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { trackPid, untrackPid } from '../../test/harness/cleanup.js';
import { probeStatus } from '../../test/harness/http-probe.js';
import { freePort } from '../../test/harness/ports.js';
import { run, waitUntil } from '../../test/harness/process.js';
import { childPids } from './proc.js';

export interface Nginx {
  url: string;
  version: string;
  masterPid: number;
  workerPids(): number[];
  stop(): Promise<void>;
}

/**
 * The nginx front end of the registry guides (distribution's docs/recipes/nginx.md), unchanged
 * where it matters for speed: no worker_processes line (so one worker), auth_basic on every
 * /v2/ request, request and response buffering at their defaults, HTTP/1.0 without keep-alive
 * towards the registry. Only what running it from a temp dir needs is added: pid, logs and temp
 * paths inside `dir`, daemon off.
 */
function recipeConfig(o: { dir: string; port: number; upstream: string; certFile: string; keyFile: string; htpasswdFile: string }): string {
  return `# --- added to run outside /etc/nginx (not part of the recipe) ---
daemon off;
pid ${o.dir}/nginx.pid;
error_log ${o.dir}/error.log warn;
# --- the recipe ---
events {
    worker_connections  1024;
}

http {
  # added: temp files in the bench directory (the recipe relies on the packaged defaults)
  client_body_temp_path ${o.dir}/body;
  proxy_temp_path ${o.dir}/proxy;
  access_log ${o.dir}/access.log;

  upstream docker-registry {
    server ${o.upstream};
  }

  ## Set a variable to help us decide if we need to add the
  ## 'Docker-Distribution-Api-Version' header.
  ## The registry always sets this header.
  ## In the case of nginx performing auth, the header is unset
  ## since nginx is auth-ing before proxying.
  map $upstream_http_docker_distribution_api_version $docker_distribution_api_version {
    '' 'registry/2.0';
  }

  server {
    listen 127.0.0.1:${o.port} ssl;
    server_name localhost;

    # SSL
    ssl_certificate ${o.certFile};
    ssl_certificate_key ${o.keyFile};

    # Recommendations from https://raymii.org/s/tutorials/Strong_SSL_Security_On_nginx.html
    ssl_protocols TLSv1.1 TLSv1.2;
    ssl_ciphers 'EECDH+AESGCM:EDH+AESGCM:AES256+EECDH:AES256+EDH';
    ssl_prefer_server_ciphers on;
    ssl_session_cache shared:SSL:10m;

    # disable any limits to avoid HTTP 413 for large image uploads
    client_max_body_size 0;

    # required to avoid HTTP 411: see Issue #1486 (https://github.com/moby/moby/issues/1486)
    chunked_transfer_encoding on;

    location /v2/ {
      # Do not allow connections from docker 1.5 and earlier
      # docker pre-1.6.0 did not properly set the user agent on ping, catch "Go *" user agents
      if ($http_user_agent ~ "^(docker\\/1\\.(3|4|5(?!\\.[0-9]-dev))|Go ).*$" ) {
        return 404;
      }

      # To add basic authentication to v2 use auth_basic setting.
      auth_basic "Registry realm";
      auth_basic_user_file ${o.htpasswdFile};

      ## If $docker_distribution_api_version is empty, the header is not added.
      ## See the map directive above where this variable is defined.
      add_header 'Docker-Distribution-Api-Version' $docker_distribution_api_version always;

      proxy_pass                          http://docker-registry;
      proxy_set_header  Host              $http_host;   # required for docker client's sake
      proxy_set_header  X-Real-IP         $remote_addr; # pass on real client's IP
      proxy_set_header  X-Forwarded-For   $proxy_add_x_forwarded_for;
      proxy_set_header  X-Forwarded-Proto $scheme;
      proxy_read_timeout                  900;
    }
  }
}
`;
}

function isNginxWorker(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('nginx: worker');
  } catch {
    return false;
  }
}

/** `dir` must be readable by nginx's unprivileged workers (they read the htpasswd file on every request). */
export async function startNginx(o: { dir: string; upstream: string; certFile: string; keyFile: string; htpasswdFile: string }): Promise<Nginx> {
  const version = (await run('nginx', ['-v'])).stderr.trim().replace(/^nginx version: nginx\//, '');
  const port = await freePort();
  for (const sub of ['body', 'proxy']) {
    await mkdir(path.join(o.dir, sub), { recursive: true });
    // Workers run as "nobody" when nginx starts as root and write request bodies here.
    await chmod(path.join(o.dir, sub), 0o777);
  }
  const conf = path.join(o.dir, 'nginx.conf');
  await writeFile(conf, recipeConfig({ ...o, port }));
  await run('nginx', ['-t', '-p', o.dir, '-c', conf], { check: true });
  const child = spawn('nginx', ['-p', o.dir, '-c', conf], { stdio: 'ignore', detached: true });
  const masterPid = child.pid!;
  trackPid(masterPid);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `https://127.0.0.1:${port}`;
  // Any answer (401 without credentials) means it is up.
  await waitUntil(async () => (await probeStatus(`${url}/v2/`)) === 401, { timeoutMs: 10_000, what: `nginx at ${url}` });
  return {
    url,
    version,
    masterPid,
    workerPids: () => childPids(masterPid),
    async stop() {
      const workers = childPids(masterPid);
      // TERM is nginx's fast shutdown: workers close their connections at once instead of waiting for idle keep-alives.
      try {
        process.kill(masterPid, 'SIGTERM');
      } catch {
        return;
      }
      const timer = setTimeout(() => process.kill(-masterPid, 'SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
      untrackPid(masterPid);
      for (const pid of workers.filter(isNginxWorker)) process.kill(pid, 'SIGKILL');
    },
  };
}
