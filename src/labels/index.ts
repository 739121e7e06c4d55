/**
 * Labels and label selectors, Cilium-style.
 *
 *   pod / namespace / reserved labels ──► LabelSet (source:key=value)
 *   LabelSelector (matchLabels, matchExpressions) ──► Selector ──► matches(LabelSet)
 *
 * Selectors are compiled once and carry a canonical key, so the policy
 * engine's selector cache shares one entry between equal selectors.
 */
export { type Label, LabelSet, parseLabelKey, SOURCE_K8S, SOURCE_RESERVED } from './labels.ts';
export { Selector, type Requirement } from './selector.ts';
