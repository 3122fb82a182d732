/**
 * Compares text with a lowercase literal of ASCII letters and `-`, ignoring ASCII case, without
 * the copy that toLowerCase makes. `code | 0x20` is a letter's lowercase form. Besides the letter
 * itself and its uppercase form, the only code it maps onto one of these characters is CR onto
 * `-`, and header names, the only text with `-` compared here, never hold CR.
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
