/**
 * Bounds on what the MIME structure parser interprets and keeps. Whatever the input, the parser's
 * own memory stays within a few of these numbers (see `MimeStructureParser.retainedBytes`); a limit
 * that is hit sets `truncated` and records a defect rather than failing the parse.
 */

export interface MimeLimits {
  /** Parts nested deeper than this are kept as opaque leaves (their content is not parsed). */
  maxDepth: number;
  /** Parts listed in one structure, the root and encapsulated message roots included. */
  maxParts: number;
  /**
   * Header bytes interpreted per part. Beyond it the header still runs to its blank line (so the
   * offsets stay true), but no further field is interpreted.
   */
  maxHeaderBlockBytes: number;
  /**
   * Bytes of one Content-* field's value (with its continuation lines) that are interpreted; a
   * longer field is ignored as if absent. Other fields are never kept, whatever their length.
   */
  maxHeaderLineBytes: number;
  /**
   * Longest boundary parameter used. RFC 2046 §5.1.1 allows 70 characters; longer ones occur in
   * the wild and are accepted up to this limit (recorded as `boundary-too-long`).
   */
  maxBoundaryLength: number;
}

/** RFC 2046 §5.1.1: "Boundary delimiters must be no longer than 70 characters". */
export const RFC_MAX_BOUNDARY_LENGTH = 70;

/** Entries kept in `MimeStructure.defects`; further ones are dropped (the flag `truncated` is not set for that). */
export const MAX_DEFECTS = 100;

export const DEFAULT_MIME_LIMITS: Readonly<MimeLimits> = Object.freeze({
  maxDepth: 32,
  maxParts: 1000,
  maxHeaderBlockBytes: 256 * 1024,
  maxHeaderLineBytes: 64 * 1024,
  maxBoundaryLength: 200,
});

/** Upper bounds on the limits themselves, so a misconfiguration cannot unbound memory. */
const CEILINGS: Readonly<MimeLimits> = Object.freeze({
  maxDepth: 1000,
  maxParts: 1_000_000,
  maxHeaderBlockBytes: 64 * 1024 * 1024,
  maxHeaderLineBytes: 16 * 1024 * 1024,
  maxBoundaryLength: 4096,
});

/** Defaults overridden by `partial`; each value must be a positive integer and is capped by a ceiling. */
export function resolveMimeLimits(partial?: Partial<MimeLimits>): MimeLimits {
  const out = { ...DEFAULT_MIME_LIMITS };
  if (!partial) return out;
  for (const key of Object.keys(DEFAULT_MIME_LIMITS) as (keyof MimeLimits)[]) {
    const value = partial[key];
    if (value === undefined) continue;
    if (!Number.isInteger(value) || value < 1) throw new RangeError(`MIME limit ${key} must be a positive integer, got ${String(value)}`);
    out[key] = Math.min(value, CEILINGS[key]);
  }
  return out;
}
