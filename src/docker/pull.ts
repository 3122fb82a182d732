import { EdgeError, errorMessage } from '../errors.ts';
import type { PullProgress } from './engine.ts';

/**
 * Reads a pull progress stream to its end. The Engine answers `POST /images/create` with 200
 * before it knows whether the pull will work and reports failures as an `error` line inside the
 * stream, so the HTTP status alone says nothing. A stream that breaks before its end (socket
 * reset, Engine restart) is a failure too.
 */
export async function readPullStream(
  ref: string,
  stream: NodeJS.ReadableStream,
  onProgress?: (event: PullProgress) => void,
): Promise<void> {
  let buffered = '';
  try {
    for await (const chunk of stream as AsyncIterable<Buffer | string>) {
      buffered += chunk.toString();
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        handleLine(ref, buffered.slice(0, newline), onProgress);
        buffered = buffered.slice(newline + 1);
      }
    }
  } catch (error) {
    if (error instanceof EdgeError) throw error;
    throw pullFailed(ref, `stream broke before the end: ${errorMessage(error)}`, error);
  }
  handleLine(ref, buffered, onProgress);
}

function handleLine(
  ref: string,
  line: string,
  onProgress: ((event: PullProgress) => void) | undefined,
): void {
  const text = line.trim();
  if (text === '') return;

  let event: PullProgress;
  try {
    event = JSON.parse(text) as PullProgress;
  } catch {
    throw pullFailed(ref, `unreadable progress line: ${text.slice(0, 200)}`);
  }

  const failure = event.errorDetail?.message ?? event.error;
  if (failure !== undefined) throw pullFailed(ref, failure);
  onProgress?.(event);
}

/** The error every failed pull raises: the registry's message with the image named. */
export function pullFailed(ref: string, reason: string, cause?: unknown): EdgeError {
  return new EdgeError('EDGE_PULL_FAILED', `pulling image ${ref}: ${reason}`, {
    status: 502,
    context: { image: ref },
    cause,
  });
}
