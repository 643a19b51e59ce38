// The precisions a graph may have variants at, in a module with no imports: the server's command
// line reads these before it forks the engine, and loading the manifest's schema (zod) there
// would put about 0.1 s on every cold start's critical path.
export const PRECISIONS = ['fp32', 'int8'] as const;
export type Precision = (typeof PRECISIONS)[number];
/** What the user may ask for: a precision, or `auto` (the manifest's default for the device). */
export type PrecisionChoice = Precision | 'auto';
export const PRECISION_CHOICES: readonly PrecisionChoice[] = [...PRECISIONS, 'auto'];
