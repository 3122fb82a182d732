const SPACE = 0x20;
const TAB = 0x09;
const NO_BREAK_SPACE = 0xa0;

/**
 * Compares text with a lowercase literal of ASCII letters and `-`, ignoring ASCII case, without
 * the copy that toLowerCase makes. `code | 0x20` is a letter's lowercase form. Besides the letter
 * itself and its uppercase form, the only code it maps onto one of these characters is CR onto
 * `-`, and header names, the only text with `-` compared here, never contain CR.
 */
export function equalsLower(text: string, lower: string): boolean {
  return text.length === lower.length && equalsLowerAt(text, 0, lower);
}

/** equalsLower for the characters of `text` from `start` on. */
export function equalsLowerAt(text: string, start: number, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) {
    if ((text.charCodeAt(start + i) | 0x20) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * Checks whether the comma-separated list contains `token` (lowercase letters), ignoring case and
 * the spaces, tabs and no-break spaces around each item. For header values, which have no control
 * characters other than HTAB, this matches splitting, trimming and lowercasing each item.
 */
export function hasToken(list: string, token: string): boolean {
  let start = 0;
  while (start <= list.length) {
    let end = list.indexOf(',', start);
    if (end === -1) end = list.length;
    let itemStart = start;
    let itemEnd = end;
    while (itemStart < itemEnd && isItemSpace(list.charCodeAt(itemStart))) itemStart++;
    while (itemEnd > itemStart && isItemSpace(list.charCodeAt(itemEnd - 1))) itemEnd--;
    if (itemEnd - itemStart === token.length && equalsLowerAt(list, itemStart, token)) return true;
    start = end + 1;
  }
  return false;
}

/** Matches what String.trim removes from a Latin-1 string without control characters but HTAB. */
function isItemSpace(code: number): boolean {
  return code === SPACE || code === TAB || code === NO_BREAK_SPACE;
}
