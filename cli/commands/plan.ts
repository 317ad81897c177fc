import type { CommandModule } from 'yargs';
import { PersonaError } from '../../lib/errors';

export const planCommand: CommandModule<object, { config: string }> = {
  command: 'plan <config>',
  describe: 'experiment plan (being written)',
  handler: () => {
    throw new PersonaError('not yet available');
  },
};
