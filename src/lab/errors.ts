/** A lab operation failed for a reason a person can act on (the CLI prints the message alone). */
export class LabError extends Error {}
