import { existsSync, readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A position in a TypeScript source of the repository, 1-based line. */
export interface SourceLocation {
  file: string;
  line: number;
}

/**
 * Maps positions in the compiled edge (edge-dist/*.js, built with source maps) back to
 * src/*.ts lines, so profile entries point at the code a reader would change.
 */
export class SourceLocations {
  private readonly maps = new Map<string, SourceMap | undefined>();

  constructor(private readonly repoRoot: string) {}

  /** `line` and `column` are 0-based as in a .cpuprofile; undefined when no map covers them. */
  resolve(url: string, line: number, column: number): SourceLocation | undefined {
    if (!url.startsWith('file://') || !url.includes('/edge-dist/')) return undefined;

    const file = fileURLToPath(url);
    const map = this.mapOf(file);
    const entry = map?.findEntry(line, column);
    if (entry === undefined || !('originalSource' in entry)) return undefined;

    const source = entry.originalSource.startsWith('file://')
      ? fileURLToPath(entry.originalSource)
      : path.resolve(path.dirname(file), entry.originalSource);
    return { file: path.relative(this.repoRoot, source), line: entry.originalLine + 1 };
  }

  private mapOf(file: string): SourceMap | undefined {
    if (!this.maps.has(file)) {
      const mapFile = `${file}.map`;
      const payload = existsSync(mapFile) ? JSON.parse(readFileSync(mapFile, 'utf8')) : undefined;
      this.maps.set(file, payload === undefined ? undefined : new SourceMap(payload));
    }
    return this.maps.get(file);
  }
}
