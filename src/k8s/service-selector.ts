/**
 * Which pods a Service selects, one rule for every reader (the lab's
 * EndpointSlice controller, `policy trace`). An empty selector is no
 * selector: the field is omitempty, so the API cannot tell `{}` from absent
 * (kubernetes/kubernetes#25836), and such a Service gets no endpoints.
 */
import type { Service } from './objects.ts';

/** The Service's selector, or undefined when it selects no pods by itself. */
export function serviceSelector(svc: Service): Readonly<Record<string, string>> | undefined {
  const sel = svc.spec.selector;
  return sel && Object.keys(sel).length > 0 ? sel : undefined;
}

/** Every key of `selector` has its value in `labels`. */
export function labelsMatch(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}
