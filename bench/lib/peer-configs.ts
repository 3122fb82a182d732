import type { BenchPorts } from './options.ts';

/**
 * Configuration text of the upstream and of the three peer proxies. Every proxy keeps up to 128
 * idle keep-alive connections to the upstream, terminates TLS 1.2/1.3 with the same certificate,
 * sends /ws to the WebSocket echo server and writes no access log.
 */

const NGINX_TEMP_PATHS = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'];

function nginxPreamble(dir: string, workers: number): string {
  const temps = NGINX_TEMP_PATHS.map((name) => `  ${name}_temp_path ${dir}/tmp-${name};`);
  return `worker_processes ${workers};
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
${temps.join('\n')}
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 65;
`;
}

/** The origin: nginx with 2 workers answering "ok" on / and a 100 KB file on /100k.bin. */
export function upstreamNginxConfig(dir: string, wwwDir: string, ports: BenchPorts): string {
  return `${nginxPreamble(dir, 2)}  sendfile on;
  tcp_nopush on;
  server {
    listen 127.0.0.1:${ports.upstream} backlog=4096;
    location = / { return 200 "ok"; }
    location = /100k.bin { root ${wwwDir}; }
  }
}
`;
}

/** The reference: stock nginx, 1 worker, default proxy buffers. */
export function proxyNginxConfig(dir: string, tlsDir: string, ports: BenchPorts): string {
  return `${nginxPreamble(dir, 1)}  upstream origin {
    server 127.0.0.1:${ports.upstream};
    keepalive 128;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:${ports.nginxHttp} backlog=4096;
    listen 127.0.0.1:${ports.nginxHttps} ssl backlog=4096;
    ssl_certificate ${tlsDir}/cert.pem;
    ssl_certificate_key ${tlsDir}/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
    location /ws {
      proxy_pass http://127.0.0.1:${ports.wsEcho};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_read_timeout 1h;
    }
  }
}
`;
}

/** Caddy with its admin API and automatic HTTPS off; it proxies WebSockets by default. */
export function caddyConfig(dir: string, tlsDir: string, ports: BenchPorts): string {
  const proxy = (origin: number): string => `reverse_proxy 127.0.0.1:${origin} {
			transport http {
				keepalive 60s
				keepalive_idle_conns 128
				keepalive_idle_conns_per_host 128
			}
		}`;
  const routes = `	bind 127.0.0.1
	handle /ws* {
		${proxy(ports.wsEcho)}
	}
	handle {
		${proxy(ports.upstream)}
	}`;
  return `{
	admin off
	auto_https off
	storage file_system ${dir}/data
}
http://localhost:${ports.caddyHttp} {
${routes}
}
https://localhost:${ports.caddyHttps} {
	tls ${tlsDir}/cert.pem ${tlsDir}/key.pem
${routes}
}
`;
}

/** HAProxy with 2 threads (one per core here) and connection reuse to the origin. */
export function haproxyConfig(tlsDir: string, ports: BenchPorts): string {
  return `global
	maxconn 8000
	nbthread 2
defaults
	mode http
	timeout connect 5s
	timeout client 60s
	timeout server 60s
	timeout tunnel 1h
	option http-keep-alive
	http-reuse always
frontend fe_http
	bind 127.0.0.1:${ports.haproxyHttp}
	use_backend be_ws if { path_beg /ws }
	default_backend be_origin
frontend fe_https
	bind 127.0.0.1:${ports.haproxyHttps} ssl crt ${tlsDir}/combined.pem alpn http/1.1
	use_backend be_ws if { path_beg /ws }
	default_backend be_origin
backend be_origin
	server origin 127.0.0.1:${ports.upstream} maxconn 1000
backend be_ws
	server ws 127.0.0.1:${ports.wsEcho}
`;
}
