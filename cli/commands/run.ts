import type { CommandModule } from 'yargs';
import { PersonaError } from '../../lib/errors';

export const runCommand: CommandModule<object, { config: string }> = {
  command: 'run <config>',
  describe: 'experiment run (being written)',
  handler: () => {
    throw new PersonaError('not yet available');
  },
};
