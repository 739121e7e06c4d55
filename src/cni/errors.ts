/**
 * The one error type of the plugin. Its code is what the runtime sees.
 *
 * CNI spec, "Error": "Errors must be indicated by a non-zero return code and
 * the following JSON being printed to stdout: {cniVersion, code, msg, details}"
 * and "Error codes 0-99 are reserved for well-known errors."
 */
export const CniCode = {
  /** 1: Incompatible CNI version */
  incompatibleVersion: 1,
  /** 2: Unsupported field in network configuration */
  unsupportedField: 2,
  /** 3: Container unknown or does not exist */
  unknownContainer: 3,
  /** 4: Invalid necessary environment variables, like CNI_COMMAND, CNI_CONTAINERID, etc. */
  invalidEnv: 4,
  /** 5: I/O failure */
  ioFailure: 5,
  /** 6: Failed to decode content */
  decodingFailure: 6,
  /** 7: Invalid network config */
  invalidConfig: 7,
  /** 11: Try again later — "the runtime should retry" */
  tryAgainLater: 11,
  /** Anything else (the plugin-specific range starts at 100; 999 is the reference plugins' generic code). */
  internal: 999,
} as const;
export type CniCode = (typeof CniCode)[keyof typeof CniCode] | number;

export class CniError extends Error {
  readonly code: CniCode;
  readonly details: string | undefined;
  constructor(code: CniCode, msg: string, details?: string) {
    super(msg);
    this.code = code;
    this.details = details;
  }
}

/** What goes to stdout for an error; `cniVersion` is the config's when it was readable. */
export function errorBody(err: unknown, cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
  if (err instanceof CniError) {
    return { cniVersion, code: err.code, msg: err.message, ...(err.details ? { details: err.details } : {}) };
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return { cniVersion, code: CniCode.internal, msg: e.message };
}
