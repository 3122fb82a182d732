import { Agent } from 'node:https';
import acme from 'acme-client';
import { EdgeError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { currentProblem, getJson, runInAcmeScope } from './acme-http.ts';
import {
  AcmeProblemError,
  parseRetryAfter,
  PROBLEM_ACCOUNT_DOES_NOT_EXIST,
  PROBLEM_ALREADY_REPLACED,
  problemTypeOf,
} from './acme-problem.ts';
import type { AcmeIssuer, ChallengeResponder, IssueRequest, RenewalInfo } from './issuer.ts';
import type { CertificateStore, PemKeyPair } from './store.ts';

export interface AcmeClientIssuerOptions {
  directoryUrl: string;
  email: string;
  /** PEM CA certificates to trust for the directory's HTTPS; the system store when absent. */
  caBundle?: string;
  store: CertificateStore;
  /** First and longest wait while polling an order, authorization or challenge. */
  pollMinMs: number;
  pollMaxMs: number;
}

type Order = Awaited<ReturnType<acme.Client['createOrder']>>;
type Authorization = Awaited<ReturnType<acme.Client['getAuthorizations']>>[number];

/** AcmeIssuer on acme-client: one account per directory, HTTP-01 challenges, ECDSA P-256 keys. */
export class AcmeClientIssuer implements AcmeIssuer {
  readonly directoryUrl: string;
  private readonly options: AcmeClientIssuerOptions;
  private readonly httpsAgent: Agent | undefined;
  private client: acme.Client | undefined;

  constructor(options: AcmeClientIssuerOptions) {
    this.options = options;
    this.directoryUrl = options.directoryUrl;
    this.httpsAgent =
      options.caBundle === undefined ? undefined : new Agent({ ca: options.caBundle });
  }

  issue(request: IssueRequest): Promise<PemKeyPair> {
    const scope = { logger: request.logger, httpsAgent: this.httpsAgent };

    return runInAcmeScope(scope, async () => {
      try {
        return await this.placeOrder(request);
      } catch (error) {
        // acme-client's own error carries no problem type: withProblem adds it.
        const problem = withProblem(error);
        if (problemTypeOf(problem) === PROBLEM_ACCOUNT_DOES_NOT_EXIST) await this.forgetAccount();
        throw problem;
      }
    });
  }

  renewalInfo(certificateId: string, logger: Logger): Promise<RenewalInfo | undefined> {
    return runInAcmeScope({ logger, httpsAgent: this.httpsAgent }, async () => {
      const directory = await getJson(this.directoryUrl);
      const base = (directory.data as { renewalInfo?: unknown }).renewalInfo;
      if (typeof base !== 'string') return undefined;

      const response = await getJson(`${base.replace(/\/$/, '')}/${certificateId}`);
      return parseRenewalInfo(response.data, response.headers['retry-after']);
    });
  }

  private async placeOrder(request: IssueRequest): Promise<PemKeyPair> {
    const client = await this.accountClient();
    const order = await this.createOrder(client, request);
    const authorizations = await client.getAuthorizations(order);

    await Promise.all(
      authorizations.map((authorization) =>
        this.completeAuthorization(client, authorization, request.challenges, request.logger),
      ),
    );

    const key = await acme.crypto.createPrivateEcdsaKey('P-256');
    const [, csr] = await acme.crypto.createCsr(
      { commonName: request.names[0], altNames: request.names },
      key,
    );
    const finalized = await client.finalizeOrder(order, csr);
    const cert = await client.getCertificate(finalized);
    return { cert, key: key.toString() };
  }

  private async createOrder(client: acme.Client, request: IssueRequest): Promise<Order> {
    const identifiers = request.names.map((value) => ({ type: 'dns', value }));
    if (request.replaces === undefined) return client.createOrder({ identifiers });

    try {
      return await client.createOrder({ identifiers, replaces: request.replaces } as never);
    } catch (error) {
      // The CA refuses a second replacement of one certificate; a plain order still renews it.
      if (problemTypeOf(withProblem(error)) !== PROBLEM_ALREADY_REPLACED) throw error;
      request.logger.info(
        { replaces: request.replaces },
        'certificate already replaced, ordering anew',
      );
      return client.createOrder({ identifiers });
    }
  }

  private async completeAuthorization(
    client: acme.Client,
    authorization: Authorization,
    challenges: ChallengeResponder,
    logger: Logger,
  ): Promise<void> {
    if (authorization.status === 'valid') return;

    const host = authorization.identifier.value;
    const challenge = authorization.challenges.find((candidate) => candidate.type === 'http-01');
    if (challenge === undefined) {
      throw new AcmeProblemError(`no http-01 challenge offered for ${host}`, {});
    }

    const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
    challenges.add(host, challenge.token, keyAuthorization);
    try {
      await client.completeChallenge(challenge);
      await client.waitForValidStatus(challenge);
    } catch (error) {
      await deactivate(client, authorization, logger);
      throw error;
    } finally {
      challenges.remove(challenge.token);
    }
  }

  /** Returns the client of the stored account, registering one on first use. */
  private async accountClient(): Promise<acme.Client> {
    if (this.client !== undefined) return this.client;

    const { store, email } = this.options;
    const stored = await store.loadAccount();
    const accountKey = stored?.key ?? (await acme.crypto.createPrivateEcdsaKey('P-256')).toString();
    if (stored === undefined) await store.saveAccount({ key: accountKey });

    const client = new acme.Client({
      directoryUrl: this.directoryUrl,
      accountKey,
      accountUrl: stored?.url,
      backoffMin: this.options.pollMinMs,
      backoffMax: this.options.pollMaxMs,
    });
    if (stored?.url === undefined) {
      await client.createAccount({ termsOfServiceAgreed: true, contact: [`mailto:${email}`] });
      await store.saveAccount({ key: accountKey, url: client.getAccountUrl() });
    }

    this.client = client;
    return client;
  }

  /** Drops the stored account URL so the next attempt registers the key again. */
  private async forgetAccount(): Promise<void> {
    const stored = await this.options.store.loadAccount();
    if (stored !== undefined) await this.options.store.saveAccount({ key: stored.key });
    this.client = undefined;
  }
}

/** Parses a renewalInfo response (RFC 9773 section 4.2); throws on a malformed window. */
export function parseRenewalInfo(data: unknown, retryAfter: unknown): RenewalInfo {
  const window = (data as { suggestedWindow?: { start?: unknown; end?: unknown } })
    ?.suggestedWindow;
  const start = new Date(String(window?.start));
  const end = new Date(String(window?.end));
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end < start) {
    throw new AcmeProblemError(`invalid renewalInfo window: ${JSON.stringify(window)}`, {});
  }

  const explanationUrl = (data as { explanationURL?: unknown }).explanationURL;
  return {
    start,
    end,
    retryAfterMs: parseRetryAfter(retryAfter, Date.now()),
    explanationUrl: typeof explanationUrl === 'string' ? explanationUrl : undefined,
  };
}

/**
 * Adds the problem type to an acme-client error. acme-client reports a failed validation or
 * request as a plain Error with only the problem's detail, but the retry logic and the status
 * need the type, which the HTTP wrapper recorded from the response.
 */
function withProblem(error: unknown): unknown {
  if (error instanceof EdgeError || !(error instanceof Error)) return error;

  // acme-client's message is the problem's detail with line breaks removed.
  const problem = currentProblem();
  const detail = problem?.detail?.replace(/\n/g, '');
  if (problem?.type === undefined || detail !== error.message) return error;

  return new AcmeProblemError(error.message, {
    problemType: problem.type,
    httpStatus: problem.status,
    url: problem.url,
  });
}

/** Gives up a failed authorization so it does not count against the CA's pending limit. */
async function deactivate(
  client: acme.Client,
  authorization: Authorization,
  logger: Logger,
): Promise<void> {
  try {
    await client.deactivateAuthorization(authorization);
  } catch (error) {
    logger.debug(
      { err: error, name: authorization.identifier.value },
      'deactivating authorization failed',
    );
  }
}
