/**
 * The regular expressions of CiliumNetworkPolicy HTTP rules (`method`, `path`,
 * `host`), one definition for the validator and the policy engine, so both
 * accept the same patterns and the proxy matches what was validated.
 *
 * Cilium checks them with Go's regexp ("_, err := regexp.Compile(h.Path)" in
 * PortRuleHTTP.Sanitize) and Envoy matches them with Google RE2 against the
 * whole value (`safe_regex` with `google_re2`). RE2 runs in time linear in the
 * input and has neither backreferences nor lookaround; re2js, a port of RE2/J,
 * keeps both properties, so no request can make a rule backtrack — a
 * JavaScript RegExp took 34 s over a 34-character path with
 * `/files/([a-z]+/?)+\.txt` and stalled the node's proxy meanwhile.
 */
import { RE2JS, RE2JSException, RE2JSSyntaxException } from 're2js';

/** A compiled HTTP field pattern. */
export interface HttpRegex {
  /** The pattern as the policy wrote it. */
  readonly source: string;
  /** Whether the pattern matches the whole value (Envoy's full match), in linear time. */
  readonly matches: (value: string) => boolean;
}

/** Compiles an HTTP field pattern; throws with {@link httpRegexError}'s message if RE2 refuses it. */
export function compileHttpRegex(source: string): HttpRegex {
  const re = compileOrExplain(source);
  if (typeof re === 'string') throw new Error(`HTTP rule pattern ${JSON.stringify(source)}: ${re}`);
  return { source, matches: (value) => re.testExact(value) };
}

/** Why RE2 refuses the pattern, or undefined when it compiles. */
export function httpRegexError(source: string): string | undefined {
  const re = compileOrExplain(source);
  return typeof re === 'string' ? re : undefined;
}

function compileOrExplain(source: string): RE2JS | string {
  try {
    // No flags: RE2's Perl syntax as Go's regexp takes it (\d \w \s, inline (?i) (?s), `.` stops at \n).
    return RE2JS.compile(source);
  } catch (e) {
    if (!(e instanceof RE2JSException)) throw e;
    const reason = e instanceof RE2JSSyntaxException ? (unsupportedHint(e.input ?? '') ?? `${e.error}: \`${e.input ?? ''}\``) : e.message;
    return `not an RE2 regular expression (Cilium and Envoy match HTTP rules with RE2): ${reason}`;
  }
}

/**
 * Perl and JavaScript constructs RE2 leaves out on purpose, named so the author
 * knows to rewrite the rule. `where` is the text RE2 stopped at.
 */
function unsupportedHint(where: string): string | undefined {
  if (/^\\(?:[1-9]|[kg])/.test(where)) {
    return `backreferences such as \\1 or \\k<name> are not supported (at \`${where}\`): RE2 has none, as it matches in linear time`;
  }
  if (/^\(\?<?[=!]/.test(where)) {
    return `lookahead and lookbehind ((?=…), (?!…), (?<=…), (?<!…)) are not supported (at \`${where}\`): RE2 has none, as it matches in linear time`;
  }
  return undefined;
}
