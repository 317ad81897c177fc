import type { CommandModule } from 'yargs';
import { PersonaError } from '../../lib/errors';

export const collectCommand: CommandModule<object, { config: string }> = {
  command: 'collect <config>',
  describe: 'experiment collect (being written)',
  handler: () => {
    throw new PersonaError('not yet available');
  },
};
