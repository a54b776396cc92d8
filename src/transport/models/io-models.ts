import type { IoModel } from '../server/options.ts';
import { startLoopModel } from './loop.ts';
import type { StartModel } from './model.ts';
import { startThreadPerConnModel } from './thread-per-conn.ts';
import { startWorkersModel } from './workers.ts';

/** Each I/O model's start, behind the one StartModel interface: a new model is a new file and a line here. */
export const START_MODEL: Readonly<Record<IoModel, StartModel>> = Object.freeze({
  loop: startLoopModel,
  workers: startWorkersModel,
  'thread-per-conn': startThreadPerConnModel,
  // The same threads and hand-off as workers; each thread runs a ring instead of an event loop (ThreadData.ring).
  'io-uring': startWorkersModel,
});
