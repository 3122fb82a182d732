import { z } from 'zod';
import { IMAGE_REPOSITORY, isAddressOrRange, isIpAddress, routePathProblem } from './formats.ts';
import { expectTypeMap } from './issues.ts';

/** Durations are milliseconds and sizes are bytes throughout the configuration. */
export const DEFAULT_HEADERS_TIMEOUT_MS = 20_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 300_000;
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 5_000;
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_UPSTREAM_TIMEOUT_MS = 60_000;
export const DEFAULT_UPSTREAM_KEEP_ALIVE_MS = 4_000;
export const DEFAULT_UPSTREAM_CONNECTIONS = 64;
export const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;
export const DEFAULT_WEBSOCKET_IDLE_MS = 0;
export const DEFAULT_RENEW_CHECK_INTERVAL_MS = 12 * 60 * 60 * 1000;
/** Waits after the 1st, 2nd, ... failed ACME attempt; the last entry repeats. */
export const DEFAULT_ACME_RETRY_SCHEDULE_MS = [
  60_000,
  5 * 60_000,
  15 * 60_000,
  3_600_000,
  3 * 3_600_000,
  6 * 3_600_000,
  12 * 3_600_000,
  24 * 3_600_000,
];
export const DEFAULT_ACME_POLL_MIN_MS = 1_000;
export const DEFAULT_ACME_POLL_MAX_MS = 30_000;
export const DEFAULT_HEALTH_INTERVAL_MS = 10_000;
export const DEFAULT_HEALTH_TIMEOUT_MS = 2_000;
export const DEFAULT_DEPLOY_HEALTH_TIMEOUT_MS = 60_000;
export const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;
export const DEFAULT_WEBSOCKET_CLOSE_GRACE_MS = 5_000;
export const DEFAULT_WEBSOCKET_CLOSE_SPREAD_MS = 5_000;
export const DEFAULT_PRE_DEPLOY_TIMEOUT_MS = 10 * 60 * 1000;
export const DEFAULT_MAX_FAILED_ATTEMPTS = 10;
export const DEFAULT_FAILED_ATTEMPTS_WINDOW_MS = 5 * 60 * 1000;

const HOST_NAME =
  /^(?=.{1,253}$)(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const SERVICE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const SERVICE_NAME_MESSAGE = 'must start with a letter or digit, then letters, digits, _ . or -';
const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;
const ENV_NAME_MESSAGE =
  'must be an environment variable name: A-Z, 0-9 and _, not starting with a digit';

/**
 * Maximum duration in milliseconds. Node sets a timer delay above 2^31 - 1 to 1 ms, so a larger
 * interval would run its loop without pause.
 */
export const MAX_DURATION_MS = 2_147_483_647;

const milliseconds = z
  .number({ errorMap: expectTypeMap('a number of milliseconds, such as 5000') })
  .int()
  .max(MAX_DURATION_MS, { message: `must be at most ${MAX_DURATION_MS} ms (about 24 days)` });
const durationMs = milliseconds.nonnegative();
const positiveMs = milliseconds.positive();

const hostName = z
  .string()
  .transform((value) => value.trim().toLowerCase().replace(/\.$/, ''))
  .refine((value) => HOST_NAME.test(value), {
    message: 'must be a DNS host name such as app.example.com',
  });

/**
 * `http://` or `https://`, a host with an optional port, and at most a trailing slash: no
 * credentials, path, query, fragment, backslash or white space, which URL parsing would drop or
 * normalise silently.
 */
const UPSTREAM_ORIGIN = /^https?:\/\/[^\s/?#@\\]+\/?$/;

const upstreamUrl = z.string().refine(
  (value) => {
    try {
      const url = new URL(value);
      return UPSTREAM_ORIGIN.test(value) && url.pathname === '/' && url.port !== '0';
    } catch {
      return false;
    }
  },
  {
    message:
      'must be an http:// or https:// URL with no path, query, fragment or credentials, such as http://backend:8000',
  },
);

const listenSchema = z
  .object({
    /** IP address both listeners bind to. Host names are rejected rather than resolved at start. */
    address: z
      .string()
      .refine(isIpAddress, (value) => ({
        message: `must be an IP address such as 0.0.0.0 or :: (127.0.0.1 for loopback only), got ${value}`,
      }))
      .default('0.0.0.0'),
    /**
     * Plain HTTP port: ACME challenges, redirects to HTTPS, and sites with `http: serve`. 0 binds a
     * free port chosen by the system.
     */
    httpPort: z.number().int().min(0).max(65535).default(80),
    /** HTTPS port. 0 binds a free port chosen by the system. */
    httpsPort: z.number().int().min(0).max(65535).default(443),
    /** Port used in the Location of the HTTP to HTTPS redirect; defaults to httpsPort. */
    redirectPort: z.number().int().min(1).max(65535).optional(),
  })
  .strict();

const timeoutsSchema = z
  .object({
    /** Time a client has to send the complete request head. */
    headersMs: positiveMs.default(DEFAULT_HEADERS_TIMEOUT_MS),
    /** Time a client has to send the complete request, body included. 0 disables. */
    requestMs: durationMs.default(DEFAULT_REQUEST_TIMEOUT_MS),
    /** Idle time after which a client keep-alive connection is closed. */
    keepAliveMs: positiveMs.default(DEFAULT_KEEP_ALIVE_TIMEOUT_MS),
    /** Time in-flight requests get to finish after SIGTERM. */
    shutdownGraceMs: durationMs.default(DEFAULT_SHUTDOWN_GRACE_MS),
  })
  .strict();

const routeTimeoutsSchema = z
  .object({
    /** Time to open a connection to the upstream. */
    connectMs: positiveMs.default(DEFAULT_CONNECT_TIMEOUT_MS),
    /** Time the upstream has to send the response head, and the longest pause between body chunks. */
    upstreamMs: positiveMs.default(DEFAULT_UPSTREAM_TIMEOUT_MS),
    /** Idle time after which an open WebSocket is closed. 0 keeps idle WebSockets open. */
    websocketIdleMs: durationMs.default(DEFAULT_WEBSOCKET_IDLE_MS),
    /** Idle time after which the edge closes a pooled upstream connection; keep it below the upstream's own. */
    upstreamKeepAliveMs: positiveMs.default(DEFAULT_UPSTREAM_KEEP_ALIVE_MS),
  })
  .strict();

const routeSchema = z
  .object({
    /** Path prefix, matched on segment boundaries. */
    path: z.string().superRefine((value, ctx) => {
      const problem = routePathProblem(value);
      if (problem !== undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, message: problem });
    }),
    /** Fixed upstream URL. */
    upstream: upstreamUrl.optional(),
    /** Name of a deployable service under `services`; the edge routes to its container. */
    service: z.string().regex(SERVICE_NAME, SERVICE_NAME_MESSAGE).optional(),
    /** Directory of static files. */
    static: z.string().min(1).optional(),
    /** For static routes: answer unknown paths without a file extension with index.html. */
    spa: z.boolean().default(false),
    /** Remove the route's path prefix before forwarding. */
    stripPrefix: z.boolean().default(false),
    /** Largest accepted request body. 0 means no limit. */
    maxBodyBytes: z.number().int().nonnegative().default(DEFAULT_MAX_BODY_BYTES),
    /** Accept WebSocket upgrades on this route. */
    websocket: z.boolean().default(true),
    /** Open connections per upstream. */
    maxConnections: z.number().int().positive().default(DEFAULT_UPSTREAM_CONNECTIONS),
    timeouts: routeTimeoutsSchema.default({}),
  })
  .strict()
  .superRefine((route, ctx) => {
    const targets = [route.upstream, route.service, route.static].filter((t) => t !== undefined);
    if (targets.length !== 1) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: 'must have exactly one of upstream, service or static',
      });
    }
    if (route.spa && route.static === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['spa'], message: 'needs static' });
    }
  });

const healthCheckSchema = z
  .object({
    /** Path probed on the upstream; a 2xx or 3xx answer counts as healthy unless stated otherwise. */
    path: z.string().startsWith('/').default('/'),
    intervalMs: positiveMs.default(DEFAULT_HEALTH_INTERVAL_MS),
    timeoutMs: positiveMs.default(DEFAULT_HEALTH_TIMEOUT_MS),
  })
  .strict();

/** Values of a site's `http` option. */
export const SITE_HTTP_MODES = ['redirect', 'serve'] as const;

const siteSchema = z
  .object({
    name: z.string().regex(SERVICE_NAME, SERVICE_NAME_MESSAGE),
    hosts: z.array(hostName).min(1),
    /** Docker network this site's containers are on. Requests from other networks are refused. */
    network: z.string().min(1).optional(),
    /** Send Strict-Transport-Security. Defaults to on for a site named prod or production. */
    hsts: z.boolean().optional(),
    /**
     * Handling of this site's plain HTTP requests other than ACME challenges: `redirect` them to
     * HTTPS with 308, or `serve` them like HTTPS requests (for a site behind a proxy that
     * terminates TLS, or an internal host).
     */
    http: z.enum(SITE_HTTP_MODES).default('redirect'),
    healthCheck: healthCheckSchema.default({}),
    routes: z.array(routeSchema).min(1),
  })
  .strict();

const ACME_DIRECTORY_NAMES = ['letsencrypt', 'letsencrypt-staging'];

const acmeSchema = z
  .object({
    /**
     * `letsencrypt`, `letsencrypt-staging` or an ACME directory URL. Required, so the edge never
     * orders from a CA the file does not name.
     */
    directory: z
      .string()
      .min(1)
      .refine((value) => ACME_DIRECTORY_NAMES.includes(value) || /^https?:\/\/./.test(value), {
        message: 'must be letsencrypt, letsencrypt-staging or an http(s):// directory URL',
      }),
    /** Contact address given to the CA. */
    email: z.string().email(),
    /** Must be true: you agree to the CA's terms of service. */
    termsOfServiceAgreed: z.literal(true, {
      errorMap: () => ({ message: "must be true to accept the CA's terms of service" }),
    }),
    /** PEM file of CA certificates to trust for the directory's HTTPS (private ACME servers). */
    caBundle: z.string().optional(),
    /** How often the renewal loop looks at every certificate. */
    renewCheckIntervalMs: positiveMs.default(DEFAULT_RENEW_CHECK_INTERVAL_MS),
    /** Waits after consecutive failed attempts, in order; the last one repeats. */
    retryScheduleMs: z.array(positiveMs).min(1).default(DEFAULT_ACME_RETRY_SCHEDULE_MS),
    /** First wait while polling an order or challenge for its result; it doubles up to pollMaxMs. */
    pollMinMs: positiveMs.default(DEFAULT_ACME_POLL_MIN_MS),
    /** Longest wait between two polls of an order or challenge. */
    pollMaxMs: positiveMs.default(DEFAULT_ACME_POLL_MAX_MS),
  })
  .strict();

const staticCertificateSchema = z
  .object({
    hosts: z.array(hostName).min(1),
    cert: z.string().min(1),
    key: z.string().min(1),
  })
  .strict();

const tlsSchema = z
  .object({
    /** Obtain certificates automatically. Without it, certificates come from `certificates` or are self-signed. */
    acme: acmeSchema.optional(),
    /** Certificates loaded from PEM files. */
    certificates: z.array(staticCertificateSchema).default([]),
  })
  .strict();

const serviceHealthSchema = z
  .object({
    /** HTTP path probed on the new container; omit to rely on the image's Docker HEALTHCHECK. */
    path: z.string().startsWith('/').optional(),
    /** Host header of the probe; defaults to the first host of the site that routes to the service. */
    host: hostName.optional(),
    intervalMs: positiveMs.default(1_000),
    timeoutMs: positiveMs.default(DEFAULT_DEPLOY_HEALTH_TIMEOUT_MS),
  })
  .strict();

const serviceSchema = z
  .object({
    /** Name of the running container (the Compose container name). */
    container: z.string().min(2),
    /** Repository that deploys may use, such as ghcr.io/owner/caliente-backend. */
    image: z.string().regex(IMAGE_REPOSITORY, {
      message: 'must be an image repository without tag or digest, such as ghcr.io/owner/app',
    }),
    /** Port the container listens on. */
    port: z.number().int().min(1).max(65535),
    /** Key under `deploy.environments` whose secret may deploy this service. */
    environment: z.string().min(1),
    /** One-off command run in the new image before the switch, such as a database migration. */
    preDeploy: z.array(z.string()).min(1).optional(),
    health: serviceHealthSchema.default({}),
    drainTimeoutMs: durationMs.default(DEFAULT_DRAIN_TIMEOUT_MS),
    /** Time before open WebSockets of a replaced container get close code 1012. */
    websocketCloseGraceMs: durationMs.default(DEFAULT_WEBSOCKET_CLOSE_GRACE_MS),
    /** Window over which those closes are spread. */
    websocketCloseSpreadMs: durationMs.default(DEFAULT_WEBSOCKET_CLOSE_SPREAD_MS),
    /** Time the preDeploy command may run before the deploy fails. */
    preDeployTimeoutMs: positiveMs.default(DEFAULT_PRE_DEPLOY_TIMEOUT_MS),
  })
  .strict();

const environmentSchema = z
  .object({
    /** Name of the environment variable holding this environment's deploy secret. */
    secretEnv: z.string().regex(ENV_NAME, ENV_NAME_MESSAGE),
  })
  .strict();

const registryAuthSchema = z
  .object({
    /** Registry host name, such as ghcr.io. */
    registry: z.string().min(1),
    username: z.string().min(1),
    /** Name of the environment variable holding the token. */
    passwordEnv: z.string().regex(ENV_NAME, ENV_NAME_MESSAGE),
  })
  .strict();

const dockerSchema = z
  .object({
    /** Docker Engine socket. */
    socket: z.string().default('/var/run/docker.sock'),
    registryAuth: z.array(registryAuthSchema).default([]),
  })
  .strict();

const deploySchema = z
  .object({
    environments: z.record(z.string(), environmentSchema).default({}),
    /** Signed requests older than this are rejected. */
    maxClockSkewMs: positiveMs.default(5 * 60 * 1000),
    /** Deploy records kept per service. */
    historyLimit: z.number().int().positive().default(50),
    /** Failed deploy requests a client address may make per window before it gets 429. */
    maxFailedAttempts: z.number().int().positive().default(DEFAULT_MAX_FAILED_ATTEMPTS),
    failedAttemptsWindowMs: positiveMs.default(DEFAULT_FAILED_ATTEMPTS_WINDOW_MS),
  })
  .strict();

const adminSchema = z
  .object({
    /** Name of the environment variable holding the scrypt hash of the admin password. */
    passwordHashEnv: z
      .string()
      .regex(ENV_NAME, ENV_NAME_MESSAGE)
      .default('EDGE_ADMIN_PASSWORD_HASH'),
    sessionTtlMs: positiveMs.default(12 * 60 * 60 * 1000),
  })
  .strict();

export const configSchema = z
  .object({
    listen: listenSchema.default({}),
    timeouts: timeoutsSchema.default({}),
    /** Peers (IP or CIDR) whose X-Forwarded-* headers are kept and extended. */
    trustedProxies: z
      .array(
        z.string().refine(isAddressOrRange, (value) => ({
          message: `${value} is not an IP address or CIDR range`,
        })),
      )
      .default([]),
    /** Folder for certificates and ACME accounts. */
    certsDir: z.string().default('certs'),
    /** Folder for deploy state and history. */
    stateDir: z.string().default('state'),
    log: z
      .object({
        level: z
          .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
          .default('info'),
        /** Write one access line per request. */
        access: z.boolean().default(true),
      })
      .strict()
      .default({}),
    tls: tlsSchema.default({}),
    sites: z.array(siteSchema).min(1),
    services: z
      .record(z.string().regex(SERVICE_NAME, SERVICE_NAME_MESSAGE), serviceSchema)
      .default({}),
    docker: dockerSchema.default({}),
    deploy: deploySchema.default({}),
    admin: adminSchema.default({}),
  })
  .strict();

export type EdgeConfigInput = z.input<typeof configSchema>;
export type EdgeConfig = z.output<typeof configSchema>;
export type SiteConfig = EdgeConfig['sites'][number];
export type RouteConfig = SiteConfig['routes'][number];
export type ServiceConfig = EdgeConfig['services'][string];
