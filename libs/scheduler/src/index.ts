export {
  LaneScheduler,
  NodeQueueBudget,
  QueuedTicket,
  type Discipline,
  type GateVerdict,
  type LaneIdentity,
  type QueueBound,
  type QueueBounds,
  type SchedulerOptions,
  type SchedulerWork,
  type TierSpec,
} from './lane-scheduler.ts'
