/**
 * Connection admission shared by the proxies: a cap on the connections one
 * source address (pod) holds open, and on all of them (admission.ts).
 */
export { ConnectionAdmission, DEFAULT_ADMISSION } from './admission.ts';
