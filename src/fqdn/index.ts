/**
 * FQDN policy: which DNS names a rule allows.
 *
 *   toFQDNs / rules.dns ──► compileFqdnSelector() ──► NameMatcher.matches(name.)
 *
 * The transparent DNS proxy and the name → IP cache will live here too.
 */
export {
  normaliseName,
  patternToRegexSource,
  compileMatchPattern,
  compileMatchName,
  compileFqdnSelector,
  type NameMatcher,
} from './matchpattern.ts';
