export { fsckVolume, type FsckReport, type FsckSummary } from './fsck.js';
export type { FsckOptions, FsckPhase, FsckProgress } from './context.js';
export { PROBLEM_KINDS, type Problem, type ProblemAction, type ProblemKind, type Severity } from './problems.js';
export { formatProblem, formatReport } from './format-report.js';
