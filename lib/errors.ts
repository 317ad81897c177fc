/**
 * One error type for every bad input the framework can name: a file, and within it a line, field or
 * tensor. The CLI prints `message` alone (no stack) and exits non-zero; `--verbose` adds the stack.
 */
export interface ErrorPlace {
  file?: string;
  line?: number;
  field?: string;
  tensor?: string;
}

export class PersonaError extends Error {
  readonly place: ErrorPlace;
  constructor(message: string, place: ErrorPlace = {}) {
    super(formatMessage(message, place));
    this.name = 'PersonaError';
    this.place = place;
  }
}

function formatMessage(message: string, place: ErrorPlace): string {
  const where: string[] = [];
  if (place.file !== undefined) where.push(place.line !== undefined ? `${place.file}:${place.line}` : place.file);
  if (place.tensor !== undefined) where.push(`tensor '${place.tensor}'`);
  if (place.field !== undefined) where.push(`field '${place.field}'`);
  return where.length ? `${where.join(', ')}: ${message}` : message;
}
