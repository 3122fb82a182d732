import {
  defaultErrorMap,
  ZodIssueCode,
  type ZodErrorMap,
  type ZodInvalidStringIssue,
  type ZodIssue,
  type ZodIssueOptionalMessage,
} from 'zod';

/** Names of the types zod reports, as the messages write them after "must be". */
const EXPECTED_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  integer: 'a whole number',
  boolean: 'true or false',
  array: 'a list',
  object: 'an object',
};

/** Names of the types zod found, as the messages write them after "got". */
const RECEIVED_NAMES: Record<string, string> = {
  null: 'an empty value',
  array: 'a list',
  object: 'an object',
  nan: 'NaN',
};

/**
 * Replaces zod's default messages ("Required", "Number must be less than or equal to 65535")
 * with plain ones that read like the schema's own: "is required", "must be at most 65535",
 * "unknown key x". A message set in the schema is kept as written.
 */
export const plainErrorMap: ZodErrorMap = (issue, ctx) => {
  // A map passed to parse runs after any map bound to a schema field, so the schema's own
  // message arrives here as ctx.defaultError and is kept when it differs from zod's default.
  const zodDefault = defaultErrorMap(issue, { data: ctx.data, defaultError: '' }).message;
  if (ctx.defaultError !== zodDefault) return { message: ctx.defaultError };

  return { message: plainMessage(issue, ctx.data) ?? ctx.defaultError };
};

/**
 * Returns an error map for one schema field that states what the field expects when given a value
 * of the wrong type: `must be a number of milliseconds, such as 5000, got string`.
 */
export function expectTypeMap(expected: string): ZodErrorMap {
  return (issue, ctx) => {
    // A missing value and a fraction for .int() keep the plain messages ("is required").
    if (
      issue.code !== ZodIssueCode.invalid_type ||
      issue.received === 'undefined' ||
      issue.expected === 'integer'
    ) {
      return { message: ctx.defaultError };
    }
    return {
      message: `must be ${expected}, got ${RECEIVED_NAMES[issue.received] ?? issue.received}`,
    };
  };
}

/** Formats a zod issue as `sites[1].routes[0].path: must start with /`. */
export function formatIssue(issue: ZodIssue): string {
  return `${formatPath(issue.path)}: ${issue.message}`;
}

/** Formats a path as written in the configuration: `sites[1].routes[0].path`. */
export function formatPath(parts: (string | number)[]): string {
  if (parts.length === 0) return '(top level)';

  let out = '';
  for (const part of parts) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out;
}

/** Returns "1 problem" or "N problems". */
export function countProblems(count: number): string {
  return `${count} ${count === 1 ? 'problem' : 'problems'}`;
}

function plainMessage(issue: ZodIssueOptionalMessage, data: unknown): string | undefined {
  switch (issue.code) {
    case ZodIssueCode.invalid_type:
      return typeMessage(issue.expected, issue.received, data);
    case ZodIssueCode.invalid_literal:
      return `must be ${JSON.stringify(issue.expected)}`;
    case ZodIssueCode.unrecognized_keys:
      return `unknown ${issue.keys.length === 1 ? 'key' : 'keys'} ${issue.keys.join(', ')}`;
    case ZodIssueCode.invalid_enum_value:
      return `must be one of ${issue.options.join(', ')}, got ${String(issue.received)}`;
    case ZodIssueCode.invalid_string:
      return stringMessage(issue.validation);
    case ZodIssueCode.too_small:
      return sizeMessage(issue.type, 'min', Number(issue.minimum), issue.inclusive, issue.exact);
    case ZodIssueCode.too_big:
      return sizeMessage(issue.type, 'max', Number(issue.maximum), issue.inclusive, issue.exact);
    case ZodIssueCode.not_multiple_of:
      return `must be a multiple of ${String(issue.multipleOf)}`;
    case ZodIssueCode.not_finite:
      return 'must be a finite number';
    case ZodIssueCode.custom:
    case ZodIssueCode.invalid_union:
      return 'is not valid';
    default:
      return undefined;
  }
}

function typeMessage(expected: string, received: string, data: unknown): string {
  if (received === 'undefined') return 'is required';
  if (expected === 'integer' && received === 'float') {
    return `must be a whole number, got ${String(data)}`;
  }

  const expectedName = EXPECTED_NAMES[expected] ?? expected;
  return `must be ${expectedName}, got ${RECEIVED_NAMES[received] ?? received}`;
}

function stringMessage(validation: ZodInvalidStringIssue['validation']): string {
  if (typeof validation === 'object') {
    if ('startsWith' in validation) return `must start with ${validation.startsWith}`;
    if ('endsWith' in validation) return `must end with ${validation.endsWith}`;
    return `must contain ${validation.includes}`;
  }
  if (validation === 'email') return 'must be an e-mail address';
  if (validation === 'url') return 'must be a URL';
  if (validation === 'regex') return 'has an invalid format';
  return `must be a valid ${validation}`;
}

function sizeMessage(
  type: string,
  bound: 'min' | 'max',
  limit: number,
  inclusive: boolean,
  exact: boolean | undefined,
): string | undefined {
  if (type === 'number') return numberBound(bound, limit, inclusive, exact);

  const strict = !inclusive && !exact;
  const count = strict ? (bound === 'min' ? limit + 1 : limit - 1) : limit;
  const relation = exact ? 'exactly' : bound === 'min' ? 'at least' : 'at most';
  if (type === 'array') {
    return `must have ${relation} ${count} ${count === 1 ? 'entry' : 'entries'}`;
  }
  if (type === 'string') {
    if (bound === 'min' && count === 1 && !exact) return 'must not be empty';
    return `must be ${relation} ${count} ${count === 1 ? 'character' : 'characters'} long`;
  }
  return undefined;
}

function numberBound(
  bound: 'min' | 'max',
  limit: number,
  inclusive: boolean,
  exact: boolean | undefined,
): string {
  if (exact) return `must be ${limit}`;
  if (bound === 'min')
    return inclusive ? `must be at least ${limit}` : `must be greater than ${limit}`;
  return inclusive ? `must be at most ${limit}` : `must be less than ${limit}`;
}
