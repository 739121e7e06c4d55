/**
 * Security identities: a label set → a number that policy is written against.
 *
 *   pod + namespace + service account ──► endpointLabels() ──► LabelSet
 *   LabelSet ──► IdentityAllocator.acquire() ──► numeric identity (≥ 256)
 *   reserved entities (host, world, …) ──► fixed identities 1–8
 *
 * Equal label sets get equal identities; the number is a hash of the labels
 * so separate agents agree without coordination (see allocator.ts for the
 * one caveat).
 */
export * from './reserved.ts';
export * from './endpoint-labels.ts';
export { IdentityAllocator, fnv1a } from './allocator.ts';
