/// <reference lib="dom" />
/** The served page: the front end talking to the `persona serve` that served it (same origin). */
import { servedClient } from '../client';
import { startPlayground } from './ui';

const params = new URLSearchParams(location.search);
void startPlayground(servedClient('', { apiKey: params.get('key') ?? undefined, modelDir: params.get('model') ?? undefined }));
