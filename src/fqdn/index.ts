/**
 * FQDN policy's leaf: which DNS names a rule allows, and the name → IP cache
 * that toFQDNs selectors are made of. The policy engine imports it without
 * loading a proxy; the DNS proxy that fills the cache is in src/proxy/dns.
 *
 *   toFQDNs / rules.dns ──► compileFqdnSelector() ──► NameMatcher.matches(name.)
 *   DNS answers ──► NameCache.record ──► ipsMatching(selectors) ──► the datapath's allow-sets
 */
export {
  normaliseName,
  patternToRegexSource,
  compileMatchPattern,
  compileMatchName,
  compileFqdnSelector,
  fqdnSelectorKey,
  type NameMatcher,
} from './matchpattern.ts';
export { NameCache, type NameCacheEntry } from './name-cache.ts';
