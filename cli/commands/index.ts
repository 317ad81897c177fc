/** Every command of the `persona` program; one module per command. */
import type { CommandModule } from 'yargs';
import { generateCommand } from './generate';
import { forwardCommand } from './forward';
import { captureCommand } from './capture';
import { convertCommand } from './convert';
import { benchCommand } from './bench';
import { trainCommand } from './train';
import { trainStepCommand } from './train-step';
import { mergeCommand } from './merge';
import { runCommand } from './run';
import { planCommand } from './plan';
import { collectCommand } from './collect';

import { extractCommand } from './extract';
import { evalCommand } from './eval';
import { monitorCommand } from './monitor';
import { shiftCommand } from './shift';
import { screenCommand } from './screen';
import { vectorCommand } from './vector';
import { traitCommand } from './trait';
import { organismCommand } from './organism';
import { serveCommand } from './serve';
import { playgroundCommand } from './playground';
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [
  generateCommand,
  forwardCommand,
  captureCommand,
  convertCommand,
  benchCommand,
  trainCommand,
  trainStepCommand,
  mergeCommand,
  extractCommand,
  evalCommand,
  monitorCommand,
  shiftCommand,
  screenCommand,
  vectorCommand,
  traitCommand,
  runCommand,
  planCommand,
  collectCommand,
  organismCommand,
  serveCommand,
  playgroundCommand,
];
