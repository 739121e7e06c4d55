/**
 * Port fields, which upstream spells three ways:
 * - Cilium `toPorts[].ports[].port` is a string: a number "0"–"65535" ("0" = all
 *   ports) or a port name (an IANA service name). A YAML number is accepted too
 *   and normalised to its string, since people write `port: 80`.
 * - Kubernetes `NetworkPolicyPort.port` and Service `targetPort` are
 *   IntOrString: an integer 1–65535, or a port name. A quoted number is a
 *   *string* to Kubernetes, hence a (bad) port name: "must contain at least one letter".
 * - Plain port numbers (`containerPort`, Service `port`): integers 1–65535.
 */
import * as z from 'zod';
import { portNameError } from './checks-names.ts';

const DIGITS = /^[0-9]+$/;

function describe(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a mapping' : JSON.stringify(v);
}

export function ciliumPortError(v: unknown): string | undefined {
  if (v === undefined) return 'required field is missing: give a port number (0-65535) or a port name';
  if (typeof v === 'number') {
    return Number.isInteger(v) && v >= 0 && v <= 65535 ? undefined : `port must be a number from 0 to 65535 (got ${v})`;
  }
  if (typeof v !== 'string') return `port must be a number (0-65535) or a port name (got ${describe(v)})`;
  if (DIGITS.test(v)) {
    // Cilium parses with strconv.ParseUint(port, 0, 16): "010" would be octal 8. Refuse the ambiguity.
    if (v.length > 1 && v.startsWith('0')) return `port ${JSON.stringify(v)} must not have leading zeros`;
    return Number(v) <= 65535 ? undefined : `port must be a number from 0 to 65535 (got ${v})`;
  }
  const nameError = portNameError(v);
  return nameError === undefined ? undefined : `port must be a number (0-65535) or a port name; ${nameError}`;
}

/** The numeric value of a Cilium port string, or undefined for a named port. */
export function ciliumPortNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  return typeof v === 'string' && DIGITS.test(v) ? Number(v) : undefined;
}

/** Kubernetes IntOrString port: integer 1–65535 or a port name. */
export function intOrPortNameError(v: unknown): string | undefined {
  if (typeof v === 'number') {
    return Number.isInteger(v) && v >= 1 && v <= 65535 ? undefined : `port must be a number from 1 to 65535 (got ${v})`;
  }
  if (typeof v !== 'string') return `port must be a number (1-65535) or a port name (got ${describe(v)})`;
  if (DIGITS.test(v)) return `${JSON.stringify(v)} is a string, which Kubernetes reads as a port name: write the number unquoted (port: ${v})`;
  return portNameError(v);
}

/** A Cilium port: number or string in, string out. */
export const ciliumPortField = z
  .custom<string | number>(() => true)
  .superRefine((v, ctx) => {
    const error = ciliumPortError(v);
    if (error !== undefined) ctx.addIssue({ code: 'custom', message: error, input: v });
  })
  .transform((v): string => String(v));

export const intOrPortNameField = z
  .custom<number | string>((v) => v !== undefined)
  .superRefine((v, ctx) => {
    const error = intOrPortNameError(v);
    if (error !== undefined) ctx.addIssue({ code: 'custom', message: error, input: v });
  });

export function portNumberField(min: 0 | 1) {
  return z.number().int().min(min).max(65535);
}
