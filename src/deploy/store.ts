import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
import path from 'node:path';
import { errorMessage } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { DeployRecord } from '../status.ts';

/** A deploy record as stored, with the idempotency key the request carried. */
export interface DeployEntry extends DeployRecord {
  idempotencyKey?: string;
}

/**
 * Where an unfinished deploy stood, written before each step that changes containers. A restarted
 * edge reads it to decide which container keeps serving.
 */
export interface DeployJournal {
  id: string;
  service: string;
  /** Container that served when the deploy started. */
  oldContainerId: string;
  /** Container created by the deploy, once it exists. */
  newContainerId?: string;
  /** True once the new container took the traffic: from then on it is the one to keep. */
  switched: boolean;
}

interface StateFile {
  version: 1;
  history: DeployEntry[];
  active: DeployJournal[];
}

const STATE_FILE = 'deploys.json';

/**
 * Deploy history and journals of unfinished deploys in one JSON file under the state folder,
 * replaced atomically (write a temporary file, fsync, rename) on every change. Writes are
 * synchronous so a journal is on disk before the Docker call it protects.
 */
export class DeployStore {
  private readonly file: string;
  private readonly historyLimit: number;
  private state: StateFile;

  constructor(stateDir: string, historyLimit: number, logger: Logger) {
    this.file = path.join(stateDir, STATE_FILE);
    this.historyLimit = historyLimit;
    mkdirSync(stateDir, { recursive: true });
    this.state = readState(this.file, logger);
  }

  /** Records, newest first; only those of `service` when given. */
  history(service?: string): DeployEntry[] {
    const all = [...this.state.history].reverse();
    return service === undefined ? all : all.filter((entry) => entry.service === service);
  }

  find(id: string): DeployEntry | undefined {
    return this.state.history.find((entry) => entry.id === id);
  }

  /** Returns the newest record with idempotency key `key` of a service that `inScope` accepts. */
  findByIdempotencyKey(
    key: string,
    inScope: (service: string) => boolean,
  ): DeployEntry | undefined {
    const history = this.state.history;
    for (let index = history.length - 1; index >= 0; index--) {
      const entry = history[index]!;
      if (entry.idempotencyKey === key && inScope(entry.service)) return entry;
    }
    return undefined;
  }

  /** Inserts or replaces a record and trims the service's history to the limit. */
  saveRecord(entry: DeployEntry): void {
    const index = this.state.history.findIndex((existing) => existing.id === entry.id);
    if (index >= 0) this.state.history[index] = structuredClone(entry);
    else this.state.history.push(structuredClone(entry));
    this.trim(entry.service);
    this.write();
  }

  journals(): DeployJournal[] {
    return this.state.active.map((journal) => ({ ...journal }));
  }

  saveJournal(journal: DeployJournal): void {
    this.state.active = this.state.active.filter(
      (existing) => existing.service !== journal.service,
    );
    this.state.active.push({ ...journal });
    this.write();
  }

  clearJournal(service: string): void {
    this.state.active = this.state.active.filter((existing) => existing.service !== service);
    this.write();
  }

  private trim(service: string): void {
    const ofService = this.state.history.filter((entry) => entry.service === service);
    const excess = ofService.length - this.historyLimit;
    if (excess <= 0) return;
    const dropped = new Set(ofService.slice(0, excess).map((entry) => entry.id));
    this.state.history = this.state.history.filter((entry) => !dropped.has(entry.id));
  }

  private write(): void {
    const temporary = `${this.file}.${process.pid}.tmp`;
    const fd = openSync(temporary, 'w', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(this.state, null, 2)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, this.file);
  }
}

function readState(file: string, logger: Logger): StateFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return emptyState();
    throw error;
  }

  try {
    const parsed = JSON.parse(text) as Partial<StateFile>;
    return { version: 1, history: parsed.history ?? [], active: parsed.active ?? [] };
  } catch (error) {
    // A corrupt file cannot come from our atomic writes; keep it for inspection and start empty.
    const aside = `${file}.corrupt-${Date.now()}`;
    renameSync(file, aside);
    logger.error(
      { file, movedTo: aside, err: errorMessage(error) },
      'deploy state unreadable, starting empty',
    );
    return emptyState();
  }
}

function emptyState(): StateFile {
  return { version: 1, history: [], active: [] };
}
